package comm_test

import (
	"sync"
	"testing"

	"github.com/blockgossip/blockgossip/comm"
	"github.com/blockgossip/blockgossip/comm/transporttest"
)

func TestContract(t *testing.T) {
	transporttest.Run(t, func(t *testing.T, n int, opt transporttest.Options) *transporttest.Network {
		pn := newPeerNet(t)
		cfg := comm.DefaultConfig()
		if opt.RecvQueue > 0 {
			cfg.RecvQueue = opt.RecvQueue
		}
		var nodes []*gnode
		out := &transporttest.Network{}
		for i := range n {
			g := pn.node(i%2, &cfg)
			nodes = append(nodes, g)
			out.Members = append(out.Members, transporttest.Member{T: g.tr, Endpoint: g.addr, Org: g.id.Org})
		}
		out.Counts = func() (r, d uint64) {
			for _, g := range nodes {
				tot := g.tr.Stats().Total
				r += tot.Received.Msgs
				d += tot.Dropped.Msgs
			}
			return r, d
		}
		var once sync.Once
		out.Close = func() {
			once.Do(func() {
				for _, g := range nodes {
					g.stop()
				}
			})
		}
		return out
	})
}
