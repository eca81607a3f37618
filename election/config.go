// Package election chooses one leader peer per organisation: the peer that
// pulls blocks from the orderer and feeds them to its org by gossip.
//
// The Engine is a pure state machine in the style of etcd's raft: the caller
// (the gossip node) drives logical time with Tick, feeds received messages to
// Step and sends whatever Tick returns to each live peer of its
// organisation, over streams that authenticate the sender (Step trusts its
// from argument to be the message's originator). The Engine starts no
// goroutine, opens no socket and never reads the clock, so tests run
// thousands of ticks over many engines in milliseconds and replay exactly
// from a seed.
//
// The algorithm is Hyperledger Fabric's, rewritten:
//
//   - After a startup grace, a peer that knows no leader proposes itself and
//     keeps collecting proposals for ElectionDuration ticks.
//   - A proposer that heard no better proposal becomes leader; the best
//     proposal is the lowest PKI-ID. With PreferUpToDate, a peer more than
//     MaxLag blocks behind the best height it knows of neither proposes nor
//     beats anyone, so leadership never goes to a peer far behind (one of the
//     reasons Fabric gave up its gossip).
//   - With PreferUpToDate, a peer does not propose while membership lists a
//     live, up-to-date peer with a lower ID (it would win anyway): for
//     LeaderAliveThreshold ticks, longer while that peer is newly seen (its
//     StartupGrace) or heard proposing (its round), at most 3 x
//     LeaderAliveThreshold. At start-up one peer proposes, not all.
//   - The leader declares itself every DeclarationInterval ticks. A follower
//     that hears no declaration for LeaderAliveThreshold ticks (plus
//     LeaderGrace while membership still lists the leader) forgets the
//     leader and proposes itself. A follower told that its stream to the
//     leader broke (LeaderDown: the process was killed or stopped, and its
//     kernel closed its sockets) forgets it at once.
//   - Two leaders (after a partition heals) settle by PKI-ID: the one with the
//     higher ID steps down when it hears the other's declaration.
//   - Stall detection (StallTimeout, off in FabricConfig): a follower that
//     the caller keeps told of the orderer's height stops trusting a leader
//     under which a block the orderer had StallTimeout ticks ago reached no
//     org peer and the org is not catching up. The leader is ignored for
//     StallPenalty ticks (doubling on each repeat, up to MaxStallPenalty)
//     and the election goes on without it: a member with valid credentials
//     and a low PKI-ID cannot stall its org by declaring and not delivering.
//
// Static mode (Config.Static) turns all of this off: a peer is leader iff
// Config.StaticLeader, and sends nothing.
package election

import (
	"errors"
	"fmt"
)

// ErrInvalidConfig is wrapped by every error Validate returns.
var ErrInvalidConfig = errors.New("invalid election config")

// Config holds the election knobs. Durations are in ticks of the caller's
// clock (the gossip node ticks every 100 ms by default).
type Config struct {
	// Static disables the election: the peer is leader iff StaticLeader.
	Static bool
	// StaticLeader makes this peer a leader in static mode. Setting it
	// without Static is refused: static and dynamic election are exclusive.
	StaticLeader bool

	// Org is stamped on outgoing messages; incoming messages naming another
	// organisation are ignored. Empty means "do not check".
	Org string

	// StartupGrace is how long a freshly started peer waits, unless it
	// hears a declaration first (which ends the wait for good), before
	// proposing itself: time for membership to learn the org so the best
	// peer wins the first election.
	StartupGrace int
	// ElectionDuration is how long a proposer collects rival proposals
	// before it declares itself leader.
	ElectionDuration int
	// LeaderAliveThreshold is how long a follower waits without hearing a
	// declaration before it considers the leader dead.
	LeaderAliveThreshold int
	// DeclarationInterval is how often the leader declares itself (and how
	// often a proposer repeats its proposal, to survive a lost message).
	DeclarationInterval int
	// LeaderGrace is how many ticks beyond LeaderAliveThreshold a follower
	// keeps following a silent leader that membership still lists as live
	// (its alives arrive): on a busy machine declarations run late, and a
	// takeover would open a second orderer stream and make it busier still.
	// A leader that membership has dropped is deposed at the threshold.
	LeaderGrace int

	// PreferUpToDate keeps peers that lag from leading: a peer more than
	// MaxLag blocks behind the best height known does not propose, and its
	// proposals beat no one. Off, the pure Fabric rule applies (lowest
	// PKI-ID wins whatever its height).
	PreferUpToDate bool
	// MaxLag is the lag, in blocks, beyond which a peer is "behind".
	MaxLag uint64

	// StallTimeout turns on stall detection (0 turns it off, as in
	// Fabric): a follower told the orderer's height (ObserveOrdererHeight)
	// stops trusting its leader when a block the orderer had StallTimeout
	// ticks ago has reached neither it nor any other org peer it knows of,
	// and the org is not catching up. It guards against a member that
	// declares itself leader and never delivers.
	StallTimeout int
	// ProbeInterval is how often, on average, the caller should ask the
	// orderer for its height while this peer follows (the node jitters it
	// by +-50%). It is a hint for the caller; the engine only needs some
	// observations per StallTimeout.
	ProbeInterval int
	// StallPenalty is how long a leader blamed for a stall is distrusted:
	// its messages are ignored and it can neither lead nor beat anyone.
	// Each repeated offence doubles it, up to MaxStallPenalty. An offence is
	// forgotten MaxStallPenalty ticks after its penalty expires.
	StallPenalty int
	// MaxStallPenalty caps StallPenalty's growth.
	MaxStallPenalty int
}

// DefaultConfig elects a new leader within 2.2 s (22 ticks of 100 ms) of the
// old one's crash once membership has noticed it, and within 3 s while
// membership still lists it: LeaderAliveThreshold (+ LeaderGrace) +
// ElectionDuration + 2 ticks of message delay. When the caller tells of
// the leader's broken stream (Engine.LeaderDown: its process was killed or
// stopped), within ElectionDuration + 2 ticks (1 s).
func DefaultConfig() Config {
	return Config{
		StartupGrace:         20,   // 2 s: membership learns a LAN org in well under that; blocks flow soon after start
		ElectionDuration:     8,    // 800 ms: a proposal crosses the org in milliseconds; room for two resends
		LeaderAliveThreshold: 12,   // 1.2 s = 4 declarations: a lost one or two never depose a live leader
		DeclarationInterval:  3,    // 300 ms: cheap (one small message per peer) and 4 chances per threshold
		LeaderGrace:          8,    // 800 ms more for a leader whose alives still arrive; a dead one is still replaced within 3 s
		PreferUpToDate:       true, // a leader far behind would feed its org stale blocks first
		MaxLag:               10,   // 2 s of blocks at 5 blocks/s: normal gossip spread stays inside it
		StallTimeout:         50,   // 5 s: an honest leader's blocks reach the org in well under 1 s, even on a busy machine
		ProbeInterval:        20,   // 2 s: one ~100-byte unary RPC per follower; at least two probes land in a StallTimeout
		StallPenalty:         300,  // 30 s: time for an honest leader to take over and catch the org up before a retrial
		MaxStallPenalty:      3000, // 5 min: a persistent usurper stalls its org for 5 s at most every 5 min
	}
}

// FabricConfig reproduces Fabric's default timings (core.yaml,
// peer.gossip.election) at 100 ms per tick, and its pure lowest-PKI-ID rule.
// Failover takes up to 10 s + 5 s + 2 ticks = 15.2 s.
func FabricConfig() Config {
	return Config{
		StartupGrace:         150, // Fabric startupGracePeriod 15 s
		ElectionDuration:     50,  // Fabric electionDuration 5 s
		LeaderAliveThreshold: 100, // Fabric leaderAliveThreshold 10 s
		DeclarationInterval:  50,  // Fabric declares every leaderAliveThreshold/2
		PreferUpToDate:       false,
		// StallTimeout 0: Fabric trusts any declared leader for as long
		// as it declares, whether or not blocks flow.
	}
}

// Validate reports the first problem in c, saying what to change.
func (c Config) Validate() error {
	if !c.Static && c.StaticLeader {
		return fmt.Errorf("%w: StaticLeader is set but Static is not: static and dynamic election are exclusive; set Static or clear StaticLeader", ErrInvalidConfig)
	}
	if c.Static {
		return nil
	}
	switch {
	case c.StartupGrace < 0:
		return fmt.Errorf("%w: StartupGrace is %d; use 0 or more ticks", ErrInvalidConfig, c.StartupGrace)
	case c.ElectionDuration < 2:
		return fmt.Errorf("%w: ElectionDuration is %d; use at least 2 ticks so rival proposals can arrive", ErrInvalidConfig, c.ElectionDuration)
	case c.LeaderGrace < 0:
		return fmt.Errorf("%w: LeaderGrace is %d; use 0 or more ticks", ErrInvalidConfig, c.LeaderGrace)
	case c.DeclarationInterval < 1:
		return fmt.Errorf("%w: DeclarationInterval is %d; use at least 1 tick", ErrInvalidConfig, c.DeclarationInterval)
	case c.LeaderAliveThreshold < 2*c.DeclarationInterval:
		return fmt.Errorf("%w: LeaderAliveThreshold %d is under twice DeclarationInterval %d: one lost declaration would depose a live leader; raise the threshold",
			ErrInvalidConfig, c.LeaderAliveThreshold, c.DeclarationInterval)
	}
	return c.validateStall()
}

// validateStall checks the stall-detection knobs (only when it is on).
func (c Config) validateStall() error {
	switch {
	case c.StallTimeout < 0:
		return fmt.Errorf("%w: StallTimeout is %d; use 0 (off) or more ticks", ErrInvalidConfig, c.StallTimeout)
	case c.StallTimeout == 0:
		return nil
	case c.ProbeInterval < 1:
		return fmt.Errorf("%w: StallTimeout is on but ProbeInterval is %d; use at least 1 tick, or set StallTimeout to 0", ErrInvalidConfig, c.ProbeInterval)
	case c.StallTimeout < 2*c.ProbeInterval:
		return fmt.Errorf("%w: StallTimeout %d is under twice ProbeInterval %d: one late probe would blame an honest leader; raise StallTimeout",
			ErrInvalidConfig, c.StallTimeout, c.ProbeInterval)
	case c.StallPenalty < 1:
		return fmt.Errorf("%w: StallPenalty is %d; use at least 1 tick", ErrInvalidConfig, c.StallPenalty)
	case c.MaxStallPenalty < c.StallPenalty:
		return fmt.Errorf("%w: MaxStallPenalty %d is below StallPenalty %d; raise MaxStallPenalty", ErrInvalidConfig, c.MaxStallPenalty, c.StallPenalty)
	}
	return nil
}
