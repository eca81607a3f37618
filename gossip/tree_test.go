package gossip

import (
	"testing"
)

// copiesPerPeer is the mean number of full copies of blocks [from, to)
// each peer received (first copy plus duplicates).
func copiesPerPeer(net *simNet, from, to int) float64 {
	total := 0
	for _, sp := range net.peers {
		if sp.down {
			continue
		}
		for n := from; n < to; n++ {
			total += sp.tr.accepted[uint64(n)] + sp.tr.dups[uint64(n)]
		}
	}
	live := 0
	for _, sp := range net.peers {
		if !sp.down {
			live++
		}
	}
	return float64(total) / float64(live*(to-from))
}

// Tree mode, pull off: every peer gets every block by push alone, and once
// the tree has formed each peer receives about one full copy per block
// (random push to 4 costs about 4).
func TestTreePushReachesAllWithAboutOneCopy(t *testing.T) {
	cfg := DefaultConfig()
	cfg.PullEnabled = false
	cfg.Tree = true
	net := seededNet(t, 100, cfg, 30)
	chain := makeChain(testOrderer, 50, 30)
	for _, b := range chain {
		net.inject(0, b)
		net.ticks(cfg.GraftTimeout + 1) // let grafts and pruning settle
	}
	for _, sp := range net.peers {
		if len(sp.commits) != len(chain) {
			t.Fatalf("peer %d committed %d of %d blocks with pull off", sp.idx, len(sp.commits), len(chain))
		}
		checkPrefix(t, sp, chain)
	}
	first, steady := copiesPerPeer(net, 0, 1), copiesPerPeer(net, 10, 50)
	t.Logf("tree push, 100 peers: %.2f copies per peer for block 0, %.3f for blocks 10-49", first, steady)
	if steady > 1.2 {
		t.Fatalf("steady state: %.3f copies per peer per block, want <= 1.2", steady)
	}
}

// After the tree forms, interior peers crash: IHave announcements and
// grafts repair the tree, so the survivors still get every block by push.
func TestTreeRepairsAfterCrashes(t *testing.T) {
	cfg := DefaultConfig()
	cfg.PullEnabled = false
	cfg.Tree = true
	net := seededNet(t, 60, cfg, 31)
	chain := makeChain(testOrderer, 40, 31)
	for _, b := range chain[:20] {
		net.inject(0, b)
		net.ticks(cfg.GraftTimeout + 1)
	}
	// Crash the five peers that forwarded the most (interior tree nodes).
	crashed := 0
	for _, sp := range net.peers[1:] {
		if crashed < 5 && len(sp.p.eager.ids) > 1 {
			sp.down = true
			crashed++
		}
	}
	for _, b := range chain[20:] {
		net.inject(0, b)
		net.ticks(cfg.GraftTimeout + 1)
	}
	for _, sp := range net.peers {
		if sp.down {
			continue
		}
		if len(sp.commits) != len(chain) {
			t.Fatalf("peer %d committed %d of %d blocks after %d crashes", sp.idx, len(sp.commits), len(chain), crashed)
		}
		checkPrefix(t, sp, chain)
	}
	t.Logf("%d interior peers crashed; survivors got all blocks; %.3f copies per peer for blocks 25-39",
		crashed, copiesPerPeer(net, 25, 40))
}
