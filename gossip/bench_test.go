package gossip

import (
	"testing"
)

// BenchmarkDisseminate measures one block spread to 200 Peer cores by the
// harness (delivery, verification, commit, one tick), per block: the
// cost a simulator pays. go test -run X -bench Disseminate ./gossip
func BenchmarkDisseminate(b *testing.B) {
	for _, tc := range []struct {
		name string
		tree bool
	}{{"random-push-4", false}, {"tree", true}} {
		b.Run(tc.name, func(b *testing.B) {
			cfg := DefaultConfig()
			cfg.PullEnabled = false
			cfg.Tree = tc.tree
			cfg.ReorderWindow = 1 << 20
			net := seededNet(b, 200, cfg, 40)
			chain := makeChain(testOrderer, b.N, 40)
			b.ResetTimer()
			for _, blk := range chain {
				net.inject(0, blk)
				net.tick()
			}
			b.ReportMetric(copiesPerPeer(net, 0, b.N), "copies/peer/block")
		})
	}
}
