package pull

import (
	"errors"
	"fmt"
)

// ErrInvalidConfig wraps every Config.Validate failure.
var ErrInvalidConfig = errors.New("invalid pull config")

// Config holds the engine's knobs. Intervals are counted in ticks, not time:
// the gossip node ticks every 100 ms by default, so 10 ticks is one second.
type Config struct {
	// PullInterval is the number of ticks between two pull rounds.
	PullInterval int
	// PullPeers is how many random live peers each round sends PullHello to.
	PullPeers int
	// FarPeers is how many of a far round's PullPeers are drawn from all
	// live peers; the others, and all of the other rounds' (see FarRounds),
	// are drawn from the near ones (PeerInfo.Near) while there are enough.
	// At PullPeers or more every hello of a far round goes to a random live
	// peer (Fabric).
	FarPeers int
	// FarRounds: every FarRounds-th round is a far round (1: all).
	FarRounds int
	// DigestWindow is how many blocks a digest covers on each side of the
	// responder's height: committed blocks [height-W, height) and buffered
	// ones in [height, height+W).
	DigestWindow uint64
	// DigestWait is how many ticks the initiator waits for digests before
	// requesting with those it has.
	DigestWait int
	// DigestGrace, when above 0, cuts the wait short: the initiator
	// requests at the DigestGrace-th tick after the first digest arrived,
	// with the digests in by then (the others come within a round trip of
	// the first; later, they were lost). Digests arriving after the request
	// still serve re-asks. 0 waits out DigestWait (Fabric).
	DigestGrace int
	// DigestGraceSub, when above 0 and shorter, is the DigestGrace wait in
	// the caller's sub-ticks (see Engine.SetSubTicks): the request goes out
	// within a sub-tick of the first digest's round trip, not at the next
	// tick. Ignored at one sub-tick per tick.
	DigestGraceSub int
	// NonceTTL is how many ticks a nonce stays valid, on both sides.
	NonceTTL int
	// MaxRanges caps the ranges read from or written into one digest or
	// request; extra ranges are ignored.
	MaxRanges int
	// MaxBlocksPerResponse caps the blocks asked from, or served to, one
	// peer per pull round.
	MaxBlocksPerResponse int
	// MaxResponseBytes caps the block bytes in one pull or state response.
	// A response always carries at least one block, so a block larger than
	// the cap still travels.
	MaxResponseBytes int
	// StateTransferThreshold: state transfer starts when a live peer is
	// more than this many blocks ahead of our height.
	StateTransferThreshold uint64
	// BatchSize is the maximum number of blocks in one state request.
	BatchSize uint64
	// MaxInFlight is how many state requests may be outstanding at once.
	MaxInFlight int
	// StateTimeout is how many ticks a state request may stay unanswered
	// before the range is asked elsewhere and the peer gets a strike.
	StateTimeout int
	// Lookahead bounds how far above our height the engine asks for blocks
	// (by pull or state transfer); the caller's reorder buffer must hold at
	// least this many blocks.
	Lookahead uint64
	// BaseCooldown is the cooldown, in ticks, after a first strike; each
	// further consecutive strike doubles it.
	BaseCooldown int
	// MaxCooldown caps the cooldown, in ticks.
	MaxCooldown int
	// MaxServed caps the table of digests we answered and may serve
	// (one entry per requesting peer).
	MaxServed int
	// ReaskAfter is how many whole ticks a pull request may go unanswered
	// before the blocks it still lacks are asked, once, of another
	// responder of the same round; 0 disables re-asking (a lost request or response
	// then costs a round). It must be below NonceTTL, since the other
	// responder serves only within its digest's lifetime.
	ReaskAfter int
	// ReaskAfterSub, when above 0 and shorter, is the starting ReaskAfter
	// deadline in sub-ticks (see Engine.SetSubTicks); for pull re-asks and
	// state hedges alike, it then follows the answers' measured round trip
	// (plus a sub-tick of rounding), as ReaskAfter does in ticks. Ignored at
	// one sub-tick per tick.
	ReaskAfterSub int
	// CatchUpPeers, when above 0, lets a peer that is behind (a live peer
	// advertises two blocks or more above our height) ask the range right
	// above its height directly, of this many holders at once, instead of
	// waiting for a hello/digest round trip; once all of them are late
	// (the state answers' deadline, see ReaskAfter) it asks as many others.
	// One range of at most BatchSize blocks at a time. 0: off (Fabric).
	CatchUpPeers int
	// PullOnStart makes an engine start a pull round at its first tick
	// (or the first with a live peer), instead of at a random tick of the
	// first PullInterval: a restarted peer missed what was cut while it was
	// down, whatever its ledger held (a peer that crashed before its first
	// commit restarts empty), and only push of new blocks would tell it.
	PullOnStart bool
}

// DefaultConfig returns blockgossip's defaults: pull as a fast backstop for
// push, state transfer that streams.
func DefaultConfig() Config {
	return Config{
		PullInterval:           10,      // 1 s: push misses are rare, but the few who miss should not wait Fabric's 4 s
		PullPeers:              3,       // as Fabric: enough to find a holder, few enough to stay cheap
		FarPeers:               1,       // hellos go to tree neighbours (streams already open) but one in ...
		FarRounds:              10,      // ... every 10 s goes to anybody: at 100 peers random hellos had opened a stream to every member within seconds
		DigestWindow:           128,     // a digest of a contiguous window is two ranges, so a wide one is free on the wire
		DigestWait:             3,       // 300 ms: three round trips on a LAN; usually all digests arrive before
		DigestGrace:            1,       // a lost hello or digest costs 0-100 ms, not DigestWait ...
		DigestGraceSub:         1,       // ... and 0-20 ms with gossip's 20 ms sub-ticks: digests come within a round trip of each other
		NonceTTL:               20,      // 2 s: covers digest wait plus request and response on a slow link
		MaxRanges:              64,      // a digest fragmented beyond this is a sign of abuse, not of holes
		MaxBlocksPerResponse:   64,      // one responder covers a window-sized gap in two rounds
		MaxResponseBytes:       4 << 20, // stays under gRPC's default 4 MiB message limit with framing
		StateTransferThreshold: 128,     // = DigestWindow: below it the digest already covers the gap
		BatchSize:              64,      // Fabric asks 10 at a time; bigger batches stream catch-up
		MaxInFlight:            4,       // pipelined: one batch in each direction per peer, a few peers
		StateTimeout:           10,      // 1 s: a 64-block batch of 10 KiB blocks crosses a LAN in milliseconds
		Lookahead:              256,     // = MaxInFlight * BatchSize, so pipelining is never starved
		BaseCooldown:           50,      // 5 s: long enough to route around a flaky peer, short enough to forgive loss
		MaxCooldown:            3000,    // 5 min: a persistent liar is asked about once per 5 minutes
		MaxServed:              1024,    // one digest per requesting peer; bounds memory against many peers
		ReaskAfter:             1,       // 100-200 ms: a LAN answer takes milliseconds (sim, two 80 ms regions: no extra bytes)
		ReaskAfterSub:          2,       // 40 ms to start with (sub-ticks of 20 ms), then the measured round trip: a LAN answers in ~30 ms
		CatchUpPeers:           2,       // a restarted or lagging peer asks two holders for the next range at once: a lost answer costs nothing
		PullOnStart:            true,    // a restarted peer missed what was cut while it was down: ask at once (3 hellos)
	}
}

// FabricConfig reproduces Hyperledger Fabric's pull and state transfer, as a
// profile to measure against. Ticks assume gossip's default 100 ms tick.
func FabricConfig() Config {
	c := DefaultConfig()
	c.PullInterval = 40           // Fabric PullInterval 4 s
	c.PullPeers = 3               // Fabric PullPeerNum 3
	c.FarPeers = c.PullPeers      // Fabric picks every pull peer at random ...
	c.FarRounds = 1               // ... in every round
	c.DigestWindow = 10           // Fabric's in-memory block store keeps the last 10 blocks
	c.DigestWait = 10             // Fabric DigestWaitTime 1 s
	c.NonceTTL = 40               // Fabric request wait 1.5 s + response wait 2 s
	c.StateTransferThreshold = 10 // = DigestWindow: beyond it pull cannot find the blocks
	c.BatchSize = 10              // Fabric state batch size 10
	c.MaxInFlight = 1             // Fabric's anti-entropy asks one batch at a time
	c.StateTimeout = 30           // Fabric state response timeout 3 s
	c.Lookahead = 100             // Fabric's payload buffer (defMaxBlockDistance 20, batch 10) — generous
	c.DigestGrace = 0             // Fabric waits out DigestWaitTime
	c.ReaskAfter = 0              // Fabric asks each digest item once per round
	c.PullOnStart = false         // Fabric's first pull comes on its PullInterval timer
	c.DigestGraceSub = 0          // Fabric's timers are whole ticks ...
	c.ReaskAfterSub = 0           // ...
	c.CatchUpPeers = 0            // Fabric learns what to ask from digests (or state transfer beyond 10 blocks)
	return c
}

// Validate rejects settings the engine cannot run with.
func (c Config) Validate() error {
	bad := func(format string, args ...any) error {
		return fmt.Errorf("%w: %s", ErrInvalidConfig, fmt.Sprintf(format, args...))
	}
	switch {
	case c.PullInterval < 1:
		return bad("PullInterval %d: must be at least 1 tick", c.PullInterval)
	case c.PullPeers < 0:
		return bad("PullPeers %d: must be >= 0 (0 disables pull)", c.PullPeers)
	case c.FarPeers < 0:
		return bad("FarPeers %d: must be >= 0 (0 asks near peers only while there are enough)", c.FarPeers)
	case c.FarRounds < 1:
		return bad("FarRounds %d: must be >= 1 (1 makes every round a far round)", c.FarRounds)
	case c.DigestWindow < 1:
		return bad("DigestWindow must be at least 1 block")
	case c.DigestWait < 1 || c.NonceTTL <= c.DigestWait:
		return bad("need 1 <= DigestWait (%d) < NonceTTL (%d)", c.DigestWait, c.NonceTTL)
	case c.DigestGrace < 0:
		return bad("DigestGrace %d: must be >= 0 (0 waits out DigestWait)", c.DigestGrace)
	case c.MaxRanges < 1:
		return bad("MaxRanges must be at least 1")
	case c.MaxBlocksPerResponse < 1:
		return bad("MaxBlocksPerResponse must be at least 1")
	case c.MaxResponseBytes < 1:
		return bad("MaxResponseBytes must be at least 1")
	case c.BatchSize < 1:
		return bad("BatchSize must be at least 1 block")
	case c.MaxInFlight < 0:
		return bad("MaxInFlight %d: must be >= 0 (0 disables state transfer)", c.MaxInFlight)
	case c.StateTimeout < 1:
		return bad("StateTimeout must be at least 1 tick")
	case c.Lookahead < c.BatchSize:
		return bad("Lookahead (%d) must be at least BatchSize (%d)", c.Lookahead, c.BatchSize)
	case c.BaseCooldown < 1 || c.MaxCooldown < c.BaseCooldown:
		return bad("need 1 <= BaseCooldown (%d) <= MaxCooldown (%d)", c.BaseCooldown, c.MaxCooldown)
	case c.MaxServed < 1:
		return bad("MaxServed must be at least 1")
	case c.DigestGraceSub < 0 || c.ReaskAfterSub < 0:
		return bad("DigestGraceSub %d, ReaskAfterSub %d: must be >= 0 (0: whole ticks)", c.DigestGraceSub, c.ReaskAfterSub)
	case c.CatchUpPeers < 0:
		return bad("CatchUpPeers %d: must be >= 0 (0 disables direct catch-up)", c.CatchUpPeers)
	case c.ReaskAfter < 0 || c.ReaskAfter >= c.NonceTTL:
		return bad("ReaskAfter %d: need 0 (off) <= ReaskAfter < NonceTTL (%d)", c.ReaskAfter, c.NonceTTL)
	}
	return nil
}
