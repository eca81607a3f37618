package memnet

import (
	"fmt"
	"testing"

	"github.com/stretchr/testify/require"

	"github.com/blockgossip/blockgossip/comm/transporttest"
)

func TestContract(t *testing.T) {
	transporttest.Run(t, func(t *testing.T, n int, opt transporttest.Options) *transporttest.Network {
		cfg := DefaultConfig()
		cfg.QueueSize = opt.RecvQueue
		nw := New(cfg)
		out := &transporttest.Network{
			Counts: func() (uint64, uint64) {
				tot := nw.Stats().Total
				return tot.Received.Msgs, tot.Dropped.Msgs + tot.Lost.Msgs
			},
			Close: nw.Close,
		}
		for i := range n {
			org := fmt.Sprintf("org%d", i%2)
			e, err := nw.Join(pid(100+i), fmt.Sprintf("10.0.0.%d:7051", i+1), org, []byte(org+"-cert"))
			require.NoError(t, err)
			out.Members = append(out.Members, transporttest.Member{T: e, Endpoint: e.Endpoint(), Org: org})
		}
		return out
	})
}
