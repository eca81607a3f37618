package gossip

import (
	"slices"
	"testing"

	"github.com/blockgossip/blockgossip/identity"
	pb "github.com/blockgossip/blockgossip/protos"
)

// graftedTo lists, in order, the peers among ids that msgs graft.
func graftedTo(msgs []Out, ids ...identity.PKIID) []identity.PKIID {
	var got []identity.PKIID
	for _, m := range msgs {
		if msg, err := decode(m.Env); err == nil && len(msg.GetGraft().GetHash()) > 0 && slices.Contains(ids, m.To.ID) {
			got = append(got, m.To.ID)
		}
	}
	return got
}

// hedgePeer is graftPeer's peer 3 with its parent's copy of block 0 at
// parentHops hops (our depth in the tree), at sub-tick 1 of a tick.
func hedgePeer(t *testing.T, seed uint64, parentHops uint32) (*Peer, []*pb.Block) {
	t.Helper()
	cfg := lossyConfig()
	cfg.PullEnabled = false
	net := seededNet(t, 5, cfg, seed)
	net.ticks(2)
	p := net.peers[3].p
	net.collect(net.peers[3])
	chain := makeChain(testOrderer, 3, seed)
	p.Step(fakeID(0), "org1", pushEnv(chain[0], parentHops), 0)
	p.Ready()
	p.SubTick(1)
	return p, chain
}

// subTickGrafts runs sub-ticks from..to-1 and returns, per sub-tick, the
// peers among ids that p grafted then.
func subTickGrafts(p *Peer, from, to int, ids ...identity.PKIID) map[int][]identity.PKIID {
	got := map[int][]identity.PKIID{}
	for k := from; k < to; k++ {
		p.SubTick(k)
		if g := graftedTo(p.Ready().Messages, ids...); len(g) > 0 {
			got[k] = g
		}
	}
	return got
}

// Two announcers about our depth announce a block we lack: each held its
// copy for the IHave delay, so ours is lost, not late. The first is
// grafted one sub-tick after the first IHave (not GraftTimeoutSub), and
// the second, the hedge, at the graft timeout if the block is still
// missing: one early graft, never two needless copies.
func TestQuorumGraftsOneSubTickAfterTheFirstIHave(t *testing.T) {
	p, chain := hedgePeer(t, 70, 2)
	a, b, c := fakeID(1), fakeID(2), fakeID(4)
	p.Step(a, "org1", ihaveEnv(1, chain[1], 2), 0) // a and b: as deep as our parent
	p.Step(b, "org1", ihaveEnv(1, chain[1], 3), 0)
	p.Step(c, "org1", ihaveEnv(1, chain[1], 3), 0)
	if g := graftedTo(p.Ready().Messages, a, b, c); len(g) > 0 {
		t.Fatalf("grafted %v on the IHaves themselves", g)
	}
	if k, ok := p.NextTreeDeadline(); !ok || k != 2 {
		t.Fatalf("NextTreeDeadline %d, %v after a quorum of IHaves at sub-tick 1; want 2, true", k, ok)
	}
	got := subTickGrafts(p, 2, p.cfg.TreeResolution, a, b, c)
	want := map[int][]identity.PKIID{2: {a}, 1 + p.cfg.GraftTimeoutSub: {b}}
	if len(got) != len(want) || !slices.Equal(got[2], want[2]) || !slices.Equal(got[3], want[3]) {
		t.Fatalf("grafts by sub-tick %v, want %v (a at the quorum, b at the graft timeout)", got, want)
	}

	// The same with an answer before the graft timeout: no hedge.
	p, chain = hedgePeer(t, 71, 2)
	p.Step(a, "org1", ihaveEnv(1, chain[1], 2), 0)
	p.Step(b, "org1", ihaveEnv(1, chain[1], 2), 0)
	p.Ready()
	p.SubTick(2)
	if g := graftedTo(p.Ready().Messages, a, b); !slices.Equal(g, []identity.PKIID{a}) {
		t.Fatalf("grafted %v at the quorum, want [a]", g)
	}
	p.Step(a, "org1", pushEnv(chain[1], 1), 0)
	p.Ready()
	if got := subTickGrafts(p, 3, p.cfg.TreeResolution, a, b); len(got) > 0 {
		t.Fatalf("grafted %v after the answer came", got)
	}
	if p.Height() != 2 {
		t.Fatalf("height %d, want 2", p.Height())
	}
}

// On a busy machine eager copies come after their IHaves (lateness above
// twice the graft timeout's floor): a quorum of IHaves then says the copy
// is late, not lost, and grafting it early would only add a duplicate to
// the load. The graft waits the graft timeout (the lateness), as without
// a quorum. (Over gRPC at 100 peers the early grafts of such runs took
// amplification to 1.21 and the p99 to 562 ms.)
func TestLateCopiesMakeNoQuorum(t *testing.T) {
	p, chain := hedgePeer(t, 74, 2)
	p.observeLate(5) // copies 100 ms after their first IHave
	if !p.copiesLate() {
		t.Fatal("a lateness of 5 sub-ticks does not count as late")
	}
	a, b := fakeID(1), fakeID(2)
	p.Step(a, "org1", ihaveEnv(1, chain[1], 2), 0) // a quorum, as in TestQuorumGraftsOneSubTickAfterTheFirstIHave
	p.Step(b, "org1", ihaveEnv(1, chain[1], 2), 0)
	p.Ready()
	if got := subTickGrafts(p, 2, p.cfg.TreeResolution, a, b); len(got) > 0 {
		t.Fatalf("grafted %v by sub-tick, want nothing before the graft timeout (%d sub-ticks)", got, p.graftTimeoutSub())
	}
}

// A graft that loses its race with our parent's copy (the quorum grafted
// a copy only a little late) leaves the quorum and the hedge on for the
// next missing block: the lateness it teaches is that of the copy, one
// sub-tick here, not a busy machine's. (A rule that turned both off for
// the next graft after one such race cost the simulator's churn+loss p99
// 4-7%; over gRPC ParentSilence holds the grafts of copies on their way.)
func TestGraftRaceKeepsTheQuorum(t *testing.T) {
	p, chain := hedgePeer(t, 75, 2)
	a, b := fakeID(1), fakeID(2)
	p.Step(a, "org1", ihaveEnv(1, chain[1], 2), 0)
	p.Step(b, "org1", ihaveEnv(1, chain[1], 2), 0)
	p.Ready()
	p.SubTick(2)
	if g := graftedTo(p.Ready().Messages, a, b); !slices.Equal(g, []identity.PKIID{a}) {
		t.Fatalf("grafted %v at the quorum, want [a]", g)
	}
	p.Step(fakeID(0), "org1", pushEnv(chain[1], 2), 0) // our parent's copy, before a's answer
	p.Ready()
	if p.copiesLate() || p.graftHedge() != 2 {
		t.Fatalf("after a graft lost its race with the parent's copy: copiesLate %v, hedge %d; want false, 2", p.copiesLate(), p.graftHedge())
	}
	p.SubTick(3)
	p.Step(a, "org1", ihaveEnv(2, chain[2], 2), 0)
	p.Step(b, "org1", ihaveEnv(2, chain[2], 2), 0)
	p.Ready()
	if got := subTickGrafts(p, 4, 5, a, b); len(got[4]) != 1 {
		t.Fatalf("the next block's quorum grafted %v at the next sub-tick, want one announcer", got)
	}
}

// Announcers much shallower than us may announce before our healthy copy
// comes: they make no quorum. The graft waits the graft timeout, then
// asks GraftHedge (two) announcers at once.
func TestShallowAnnouncersMakeNoQuorum(t *testing.T) {
	p, chain := hedgePeer(t, 72, 5)
	a, b := fakeID(1), fakeID(2)
	p.Step(a, "org1", ihaveEnv(1, chain[1], 2), 0) // 3 hops above our parent's copy
	p.Step(b, "org1", ihaveEnv(1, chain[1], 3), 0)
	p.Ready()
	got := subTickGrafts(p, 2, p.cfg.TreeResolution, a, b)
	at := 1 + p.cfg.GraftTimeoutSub
	if len(got) != 1 || !slices.Equal(got[at], []identity.PKIID{a, b}) {
		t.Fatalf("grafts by sub-tick %v, want both announcers at %d (the graft timeout, hedged)", got, at)
	}
}

// A first graft that knew fewer announcers than the hedge wants is
// topped up by the next announcer's IHave, on arrival, not a retry
// round trip later; announcers beyond the hedge wait for the retry.
func TestHedgeTopsUpOnTheNextIHave(t *testing.T) {
	p, chain := hedgePeer(t, 73, 5)
	a, b, c := fakeID(1), fakeID(2), fakeID(4)
	p.Step(a, "org1", ihaveEnv(1, chain[1], 5), 0)
	p.Ready()
	at := 1 + p.cfg.GraftTimeoutSub
	if got := subTickGrafts(p, 2, at+1, a, b, c); len(got) != 1 || !slices.Equal(got[at], []identity.PKIID{a}) {
		t.Fatalf("grafts by sub-tick %v, want [a] at %d (the only announcer)", got, at)
	}
	p.Step(b, "org1", ihaveEnv(1, chain[1], 5), 0)
	if g := graftedTo(p.Ready().Messages, a, b, c); !slices.Equal(g, []identity.PKIID{b}) {
		t.Fatalf("grafted %v on b's IHave after the first graft, want [b] at once", g)
	}
	p.Step(c, "org1", ihaveEnv(1, chain[1], 5), 0)
	if g := graftedTo(p.Ready().Messages, a, b, c); len(g) > 0 {
		t.Fatalf("grafted %v on a third IHave: the hedge (2) is full, c waits for the retry", g)
	}
	g := p.grafted[1]
	if g.to != a || !g.target(b) || g.target(c) {
		t.Fatalf("graft record %+v: want a first, b as a further target, not c", g)
	}
}

// When every announcer was grafted and no answer came, our eager parent
// is grafted (its copy to us was most likely lost on the way) before the
// block goes to pull; without GraftParent, pull is next at once.
func TestParentGraftedWhenTheAnnouncersFail(t *testing.T) {
	for _, on := range []bool{true, false} {
		cfg := lossyConfig()
		cfg.PullEnabled = false
		cfg.GraftParent = on
		_, p, chain := graftPeer(t, cfg, 74, 2)
		parent, a, b := fakeID(0), fakeID(1), fakeID(2)
		ihaveFrom(p, a, chain, 1)
		ihaveFrom(p, b, chain, 1)
		p.Ready()
		var order []identity.PKIID
		for range 4 { // the hedged graft at the first tick, its answers lost
			p.Tick()
			order = append(order, graftedTo(p.Ready().Messages, parent, a, b)...)
		}
		want := []identity.PKIID{a, b}
		if on {
			want = append(want, parent)
		}
		if !slices.Equal(order, want) {
			t.Fatalf("GraftParent %v: grafted %v, want %v", on, order, want)
		}
		if _, pending := p.missing[blockKey{number: 1, hash: [32]byte(ledgerHash(chain[1]))}]; pending {
			t.Fatalf("GraftParent %v: block 1 still waits for a graft after every candidate failed", on)
		}
	}
}

// With LazyBack a neighbour whose IHave reaches us becomes a lazy
// neighbour of ours, so that it hears our IHaves too (the link is two-way,
// as in Plumtree); without it our lazy set is only what we picked.
func TestLazyBackMakesAnAnnouncerALazyNeighbour(t *testing.T) {
	for _, on := range []bool{true, false} {
		cfg := DefaultConfig()
		cfg.PullEnabled = false
		cfg.LazyBack = on
		_, p, chain := graftPeer(t, cfg, 75, 2)
		x := fakeID(4)
		p.eager.set(x, false)
		p.lazy.set(x, false)
		ihaveFrom(p, x, chain, 1)
		p.Ready()
		if _, lazy := p.lazy.pos[x]; lazy != on {
			t.Fatalf("LazyBack %v: the announcer is a lazy neighbour: %v", on, lazy)
		}
		if _, eager := p.eager.pos[x]; eager {
			t.Fatalf("LazyBack %v: an announcer became an eager neighbour", on)
		}
	}
	// An eager neighbour's IHave leaves it eager.
	cfg := DefaultConfig()
	cfg.PullEnabled = false
	_, p, chain := graftPeer(t, cfg, 76, 2)
	parent := fakeID(0)
	ihaveFrom(p, parent, chain, 1)
	p.Ready()
	if _, lazy := p.lazy.pos[parent]; lazy {
		t.Fatal("our eager parent's IHave made it lazy")
	}
}
