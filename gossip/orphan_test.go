package gossip

import (
	"slices"
	"testing"

	"github.com/blockgossip/blockgossip/identity"
)

// nextSubTick moves p's tree clock on by one sub-tick.
func nextSubTick(p *Peer) {
	if k := (p.sub + 1) % p.resolution(); k == 0 {
		p.Tick()
	} else {
		p.SubTick(int(k))
	}
}

// A peer that no neighbour pushes to (its first copies were graft answers
// and duplicates that pruned every link, as on a slow start over gRPC)
// has no eager copy on its way: it grafts an announced block at the graft
// timeout's floor, not after the lateness it learnt from slow copies, and
// the graft makes the announcer its eager neighbour instead of asking for
// that block alone. In 100-peer bench runs such a peer took every block
// by graft or pull 500-600 ms after its cut (the lateness learnt in the
// warm-up, never decayed: no parent copy came to decay it) until two
// grafts in a row gave it a parent. A peer whose parent pushes to it
// waits the graft timeout, and its first graft is one-shot.
func TestPeerWithoutParentGraftsAtTheFloorAndTakesTheLink(t *testing.T) {
	a := fakeID(1)
	for _, tc := range []struct {
		name      string
		cfg       Config
		parent    bool // peer 0 pushed us block 0
		wantSub   func(p *Peer) uint64
		wantShape bool // the graft makes a an eager neighbour (no Prune)
	}{
		{name: "no parent", cfg: lossyConfig(), wantSub: (*Peer).graftFloor, wantShape: true},
		{name: "no parent, ParentSilence on", cfg: DefaultConfig(), wantSub: (*Peer).graftFloor, wantShape: true},
		{name: "a parent that pushes", cfg: lossyConfig(), parent: true, wantSub: (*Peer).graftTimeoutSub},
	} {
		t.Run(tc.name, func(t *testing.T) {
			cfg := tc.cfg
			cfg.PullEnabled = false
			cfg.GraftQuorum, cfg.CutLagGraft = 0, false // the graft timeout alone times the graft
			net := seededNet(t, 5, cfg, 90)
			net.ticks(2)
			p := net.peers[3].p
			net.collect(net.peers[3])
			chain := makeChain(testOrderer, 2, 90)
			n := 0
			if tc.parent {
				p.Step(fakeID(0), "org1", pushEnv(chain[0], 1), 0)
				n = 1
			}
			p.observeLate(3 * p.resolution()) // copies came 3 ticks late in the warm-up
			if p.graftTimeoutSub() <= p.graftFloor() {
				t.Fatalf("graft timeout %d sub-ticks, want above the floor %d", p.graftTimeoutSub(), p.graftFloor())
			}
			p.Ready()
			ihaveFrom(p, a, chain, n)
			p.Ready()
			want := tc.wantSub(p)
			var got uint64
			var msgs []Out
			for k := uint64(1); k <= p.maxGraftSub() && got == 0; k++ {
				nextSubTick(p)
				if msgs = p.Ready().Messages; slices.Equal(graftedTo(msgs, a), []identity.PKIID{a}) {
					got = k
				}
			}
			if got != want {
				t.Fatalf("grafted %d sub-ticks after the IHave, want %d (floor %d, timeout %d)", got, want, p.graftFloor(), p.graftTimeoutSub())
			}
			_, eager := p.eager.pos[a]
			if pruned := prunesTo(msgs, a) > 0; pruned == tc.wantShape || (tc.wantShape && !eager) {
				t.Fatalf("after the graft: Prune sent %v, announcer eager %v; want the link taken: %v", pruned, eager, tc.wantShape)
			}
		})
	}
}
