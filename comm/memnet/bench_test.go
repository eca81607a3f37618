package memnet

import (
	"testing"

	"github.com/blockgossip/blockgossip/comm"
)

// BenchmarkSend is one envelope through a zero-latency link and out of the
// receiver's queue: the cost the network adds to a simulated message.
func BenchmarkSend(b *testing.B) {
	for _, share := range []bool{false, true} {
		name := "copy"
		if share {
			name = "shared"
		}
		b.Run(name, func(b *testing.B) {
			cfg := DefaultConfig()
			cfg.ShareEnvelopes = share
			nw := New(cfg)
			defer nw.Close()
			eps := join(b, nw, 2)
			e := env(1)
			to := comm.Peer{ID: pid(1)}
			for b.Loop() {
				if err := eps[0].Send(to, e); err != nil {
					b.Fatal(err)
				}
				<-eps[1].Incoming()
			}
		})
	}
}
