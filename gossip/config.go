package gossip

import (
	"errors"
	"fmt"
	"time"

	"github.com/blockgossip/blockgossip/election"
	"github.com/blockgossip/blockgossip/pull"
)

// Config tunes a Peer and its Node. Intervals are counted in ticks; the
// Node turns one tick into TickInterval of wall time, the simulator into
// whatever it likes.
type Config struct {
	// TickInterval is the wall time of one tick (Node only).
	TickInterval time.Duration

	// AliveInterval is how many ticks pass between two of our own alive
	// messages.
	AliveInterval int
	// AliveFanout is how many random live peers receive each alive message
	// this peer originates or sees for the first time.
	AliveFanout int
	// AliveBatch, when above zero, collects the alives and heartbeats this
	// peer relays (and its own) and every AliveBatch ticks sends them as one
	// MembershipBatch to each of AliveFanout random live peers, instead of
	// each item in its own message to AliveFanout peers: each hop of an
	// item's spread then waits up to AliveBatch ticks. 0 relays each at once
	// (Fabric). Unused with MaxView (which does not relay).
	AliveBatch int
	// AliveNeighbours, when above zero (and AliveBatch is), sends each
	// batch to every member of a set of this many live members instead of
	// to AliveFanout random live ones, so that a peer keeps streams (TLS
	// handshakes, buffers) with about this many peers for membership, not
	// with all (see relaybatch.go). At least AliveFanout.
	AliveNeighbours int
	// NeighbourRotation is how many ticks pass between two replacements of
	// one of the AliveNeighbours by a random live member.
	NeighbourRotation int
	// Expiration is how many ticks a member may stay silent before it is
	// declared dead.
	Expiration int
	// ReconnectInterval is how many ticks pass between two membership
	// requests to a random dead member (is it back?).
	ReconnectInterval int
	// PurgeAfter is how many ticks a dead member is remembered before it is
	// forgotten altogether.
	PurgeAfter int
	// BootstrapRetry is how many ticks pass between membership requests to
	// the bootstrap peers while no live member is known.
	BootstrapRetry int
	// SyncInterval is how many ticks pass between membership requests to a
	// random live member (anti-entropy: heals what alive gossip missed).
	SyncInterval int
	// MaxResponseMembers caps the alive messages in one membership
	// response.
	MaxResponseMembers int
	// HeartbeatChain is how many alive rounds one signed alive covers: in
	// between, a peer sends unsigned heartbeats that reveal, round by round,
	// the elements of a hash chain its signed alive commits to (receivers
	// check them by hashing, see heartbeat.go). 0 signs every alive (at most
	// MaxHeartbeatChain).
	HeartbeatChain int
	// HeightInterval is how many ticks at least pass between two signed
	// alives sent because our ledger height changed (heights travel
	// authenticated in signed alives only; heartbeats keep us alive in
	// between).
	HeightInterval int
	// MaxView, when above zero, bounds membership to a partial view of at
	// most MaxView members (HyParView's active view), for networks too
	// large for every peer to know every other: a new member is admitted
	// only while the view has room (dead members hold their slot until
	// purged, so a restarted one is readmitted), a peer sends its alive
	// directly to every live member of its view each AliveInterval, and
	// alives are not relayed (a relay would reach peers that cannot admit
	// the member). Push, pull and election then work within the view.
	// Peers must start from seeded, roughly symmetric views: there is no
	// join walk or passive view yet. 0 is full membership.
	MaxView int

	// Fanout is how many random live peers of our org receive each new
	// block we forward.
	Fanout int
	// MaxHops is the hop budget of a pushed block: a peer forwards a block
	// that has made fewer than MaxHops hops (the leader's push is hop 1).
	// Every peer forwards a given block at most once (dedupe), so Fabric's
	// "push once" (propagateIterations = 1) is the behaviour for any MaxHops
	// large enough not to bind.
	MaxHops int
	// PushBatch, when above zero, holds forwards for up to PushBatch ticks
	// and sends each batch to one random set of Fanout peers.
	PushBatch int

	// Tree switches push to Plumtree-style eager push along a tree plus
	// lazy IHave announcements: about one full copy of each block per peer
	// instead of Fanout. Fanout is then the number of eager neighbours a
	// peer starts with.
	Tree bool
	// TreeLazy is how many lazy neighbours (IHave only) a peer keeps in
	// tree mode, on top of its eager ones.
	TreeLazy int
	// GraftTimeout is the least number of ticks after an IHave before a
	// missing block is grafted from its announcer (tree mode; see
	// GraftTimeoutSub for a floor under a tick).
	GraftTimeout int
	// IHaveDelay holds a peer's IHave announcements for this many ticks
	// (tree mode), so that an eager copy, which carries the whole block,
	// gets a head start over the few-byte announcement of it: with big
	// blocks an IHave sent at once outruns the copy and gets the block
	// grafted (sent twice). 0 announces at once.
	IHaveDelay int
	// MaxGraftTimeout caps the adaptive graft timeout: a peer waits as
	// long after an IHave as eager copies have lately been arriving late,
	// plus one tick, but at least GraftTimeout and at most this.
	MaxGraftTimeout int
	// TreeResolution is how many sub-ticks the tree's timers (IHave
	// flush, graft deadline and retry, and the lateness and round-trip
	// estimates behind them) count per tick: the Node wakes for them every
	// TickInterval/TreeResolution, and only while one is pending (see
	// Peer.SubTick). 1 runs them on the tick, as membership, pull and
	// election always do. Tick counts above (GraftTimeout, IHaveDelay,
	// MaxGraftTimeout) keep their meaning; with a finer clock the margin
	// added to the measured lateness and round trip is one sub-tick.
	TreeResolution int
	// IHaveDelaySub, when above zero, shortens the IHave delay to this many
	// sub-ticks (never beyond IHaveDelay ticks): a tick-long head start is
	// 0-100 ms on the tick, a full 100 ms on a finer clock.
	IHaveDelaySub int
	// GraftTimeoutSub, when above zero, lowers the graft timeout's floor to
	// this many sub-ticks (never beyond GraftTimeout ticks).
	GraftTimeoutSub int
	// GraftQuorum, when above zero, grafts a missing block one sub-tick
	// after its first IHave, instead of after the graft timeout, once this
	// many neighbours at most one hop shallower than us in the tree have
	// announced it: each of them has held the block for the IHave delay,
	// so our own copy is no longer late but lost. The first graft then
	// asks one announcer; the rest of GraftHedge follow at the graft
	// timeout if the block is still missing. Not while eager copies run
	// late (the lateness estimate above twice the graft timeout's floor: a
	// busy machine, where a quorum means late, not lost). 0 turns it off.
	GraftQuorum int
	// GraftHedge is how many announcers the first graft of a missing block
	// asks (0 or 1: one). More than one costs a duplicate copy per graft
	// and saves a round trip whenever the graft or its answer is lost;
	// with fewer announcers known, the next announcer's IHave is grafted
	// on arrival until the hedge is full. One while eager copies run late
	// (as for GraftQuorum).
	GraftHedge int
	// CutLagGraft (tree mode) times a lost copy from the block's cut: the
	// leader stamps each block it takes from the orderer with its tree
	// clock (Envelope.stamp, carried by pushes and IHaves), each peer
	// learns how many of its own sub-ticks after the stamp its parent's
	// copies come (the cut lag, as late as lately seen), and a block
	// announced to us but still missing one sub-tick past its cut lag is
	// grafted then, at its first IHave at the earliest, rather than after
	// a quorum or the graft timeout. The two clocks' offset is part of
	// what is learnt. Not while eager copies run late (as for
	// GraftQuorum), nor before three of our parent's copies have taught
	// the lag.
	CutLagGraft bool
	// LazyBack makes lazy links two-way: a neighbour whose IHave reaches
	// us becomes one of our lazy neighbours, so it hears our IHaves too.
	// A peer picks TreeLazy lazy neighbours itself, but hears IHaves only
	// from those that picked it (and from pruned eager links): a few
	// peers heard two or three, and when their copy was lost the first
	// came late and no quorum formed. Costs an IHave per block per link
	// that was one-way (the knows list skips those that announced first).
	LazyBack bool
	// ParentSilence, in ticks (tree mode): while our eager parent has
	// pushed us a block within this many ticks, a block announced but
	// still missing is taken to be on its way from the parent, late, and
	// is not grafted, unless the parent passed it (it pushed us a later
	// block, or never pushed the block before it, which came another way)
	// or announced it to us; once the parent has been silent this long
	// (it crashed, its stream went down, it lost its own parent) the
	// graft timers run as usual. 0 turns it off. Right where the transport
	// loses a message only with its stream (gRPC over TCP: the default);
	// wrong on a network that drops single messages (the simulator's
	// --loss), where a lost copy would wait this long.
	//
	// Over gRPC nearly every graft is for a copy merely late, and on a
	// machine that cannot keep up, grafts fed on themselves: each
	// reshaping graft brought duplicates until a prune got through,
	// seconds later by then, and the duplicates made copies later still.
	// At 100 peers x 100 KiB, 2 of 5 runs went from ~300 ms to 4.6-10.5 s
	// at amplification 3.4-4.6, and both 50 x 1 MiB runs to 5-9.3 s at
	// 3.4-4.4 (grafts per delivery up to 1.48). See the README.
	ParentSilence int
	// GraftParent: once every announcer of a missing block has been
	// grafted without an answer, graft our eager parent (its copy to us
	// was most likely lost on the way) before handing the block to pull.
	GraftParent bool
	// AckResend, when above zero (tree mode), has each peer acknowledge
	// every pushed copy to its sender at once (an IHave back: a few
	// bytes), and the sender push the block again to an eager
	// neighbour whose acknowledgement has not come this many sub-ticks
	// after its push (twice at most, this many sub-ticks apart). It is
	// for networks that drop single messages (the simulator's --loss): a
	// lost eager copy is then resent by its parent about one round trip
	// and a margin after the push, instead of grafted once IHaves from
	// other peers have come and a quorum or the cut lag says it is lost
	// (40 ms after the announcers' own copies at the earliest). Over gRPC
	// a message is lost only with its stream, so the Node leaves it off
	// (0): the acknowledgements would be a message more per delivery for
	// nothing, and on a busy host a late one would resend a whole block.
	// See the README (the twelfth and thirteenth passes).
	AckResend int

	// StoreSize bounds the dedupe store (entries).
	StoreSize int
	// StoreTTL is how many ticks a dedupe entry lives.
	StoreTTL int
	// ReorderWindow is how many blocks ahead of the ledger height are
	// buffered while a predecessor is missing; later ones are dropped (and
	// fetched by pull when their turn comes).
	ReorderWindow int

	// MaxOffences is how many invalid blocks a peer may send before it is
	// disconnected and ignored.
	MaxOffences int
	// BanTicks is how long a penalised peer is ignored.
	BanTicks int

	// PullEnabled turns the pull engine on; off, only push moves blocks.
	PullEnabled bool
	// PullOnGap starts a pull round at once, rather than at the next
	// PullInterval, when the peer has been stuck behind (a gap in its
	// reorder buffer, or live members advertising more blocks) for longer
	// than the graft timeout.
	PullOnGap bool
	// Pull configures the pull engine (used when PullEnabled).
	Pull pull.Config
	// Election configures leader election. Its Org defaults to the peer's.
	Election election.Config
}

// DefaultConfig is what a production peer should run: eager push along a
// self-pruning tree with lazy announcements to the other neighbours
// (Plumtree), so that each peer gets about one copy of each block and a
// lost or late copy is grafted from an announcer tens of milliseconds
// after its announcement (tree timers on 20 ms sub-ticks); pull from the
// ledger by height is the repair path behind it.
func DefaultConfig() Config {
	return Config{
		TickInterval:       100 * time.Millisecond, // fine enough for push batching and timeouts, cheap to run
		AliveInterval:      20,                     // alive every 2 s: failure detection in seconds, a few hundred bytes a second per peer
		AliveFanout:        3,                      // each alive reaches ~94% per round; missing 5 rounds in a row is ~1e-6
		AliveBatch:         3,                      // one batch per 300 ms: batches were 5 of the 13-16 messages a peer received per block at 1 per tick (100 KiB at 5/s, 50-100 peers over gRPC), 1.7 at 3; timed CPU -10% at 50 peers. News waits up to 300 ms per hop: a crash known to all 30 peers after 10.8 s on average, not 9.9 s (12 seeds); 5 took 11.4 s
		AliveNeighbours:    3,                      // = AliveFanout: batches go to 3 neighbours (rotating), not 3 random peers: 100 peers held ~1,700 streams instead of ~4,900; CPU 6.6-7.1 s against 10.5-16.7 s, p99 215-556 ms against 888-3054 ms (4 paired runs, 100 KiB)
		NeighbourRotation:  60,                     // one neighbour replaced every 3 alive rounds: a new stream every 6 s, the relay graph fresh every ~40 s
		Expiration:         100,                    // 10 s: five missed alive rounds before a peer is declared dead
		ReconnectInterval:  50,                     // probe one dead member every 5 s
		PurgeAfter:         6000,                   // forget a dead member after 10 minutes
		BootstrapRetry:     20,                     // while alone, ask the bootstrap peers again every 2 s
		SyncInterval:       100,                    // anti-entropy with one random member every 10 s
		MaxResponseMembers: 1000,                   // keeps a membership response well under the transport's message limit
		HeartbeatChain:     128,                    // one signature per peer per ~4 min while idle; a receiver hashes at most 128 times (~40 us) to check a heartbeat
		HeightInterval:     100,                    // 10 s (= SyncInterval): while blocks flow, a fifth of the signatures of one per alive round; heights a few rounds stale
		MaxView:            0,                      // full membership: partial views need seeding until a join protocol exists
		Fanout:             4,                      // eager links a peer starts with: the first block floods over them, duplicates prune them to a tree
		MaxHops:            20,                     // far above log4(10000) ~ 7: never binds in practice, caps a runaway
		PushBatch:          0,                      // forward at once: latency matters more than envelope count
		Tree:               true,                   // about one full copy per peer (amplification ~1.1 vs ~Fanout for random push)
		TreeLazy:           2,                      // two announcers picked (more come back through LazyBack): 100 peers x 100 KiB, 12 paired runs: IHaves 8.6 -> 6.7 per delivery, CPU 8.2 -> 7.5 s, p99 lower in 8; sim churn+loss live p99 +0.6 ms (100 peers) and +1.5 ms (1,000), 16 seeds
		GraftTimeout:       1,                      // on the tick clock, graft at the next tick (0-100 ms after the IHave): a lost eager copy costs one RTT more, not a pull round
		IHaveDelay:         1,                      // on the tick clock, announce at the next tick: a big block's eager copy gets 0-100 ms of head start
		MaxGraftTimeout:    8,                      // 800 ms: even on a saturated machine a lost copy is grafted before pull's 1 s round
		TreeResolution:     5,                      // 20 ms sub-ticks: a lost copy costs tens of ms per repair step, not a tick or two; the Node wakes only while a tree timer is pending
		IHaveDelaySub:      2,                      // 40 ms head start for the eager copy (the tick gave 0-100 ms, 50 on average)
		GraftTimeoutSub:    2,                      // graft 40 ms after the first IHave at the least (the tick gave 0-100 ms), more when eager copies run late
		GraftQuorum:        2,                      // two announcers near our depth, each 40 ms past its copy: ours is lost, graft at the next sub-tick (churn+loss live p99 at 100 peers, 16 seeds: 3.08x -> 2.30x healthy with GraftHedge; healthy amplification +0.007 at most)
		GraftHedge:         2,                      // a lost graft or answer (~10% at 5% loss) cost a retry round trip, ~60 ms: two announcers make that 1%; grafts are rare when healthy (healthy amplification in sim +0.000-0.003)
		CutLagGraft:        true,                   // IHaves come 40 ms after the announcer's copy and a quorum takes two: by then a lost copy is 20-60 ms overdue by our own clock. Sim churn+loss live p99 over healthy 2.09x -> 1.95x at 100 peers (200 seeds), 1.94x -> 1.87x at 1,000; healthy amplification +0.005 to +0.013
		LazyBack:           true,                   // more announcers per peer: churn+loss live p99 2.33x -> 2.07x healthy at 100 peers, 2.04x -> 1.92x at 1,000; ~1 message more per peer per block (12.0 -> 13.0), healthy amplification +0.01 at most
		GraftParent:        true,                   // after a lost graft and a lost hedge: one round trip to the parent, not a pull round 50-100 ms later
		AckResend:          0,                      // gRPC loses messages only with their stream: no acknowledgements (the simulator, which drops single messages, sets 3)
		ParentSilence:      15,                     // 1.5 s: at 8 ticks (the graft timeout's cap) a parent under heavy load fell silent that long and grafts multiplied (1 of 6 100-peer runs, 1 of 2 at 50 x 1 MiB); at 15, 0 of 14; at 4, 3 of 5. A dead parent is pulled around sooner (1 s rounds, PullOnGap)
		StoreSize:          4096,                   // blocks remembered for dedupe: minutes of traffic at 10 blocks/s
		StoreTTL:           3000,                   // 5 min: late duplicates past this are re-verified, never re-committed
		ReorderWindow:      256,                    // = pull's Lookahead: every block pull asks for can be buffered
		MaxOffences:        3,                      // tolerate a bug or two, not a campaign
		BanTicks:           600,                    // ignore an offender for 60 s
		PullEnabled:        true,                   // repair is what makes delivery 1.0
		PullOnGap:          true,                   // a restarted or cut-off peer catches up in a round trip, not up to a second later
		Pull:               pull.DefaultConfig(),
		Election:           election.DefaultConfig(),
	}
}

// FabricConfig reproduces Hyperledger Fabric's gossip defaults, as a
// profile to measure against: every peer pushes a new block once to 3
// peers, alive every 5 s, expiry after 25 s. (Pull every 4 s from 3 peers
// with a 10-block window is the pull engine's Fabric profile.)
func FabricConfig() Config {
	c := DefaultConfig()
	c.AliveInterval = 50 // 5 s
	c.Expiration = 250   // 25 s
	c.ReconnectInterval = 250
	c.HeartbeatChain = 0  // Fabric signs (and verifies) every alive message
	c.AliveBatch = 0      // Fabric relays each alive message on its own, at once
	c.AliveNeighbours = 0 // ... to random live peers (explicit: Fabric must stay so whatever the default)
	c.Fanout = 3
	c.MaxHops = 64      // Fabric has no hop limit
	c.Tree = false      // Fabric pushes each block once to Fanout random peers
	c.PullOnGap = false // Fabric pulls on its interval only
	c.Pull = pull.FabricConfig()
	c.Election = election.FabricConfig()
	return c
}

// MaxTreeResolution bounds Config.TreeResolution (a finer clock buys
// nothing a network round trip does not swamp).
const MaxTreeResolution = 100

// ErrInvalidConfig wraps every Validate failure.
var ErrInvalidConfig = errors.New("invalid gossip config")

// Validate reports the first field out of range.
func (c Config) Validate() error {
	positive := []struct {
		name string
		v    int
	}{
		{"AliveInterval", c.AliveInterval}, {"AliveFanout", c.AliveFanout},
		{"Expiration", c.Expiration}, {"ReconnectInterval", c.ReconnectInterval},
		{"PurgeAfter", c.PurgeAfter}, {"BootstrapRetry", c.BootstrapRetry},
		{"SyncInterval", c.SyncInterval}, {"MaxResponseMembers", c.MaxResponseMembers},
		{"Fanout", c.Fanout}, {"MaxHops", c.MaxHops}, {"StoreSize", c.StoreSize},
		{"StoreTTL", c.StoreTTL}, {"ReorderWindow", c.ReorderWindow},
		{"MaxOffences", c.MaxOffences}, {"BanTicks", c.BanTicks}, {"GraftTimeout", c.GraftTimeout},
		{"MaxGraftTimeout", c.MaxGraftTimeout},
	}
	for _, f := range positive {
		if f.v <= 0 {
			return fmt.Errorf("%w: %s is %d, must be positive", ErrInvalidConfig, f.name, f.v)
		}
	}
	if c.HeartbeatChain < 0 || c.HeartbeatChain > MaxHeartbeatChain {
		return fmt.Errorf("%w: HeartbeatChain is %d, must be 0 (sign every alive) to %d", ErrInvalidConfig, c.HeartbeatChain, MaxHeartbeatChain)
	}
	if c.AliveBatch < 0 || (c.AliveBatch > 0 && c.AliveBatch >= c.Expiration) {
		return fmt.Errorf("%w: AliveBatch is %d, must be 0 (relay at once) or below Expiration (%d): news held longer keeps nobody alive",
			ErrInvalidConfig, c.AliveBatch, c.Expiration)
	}
	if c.AliveNeighbours != 0 && (c.AliveNeighbours < c.AliveFanout || c.NeighbourRotation <= 0) {
		return fmt.Errorf("%w: AliveNeighbours is %d with NeighbourRotation %d: must be 0 (relay to any live peer), or at least AliveFanout (%d) with a positive NeighbourRotation",
			ErrInvalidConfig, c.AliveNeighbours, c.NeighbourRotation, c.AliveFanout)
	}
	if c.HeightInterval < 0 {
		return fmt.Errorf("%w: HeightInterval is %d, must be 0 (sign an alive each round the height changed) or more", ErrInvalidConfig, c.HeightInterval)
	}
	if c.MaxView < 0 {
		return fmt.Errorf("%w: MaxView is %d, must be 0 (full membership) or positive", ErrInvalidConfig, c.MaxView)
	}
	if c.MaxGraftTimeout < c.GraftTimeout {
		return fmt.Errorf("%w: MaxGraftTimeout (%d) is below GraftTimeout (%d); raise it", ErrInvalidConfig, c.MaxGraftTimeout, c.GraftTimeout)
	}
	if c.TreeResolution < 1 || c.TreeResolution > MaxTreeResolution {
		return fmt.Errorf("%w: TreeResolution is %d, must be 1 (tree timers on the tick) to %d sub-ticks per tick", ErrInvalidConfig, c.TreeResolution, MaxTreeResolution)
	}
	if c.IHaveDelaySub < 0 || c.GraftTimeoutSub < 0 {
		return fmt.Errorf("%w: IHaveDelaySub (%d) and GraftTimeoutSub (%d) must be 0 (use the tick values) or positive", ErrInvalidConfig, c.IHaveDelaySub, c.GraftTimeoutSub)
	}
	if c.GraftQuorum < 0 || c.GraftQuorum > maxAnnouncers {
		return fmt.Errorf("%w: GraftQuorum is %d, must be 0 (off) to %d (the announcers kept per block)", ErrInvalidConfig, c.GraftQuorum, maxAnnouncers)
	}
	if c.GraftHedge < 0 || c.GraftHedge > maxAnnouncers {
		return fmt.Errorf("%w: GraftHedge is %d, must be 0 or 1 (one announcer) to %d (the announcers kept per block)", ErrInvalidConfig, c.GraftHedge, maxAnnouncers)
	}
	if c.AckResend < 0 {
		return fmt.Errorf("%w: AckResend is %d, must be 0 (off: a transport that loses messages only with their stream) or more sub-ticks", ErrInvalidConfig, c.AckResend)
	}
	if c.ParentSilence < 0 {
		return fmt.Errorf("%w: ParentSilence is %d, must be 0 (off: a lossy network) or more ticks", ErrInvalidConfig, c.ParentSilence)
	}
	if c.IHaveDelay < 0 {
		return fmt.Errorf("%w: IHaveDelay is %d, must be 0 (announce at once) or more", ErrInvalidConfig, c.IHaveDelay)
	}
	if c.TreeLazy < 0 {
		return fmt.Errorf("%w: TreeLazy is %d, must be 0 or more", ErrInvalidConfig, c.TreeLazy)
	}
	if c.Tree && c.PushBatch > 0 {
		return fmt.Errorf("%w: PushBatch and Tree cannot be combined; pick one", ErrInvalidConfig)
	}
	if c.PushBatch < 0 {
		return fmt.Errorf("%w: PushBatch is %d, must be 0 (off) or positive", ErrInvalidConfig, c.PushBatch)
	}
	if c.Expiration <= c.AliveInterval {
		return fmt.Errorf("%w: Expiration (%d ticks) must exceed AliveInterval (%d ticks), or every member dies between two alives",
			ErrInvalidConfig, c.Expiration, c.AliveInterval)
	}
	if c.PurgeAfter < c.Expiration {
		return fmt.Errorf("%w: PurgeAfter (%d) must be at least Expiration (%d)", ErrInvalidConfig, c.PurgeAfter, c.Expiration)
	}
	if c.PullEnabled {
		if err := c.Pull.Validate(); err != nil {
			return err
		}
		if uint64(c.ReorderWindow) < c.Pull.Lookahead {
			return fmt.Errorf("%w: ReorderWindow (%d) is below Pull.Lookahead (%d): pulled blocks would be dropped; raise ReorderWindow",
				ErrInvalidConfig, c.ReorderWindow, c.Pull.Lookahead)
		}
	}
	if err := c.Election.Validate(); err != nil {
		return err
	}
	return nil
}

// validateNode adds the checks that only matter for a Node.
func (c Config) validateNode() error {
	if err := c.Validate(); err != nil {
		return err
	}
	if c.TickInterval <= 0 {
		return fmt.Errorf("%w: TickInterval is %v, must be positive", ErrInvalidConfig, c.TickInterval)
	}
	if c.TickInterval < time.Duration(c.TreeResolution)*time.Millisecond {
		return fmt.Errorf("%w: TickInterval %v is under a millisecond per sub-tick (TreeResolution %d); lower TreeResolution", ErrInvalidConfig, c.TickInterval, c.TreeResolution)
	}
	return nil
}
