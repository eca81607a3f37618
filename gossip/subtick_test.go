package gossip

import (
	"context"
	"log/slog"
	"math/rand/v2"
	"sync"
	"testing"
	"testing/synctest"
	"time"

	"github.com/blockgossip/blockgossip/comm"
	"github.com/blockgossip/blockgossip/identity"
	pb "github.com/blockgossip/blockgossip/protos"
)

// subTickUntilTreeMsgTo runs p's sub-ticks from..to-1 of the current tick
// and returns the first at which p sent id a tree message (-1: none).
func subTickUntilTreeMsgTo(p *Peer, id identity.PKIID, from, to int) int {
	for k := from; k < to; k++ {
		p.SubTick(k)
		if len(treeMsgsTo(p.Ready().Messages, id)) > 0 {
			return k
		}
	}
	return -1
}

// A lost eager copy is grafted GraftTimeoutSub sub-ticks after its first
// IHave, within the tick, not at the next tick: the IHave at sub-tick 1,
// the graft at sub-tick 1 + 2 (40 ms later, where the tick clock grafted
// at the next tick, 80 ms later, or with a lateness of one tick, 180 ms).
// NextTreeDeadline tells the caller when to wake for it.
func TestSubTickGraftsWithinTheTick(t *testing.T) {
	cfg := lossyConfig()
	cfg.PullEnabled = false
	_, p, chain := graftPeer(t, cfg, 60, 2)
	if k, ok := p.NextTreeDeadline(); ok {
		t.Fatalf("nothing pending, yet a tree deadline at sub-tick %d", k)
	}
	a := fakeID(1)
	p.SubTick(1)
	ihaveFrom(p, a, chain, 1)
	p.Ready()
	want := 1 + cfg.GraftTimeoutSub
	if k, ok := p.NextTreeDeadline(); !ok || k != want {
		t.Fatalf("NextTreeDeadline after an IHave at sub-tick 1 = %d, %v; want %d, true", k, ok, want)
	}
	if got := subTickUntilTreeMsgTo(p, a, 2, cfg.TreeResolution); got != want {
		t.Fatalf("grafted at sub-tick %d, want %d (GraftTimeoutSub after the IHave)", got, want)
	}
	// The retry waits the round-trip margin (two sub-ticks): still this
	// tick when the graft went out early enough, else the next tick's.
	if k, ok := p.NextTreeDeadline(); ok != (want+2 < cfg.TreeResolution) || (ok && k != want+2) {
		t.Fatalf("retry deadline %d, %v; want sub-tick %d of this tick if there is one", k, ok, want+2)
	}
}

// The IHave for a forwarded block waits IHaveDelaySub sub-ticks, not
// until the next tick.
func TestSubTickIHaveDelay(t *testing.T) {
	cfg := DefaultConfig()
	cfg.PullEnabled = false
	net := seededNet(t, 12, cfg, 61)
	net.ticks(2)
	p := net.peers[0].p
	net.collect(net.peers[0])
	if len(p.lazy.ids) == 0 {
		t.Fatal("no lazy neighbours")
	}
	p.SubTick(1)
	if err := p.InjectBlock(makeChain(testOrderer, 1, 61)[0]); err != nil {
		t.Fatal(err)
	}
	want := 1 + cfg.IHaveDelaySub
	for k := 1; k < cfg.TreeResolution; k++ {
		if k > 1 {
			p.SubTick(k)
		}
		n := countIHaves(p.Ready().Messages)
		switch {
		case k == want && n != len(p.lazy.ids):
			t.Fatalf("sub-tick %d: %d IHaves, want one per lazy neighbour (%d)", k, n, len(p.lazy.ids))
		case k != want && n != 0:
			t.Fatalf("sub-tick %d: %d IHaves, want them at sub-tick %d", k, n, want)
		}
	}
}

// Lateness is measured in sub-ticks: an eager copy 3 sub-ticks after its
// IHave sets the next graft timeout to 4 sub-ticks (late + one), which is
// one tick rounded up for pull's stall detection.
func TestSubTickLatenessInSubTicks(t *testing.T) {
	cfg := lossyConfig()
	cfg.PullEnabled = false
	_, p, chain := graftPeer(t, cfg, 62, 3)
	a := fakeID(1)
	p.SubTick(0)
	ihaveFrom(p, a, chain, 1)
	p.Ready()
	if got := subTickUntilTreeMsgTo(p, a, 1, 4); got != cfg.GraftTimeoutSub {
		t.Fatalf("grafted at sub-tick %d, want %d", got, cfg.GraftTimeoutSub)
	}
	// At sub-tick 3 the graft's answer comes, then the parent's own copy,
	// 3 sub-ticks after the IHave: it was late, not lost.
	p.SubTick(3)
	p.Step(a, "org1", pushEnv(chain[1], 1), 0)
	p.Step(fakeID(0), "org1", pushEnv(chain[1], 1), 0)
	p.Ready()
	if got := p.graftTimeoutSub(); got != 4 {
		t.Fatalf("graft timeout %d sub-ticks after a copy 3 sub-ticks late, want 4", got)
	}
	if got := p.GraftTimeout(); got != 1 {
		t.Fatalf("graft timeout %d ticks, want 1 (4 sub-ticks rounded up)", got)
	}
}

// The clock stays within the tick and never goes back; Tick moves it to
// the next tick's first sub-tick.
func TestSubTickClock(t *testing.T) {
	cfg := DefaultConfig()
	_, p, _ := graftPeer(t, cfg, 63, 1)
	start := p.Now() * uint64(cfg.TreeResolution)
	p.SubTick(3)
	p.SubTick(1)
	if got := p.TreeNow(); got != start+3 {
		t.Fatalf("TreeNow %d after SubTick(3), SubTick(1); want %d", got, start+3)
	}
	p.SubTick(1000)
	if got := p.TreeNow(); got != start+uint64(cfg.TreeResolution)-1 {
		t.Fatalf("TreeNow %d after SubTick(1000), want the tick's last sub-tick %d", got, start+uint64(cfg.TreeResolution)-1)
	}
	p.Tick()
	if got := p.TreeNow(); got != p.Now()*uint64(cfg.TreeResolution) {
		t.Fatalf("TreeNow %d after Tick, want %d", got, p.Now()*uint64(cfg.TreeResolution))
	}
}

// TreeResolution 1 is the tick clock: the timeouts are those of the
// tick formulas, and nothing ever falls due between ticks.
func TestTreeResolutionOneIsTheTick(t *testing.T) {
	cfg := lossyConfig()
	cfg.PullEnabled = false
	cfg.TreeResolution = 1
	_, p, chain := graftPeer(t, cfg, 64, 2)
	rng := rand.New(rand.NewPCG(64, 1))
	for range 1000 {
		p.lateX8, p.rttX8 = rng.Uint64N(100), rng.Uint64N(100)
		wantGraft := min(max(p.lateX8/8+1, uint64(cfg.GraftTimeout)), uint64(cfg.MaxGraftTimeout))
		wantRetry := min(p.rttX8/8+1, uint64(cfg.MaxGraftTimeout))
		if p.graftTimeoutSub() != wantGraft || p.graftTimeout() != wantGraft || p.retryTimeout() != wantRetry {
			t.Fatalf("lateX8 %d rttX8 %d: graft %d/%d retry %d, want %d and %d",
				p.lateX8, p.rttX8, p.graftTimeoutSub(), p.graftTimeout(), p.retryTimeout(), wantGraft, wantRetry)
		}
	}
	if p.ihaveDelay() != uint64(cfg.IHaveDelay) {
		t.Fatalf("IHave delay %d, want IHaveDelay %d", p.ihaveDelay(), cfg.IHaveDelay)
	}
	p.lateX8, p.rttX8 = 0, 0
	ihaveFrom(p, fakeID(1), chain, 1)
	p.SubTick(0)
	if k, ok := p.NextTreeDeadline(); ok {
		t.Fatalf("a tree deadline at sub-tick %d with TreeResolution 1", k)
	}
	if got := tickUntilTreeMsgTo(p, fakeID(1)); len(got) == 0 || got[0] != "graft" {
		t.Fatalf("after the next tick: %v, want a graft", got)
	}
}

// lockedTransport is a queueTransport for a running Node: the test reads
// what was sent while the Node's goroutine may be sending.
type lockedTransport struct {
	queueTransport
	mu  sync.Mutex
	log []sentAt
}

type sentAt struct {
	to  identity.PKIID
	env *pb.Envelope
	at  time.Time
}

func (l *lockedTransport) Send(to comm.Peer, env *pb.Envelope) error {
	l.mu.Lock()
	defer l.mu.Unlock()
	l.log = append(l.log, sentAt{to.ID, env, time.Now()})
	return nil
}

// sentSince lists how long after start the messages that keep accepts
// were sent.
func (l *lockedTransport) sentSince(start time.Time, keep func(to identity.PKIID, msg *pb.GossipMessage) bool) []time.Duration {
	l.mu.Lock()
	defer l.mu.Unlock()
	var at []time.Duration
	for _, s := range l.log {
		if msg, err := decode(s.env); err == nil && keep(s.to, msg) {
			at = append(at, s.at.Sub(start))
		}
	}
	return at
}

// timedInput is a message handed to a running test Node at a moment of its
// synctest bubble's fake clock.
type timedInput struct {
	at  time.Duration
	msg comm.Message
}

// runTestNode runs a Node over p and tr in a synctest bubble for d of the
// bubble's fake clock, handing it each input at its moment (scheduled
// with time.AfterFunc), then cancels it, checks what Run returned and
// returns when it started. Nothing sleeps: the fake clock moves to the
// next timer (the Node's ticker and tree timers, the inputs, the end)
// whenever every goroutine of the bubble is blocked.
func runTestNode(t *testing.T, cfg Config, p *Peer, tr *lockedTransport, d time.Duration, inputs ...timedInput) (start time.Time) {
	n := &Node{cfg: cfg, deps: Deps{Transport: tr}, log: slog.New(slog.DiscardHandler), met: NopMetrics(),
		peer: p, commits: make(chan CommitEvent, commitBuffer), inject: make(chan injectReq),
		started: make(chan struct{}), stopped: make(chan struct{})}
	ctx, cancel := context.WithCancel(t.Context())
	done := make(chan error, 1)
	start = time.Now()
	go func() { done <- n.Run(ctx) }()
	for _, in := range inputs {
		time.AfterFunc(in.at, func() { tr.in <- in.msg })
	}
	time.AfterFunc(d, cancel)
	if err := <-done; err != nil {
		t.Fatal(err)
	}
	return start
}

// A running Node wakes for the tree's timers between ticks: an IHave
// that arrives 30 ms into a tick (sub-tick 1 of 20 ms sub-ticks) is
// grafted at sub-tick 3, 60 ms into the tick, not at the tick 100 ms in.
// Virtual time (synctest: runTestNode).
func TestNodeGraftsBetweenTicks(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		cfg := lossyConfig()
		cfg.PullEnabled = false
		_, p, chain := graftPeer(t, cfg, 65, 2)
		tr := &lockedTransport{queueTransport: queueTransport{self: p.self.ID, in: make(chan comm.Message, 8)}}
		a := fakeID(1)
		start := runTestNode(t, cfg, p, tr, 120*time.Millisecond,
			timedInput{30 * time.Millisecond, comm.Message{From: a, Org: "org1", Env: ihaveEnv(1, chain[1], 1), Size: 50}})
		at := tr.sentSince(start, func(to identity.PKIID, msg *pb.GossipMessage) bool {
			return to == a && len(msg.GetGraft().GetHash()) > 0
		})
		want := time.Duration(1+cfg.GraftTimeoutSub) * cfg.TickInterval / time.Duration(cfg.TreeResolution)
		if len(at) != 1 || at[0] != want {
			t.Fatalf("grafts to the announcer at %v after the start, want one at %v", at, want)
		}
	})
}

// A block whose copy and every IHave were lost is grafted from the peer
// that pushed us the next one (whose header names its hash) a graft
// timeout later, not left to pull: a Plumtree graft (no Prune: that peer
// is our parent), and the answer teaches nothing about lateness.
func TestGapGraftedFromNextBlocksPusher(t *testing.T) {
	cfg := DefaultConfig()
	cfg.PullEnabled = false
	_, p, chain := graftPeer(t, cfg, 66, 3)
	parent := fakeID(0)
	p.SubTick(1)
	p.Step(parent, "org1", pushEnv(chain[2], 1), 0) // block 1 lost altogether
	p.Ready()
	want := 1 + cfg.GraftTimeoutSub
	if k, ok := p.NextTreeDeadline(); !ok || k != want {
		t.Fatalf("NextTreeDeadline after block 2 without block 1 = %d, %v; want %d, true", k, ok, want)
	}
	var got []string
	k := 2
	for ; k < cfg.TreeResolution && len(got) == 0; k++ {
		p.SubTick(k)
		got = treeMsgsTo(p.Ready().Messages, parent)
	}
	if k-1 != want || len(got) != 1 || got[0] != "graft" {
		t.Fatalf("sub-tick %d: %v to the parent, want a lone graft at sub-tick %d", k-1, got, want)
	}
	late := p.lateX8
	p.SubTick(k)
	p.Step(parent, "org1", pushEnv(chain[1], 1), 0) // the graft's answer
	msgs := p.Ready().Messages
	if p.Height() != 3 {
		t.Fatalf("height %d after the gap's answer, want 3", p.Height())
	}
	if got := treeMsgsTo(msgs, parent); len(got) != 0 {
		t.Fatalf("sent the parent %v after its answer, want nothing", got)
	}
	if _, eager := p.eager.pos[parent]; !eager || p.lateX8 != late {
		t.Fatalf("parent eager %v, lateness %d -> %d: want the parent kept and the estimate untouched", eager, late, p.lateX8)
	}
	// A peer far behind (two blocks missing) does not graft block by block.
	_, q, chain2 := graftPeer(t, cfg, 67, 4)
	q.Step(parent, "org1", pushEnv(chain2[3], 1), 0)
	if _, ok := q.NextTreeDeadline(); ok {
		t.Fatal("blocks 1 and 2 missing: a gap graft was scheduled")
	}
}
