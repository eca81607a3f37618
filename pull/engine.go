package pull

import (
	"encoding/binary"
	"fmt"
	"math"
	"math/rand/v2"

	"github.com/blockgossip/blockgossip/identity"
	pb "github.com/blockgossip/blockgossip/protos"
)

// Store is the engine's read-only view of the local chain, implemented by
// gossip over the ledger and its verified reorder buffer. It is called only
// from Tick, Step and OnCommitted, on the caller's goroutine.
type Store interface {
	// Height is the ledger height: blocks [0, Height) are committed.
	Height() uint64
	// Have reports whether block n is committed or verified and buffered.
	Have(n uint64) bool
	// Block returns block n for serving requests. The engine does not
	// modify it.
	Block(n uint64) (*pb.Block, bool)
}

// PeerInfo is a live member (of any organisation) and the ledger height it
// advertises in its alive messages.
type PeerInfo struct {
	ID     identity.PKIID
	Height uint64
	// Incarnation is the member's restart counter, from its alive
	// messages. Its height may go down only with a new incarnation, or after
	// it dropped out of the live list for a tick; any other decrease counts
	// as a lie. Callers without incarnations leave it zero.
	Incarnation uint64
	// Near marks a peer this one already talks to (a push-tree neighbour):
	// a round's hellos go to near peers first (see Config.FarPeers), so
	// that pull rounds do not open a stream to every member in turn.
	Near bool
}

// Out is a message to send to one peer.
type Out struct {
	To  identity.PKIID
	Msg *pb.GossipMessage
}

// Via tells which mechanism fetched a block.
type Via int

// How a Received block came.
const (
	ViaPull Via = iota + 1
	ViaState
)

func (v Via) String() string {
	switch v {
	case ViaPull:
		return "pull"
	case ViaState:
		return "state"
	}
	return fmt.Sprintf("Via(%d)", int(v))
}

// Received is a block that arrived from a peer in answer to our request. It
// is unverified: the caller verifies it, drops duplicates, buffers and
// commits it, and calls ReportInvalid(From) if verification fails.
type Received struct {
	From  identity.PKIID
	Block *pb.Block
	Via   Via
}

// Stats counts what the engine did, for metrics and tests.
type Stats struct {
	HellosSent, DigestsSent, PullRequestsSent, PullBlocksServed uint64
	PullReasks                                                  uint64 // blocks asked again of a second responder
	StateRequestsSent, StateHedges, StateBlocksServed           uint64
	PullBlocksReceived, StateBlocksReceived                     uint64
	StateTimeouts, Strikes, Dropped                             uint64
	CatchUpRequests                                             uint64 // state requests of the range right above our height (CatchUpPeers)
	Rehellos                                                    uint64 // hellos sent again, to other peers, after a round got no digest in time
	LateAsks                                                    uint64 // blocks asked of a digest that came after the round's request (nobody else asked)
}

// Engine runs pull and state transfer for one peer. It is not safe for
// concurrent use: one goroutine (the node's loop) calls all its methods.
type Engine struct {
	cfg   Config
	self  identity.PKIID
	rng   *rand.Rand
	store Store

	now      int                           // logical ticks since New
	res      int                           // sub-ticks per tick (SetSubTicks)
	sub      int                           // fine clock: sub-ticks since New (now*res + the sub-tick within the tick)
	best     uint64                        // greatest height a live peer advertises
	soon     bool                          // PullSoon between ticks: start a round at the next sub-tick
	again    bool                          // blocks freed while a round was under way: a new round once none is (pullAgain)
	grace    int                           // DigestGrace (DigestGraceSub) in sub-ticks, 0: off
	ran      int                           // sub-tick at which Tick or SubTick last ran the timers
	peers    map[identity.PKIID]*peerState // live and recently live peers
	live     []identity.PKIID              // this tick's live peers, in the caller's order
	nextPull int                           // tick of the next pull round
	nRounds  int                           // rounds started (every FarRounds-th is a far round)
	startup  bool                          // PullOnStart: pull as soon as a peer is live
	ticking  bool                          // inside Tick (see sentAt)
	reaskT   reaskTimer                    // when an unanswered pull request is re-asked (sub-ticks)
	stateT   reaskTimer                    // when an unanswered state request is hedged (sub-ticks)

	rounds  map[uint64]*round         // our pull rounds, by nonce
	pending map[uint64]int            // block -> tick its pull request expires
	served  map[identity.PKIID]served // digests we sent and may serve
	digest  digestCache               // this tick's digest
	states  map[uint64]*stateReq      // our state requests in flight, by nonce

	stats Stats
}

// New returns an engine for member self. rng drives every random choice
// (nonces, peer selection), so a seeded rng makes a run reproducible.
func New(cfg Config, self identity.PKIID, rng *rand.Rand, store Store) (*Engine, error) {
	if err := cfg.Validate(); err != nil {
		return nil, err
	}
	if rng == nil || store == nil {
		return nil, fmt.Errorf("%w: rng and store are required", ErrInvalidConfig)
	}
	e := &Engine{
		cfg:      cfg,
		res:      1,
		self:     self,
		rng:      rng,
		store:    store,
		peers:    make(map[identity.PKIID]*peerState),
		nextPull: 1 + rng.IntN(cfg.PullInterval), // spread peers' rounds over the interval
		nRounds:  farPhase(self, cfg.FarRounds),
		startup:  cfg.PullOnStart, // (re)started: blocks may have been cut while we were down
		rounds:   make(map[uint64]*round),
		pending:  make(map[uint64]int),
		served:   make(map[identity.PKIID]served),
		states:   make(map[uint64]*stateReq),
	}
	e.SetSubTicks(1)
	return e, nil
}

// SetSubTicks tells the engine that its caller runs it on a clock of res
// sub-ticks per tick (gossip: Config.TreeResolution): the caller calls
// SubTick(k) at k/res of the way to the next tick while NextDeadline
// reports a timer due, and Advance(k) before it steps a message that
// arrived then. The fine timers (DigestGraceSub, ReaskAfterSub, state
// hedging, PullSoon) then fall due within the tick; intervals, nonce
// lifetimes and cooldowns stay in ticks. res 1 (the default) keeps every
// timer on whole ticks. Call it before the first Tick.
func (e *Engine) SetSubTicks(res int) {
	e.res = max(res, 1)
	e.sub = e.now * e.res
	c := e.cfg
	e.grace = subFloor(c.DigestGrace, c.DigestGraceSub, e.res)
	reask := subFloor(c.ReaskAfter, c.ReaskAfterSub, e.res)
	e.reaskT = newReaskTimer(reask, (c.NonceTTL-1)*e.res)
	e.stateT = newReaskTimer(reask, (c.StateTimeout-1)*e.res)
}

// subFloor converts ticks to sub-ticks at resolution res, shortened to sub
// when sub is above zero and shorter; 0 ticks stays 0 (off).
func subFloor(ticks, sub, res int) int {
	if ticks == 0 {
		return 0
	}
	if sub > 0 && res > 1 {
		return min(ticks*res, sub)
	}
	return ticks * res
}

// Tick advances logical time by one tick. live lists the members currently
// alive with their advertised heights (self, if present, is ignored). It
// returns the messages to send: pull hellos and requests, state requests.
func (e *Engine) Tick(live []PeerInfo) []Out {
	e.now++
	e.sub = e.now * e.res
	e.ticking = true
	defer func() { e.ticking = false }()
	e.updatePeers(live)
	var out []Out
	out = append(out, e.tickPull()...)
	out = append(out, e.tickState()...)
	e.ran = e.sub
	return out
}

// Advance moves the fine clock to sub-tick k of the current tick (see
// SetSubTicks; a larger k is taken as the tick's last sub-tick, and the
// clock never goes back) without running timers: a caller that steps a
// message at sub-tick k first tells the engine the time.
func (e *Engine) Advance(k int) {
	if k >= 0 {
		e.sub = max(e.sub, e.now*e.res+min(k, e.res-1))
	}
}

// SubTick moves the fine clock to sub-tick k of the current tick and runs
// the timers due by then: requests whose digest grace is over, re-asks,
// state hedges, catch-up and a round brought forward by PullSoon. It
// returns the messages to send. With SetSubTicks(1) there is nothing for
// it to do that Tick does not.
func (e *Engine) SubTick(k int) []Out {
	e.Advance(k)
	e.ran = e.sub
	var out []Out
	for _, nonce := range sortedKeys(e.rounds) {
		out = append(out, e.roundTimers(e.rounds[nonce])...)
	}
	if e.soon {
		e.soon = false // a round under way meanwhile: PullSoon has nothing to do
		if !e.pulling() {
			e.nextPull = e.now + e.cfg.PullInterval
			out = append(out, e.startRound()...)
		}
	}
	out = append(out, e.hedge()...)
	return append(out, e.catchUp(span{})...)
}

// NextDeadline reports the sub-tick of the current tick at which the
// earliest fine timer falls due (the caller then calls SubTick with it),
// or false when none falls due before the next tick. A timer already due
// gives the clock's current sub-tick, unless the timers already ran at
// it and could not act (a hedge with no peer to ask): then the next
// sub-tick, so that a caller never spins on one.
func (e *Engine) NextDeadline() (k int, ok bool) {
	if e.res <= 1 {
		return 0, false
	}
	next := math.MaxInt
	if e.soon {
		next = e.sub + 1
	}
	for _, r := range e.rounds {
		switch {
		case !r.requested && e.grace > 0 && r.firstAt >= 0:
			next = min(next, r.firstAt+e.grace)
		case e.silent(r):
			next = min(next, r.helloAt+e.reaskT.ticks())
		case r.requested && e.cfg.ReaskAfter > 0:
			for _, a := range r.assigned {
				if !a.late {
					next = min(next, a.sent+e.reaskT.ticks())
				}
			}
		}
	}
	if e.cfg.ReaskAfter > 0 {
		h := e.store.Height()
		slots := len(e.states) < e.cfg.MaxInFlight+1
		for _, s := range e.states {
			if s.start <= h && h < s.end && (!s.hedged && slots || s.catchUp && !s.reasked) {
				next = min(next, s.sent+e.stateT.ticks())
			}
		}
	}
	if next == math.MaxInt {
		return 0, false
	}
	next = max(next, e.ran+1)
	start := e.now * e.res
	if next >= start+e.res {
		return 0, false
	}
	return max(next, e.sub) - start, true
}

// Step handles one message from peer from. It returns the messages to send
// in answer and the blocks that arrived (unverified). Messages that are not
// pull or state messages, malformed, unsolicited or stale are dropped.
func (e *Engine) Step(from identity.PKIID, msg *pb.GossipMessage) ([]Out, []Received) {
	if from == e.self {
		e.stats.Dropped++
		return nil, nil
	}
	switch c := msg.GetContent().(type) {
	case *pb.GossipMessage_PullHello:
		return e.onHello(from, c.PullHello), nil
	case *pb.GossipMessage_PullDigest:
		return e.onDigest(from, c.PullDigest), nil
	case *pb.GossipMessage_PullRequest:
		return e.onPullRequest(from, c.PullRequest), nil
	case *pb.GossipMessage_PullResponse:
		return nil, e.onPullResponse(from, c.PullResponse)
	case *pb.GossipMessage_StateRequest:
		return e.onStateRequest(from, c.StateRequest), nil
	case *pb.GossipMessage_StateResponse:
		return e.onStateResponse(from, c.StateResponse)
	}
	e.stats.Dropped++
	return nil, nil
}

// ReportInvalid tells the engine that a block received from peer from
// failed verification. The peer gets a strike; the block is fetched again
// elsewhere because the store still lacks it.
func (e *Engine) ReportInvalid(from identity.PKIID) { e.strike(from) }

// OnCommitted tells the engine the ledger height grew to height.
func (e *Engine) OnCommitted(height uint64) {
	for n := range e.pending {
		if n < height {
			delete(e.pending, n)
		}
	}
	e.digest.valid = false
}

// farPhase is where in its cycle of FarRounds rounds a peer starts: its
// far rounds (hellos that may open a stream, a TLS handshake at each end)
// fall at a phase of its own. With every peer's first round far, peers
// started together made their far rounds together, FarRounds rounds
// later: over gRPC at 100 peers, in the bench runs whose first timed
// blocks were slow, 76-94 peers were first heard from within one second
// of them, 61-63 of them by pull hellos and digests (13 and 2 in a run
// without), and those blocks took 300-800 ms to reach everyone instead of
// 30-50. It is drawn from the peer's ID, not from the engine's rng, so
// that no other random choice moves.
func farPhase(self identity.PKIID, farRounds int) int {
	if farRounds <= 1 {
		return 0
	}
	return int(binary.LittleEndian.Uint32(self[:4]) % uint32(farRounds))
}

// PullSoon brings the next pull round forward to the next tick (with
// sub-ticks, when called between ticks, the next sub-tick), unless a
// round is already under way: the caller knows it is behind (a gap in its
// reorder buffer, or peers advertising a greater height) and should not
// wait out PullInterval. The next regular round comes PullInterval after
// this one, so peers that pull soon at the same moment (a block late
// everywhere) pull in step from then on (seen over gRPC at 100 peers: 200
// hellos and digests in one 200 ms window each second). A round under
// way that has no digest yet may then say hello to other peers again more
// than once (maxRehellos).
func (e *Engine) PullSoon() {
	if !e.pulling() && e.nextPull > e.now+1 {
		e.nextPull = e.now + 1
		e.soon = e.res > 1 && !e.ticking // between ticks: at the next sub-tick
	}
	for _, r := range e.rounds {
		if !r.requested && r.firstAt < 0 {
			r.behind = true
		}
	}
}

// Soon reports whether a round brought forward by PullSoon between ticks
// waits for the next sub-tick.
func (e *Engine) Soon() bool { return e.soon }

// pulling reports whether a round is under way: collecting digests, or
// waiting for an answer that is not yet late. Without ReaskAfter a round
// is under way until it ends (all answers in, or NonceTTL).
func (e *Engine) pulling() bool {
	for _, r := range e.rounds {
		if !r.requested || e.cfg.ReaskAfter == 0 {
			return true
		}
		for _, a := range r.assigned {
			if !a.late {
				return true
			}
		}
	}
	return false
}

// Stats returns the counters so far.
func (e *Engine) Stats() Stats { return e.stats }

// Cooling reports whether peer id is in cooldown (not asked for anything).
func (e *Engine) Cooling(id identity.PKIID) bool {
	p, ok := e.peers[id]
	return ok && e.now < p.until
}

// newNonce returns a fresh non-zero nonce (zero is what a missing field
// decodes to) not used by any of our open requests.
func (e *Engine) newNonce() uint64 {
	for {
		n := e.rng.Uint64()
		if _, used := e.rounds[n]; n != 0 && !used && e.states[n] == nil {
			return n
		}
	}
}
