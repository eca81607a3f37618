package gossip

import (
	"math"
	"testing"
)

// pushOnceFixedPoint solves p = 1 - exp(-f p) for p > 0: the fraction of a
// large network that an infect-and-die epidemic reaches when every peer
// forwards a new message once to f random peers.
func pushOnceFixedPoint(f float64) float64 {
	p := 1.0
	for range 200 {
		p = 1 - math.Exp(-f*p)
	}
	return p
}

// TestPushOnceReachMatchesTheory measures, with pull off, the fraction of
// peers that push alone reaches when every peer forwards each new block
// once to f random peers, and compares it with the fixed point of
// p = 1 - e^(-f p); with 20% message loss, with the formula at 0.8 f.
// 250 peers, 60 blocks per setting, each injected at a random peer.
func TestPushOnceReachMatchesTheory(t *testing.T) {
	const (
		peers     = 250
		blocks    = 60
		tolerance = 0.01 // absolute, on the mean over all blocks
	)
	if testing.Short() {
		t.Skip("statistical: ~30 s under -race")
	}
	for _, tc := range []struct {
		fanout int
		loss   float64
	}{{3, 0}, {4, 0}, {6, 0}, {3, 0.2}, {4, 0.2}, {6, 0.2}} {
		cfg := DefaultConfig()
		cfg.PullEnabled = false
		cfg.Tree = false // the theory is random push's
		cfg.Fanout = tc.fanout
		cfg.MaxHops = 64
		net := newNet(t, peers, cfg, uint64(100*tc.fanout)+uint64(tc.loss*10))
		net.seedMembership()
		if !net.converged() {
			t.Fatal("seeded membership incomplete")
		}
		net.loss = tc.loss
		chain := makeChain(testOrderer, blocks, uint64(tc.fanout))
		for _, b := range chain {
			net.inject(net.rng.IntN(peers), b)
		}
		// An infect-and-die epidemic can die out in its first hops (with
		// loss, all of the injector's messages may be lost); the fixed point
		// describes the runs that take off, so those are averaged and the
		// die-outs counted apart.
		reached, tookOff, diedOut := 0, 0, 0
		for n := range chain {
			r := 0
			for _, sp := range net.peers {
				r += sp.tr.accepted[uint64(n)]
			}
			if r < peers/10 {
				diedOut++
				continue
			}
			reached += r
			tookOff++
		}
		got := float64(reached) / float64(peers*tookOff)
		want := pushOnceFixedPoint((1 - tc.loss) * float64(tc.fanout))
		t.Logf("fanout %d, loss %.0f%%: reached %.4f, theory %.4f (%d of %d blocks died out early)",
			tc.fanout, tc.loss*100, got, want, diedOut, blocks)
		if math.Abs(got-want) > tolerance {
			t.Errorf("fanout %d, loss %.0f%%: reached %.4f of peers, theory %.4f (tolerance %.3f)",
				tc.fanout, tc.loss*100, got, want, tolerance)
		}
	}
}
