package pull

import (
	"math/rand/v2"
	"testing"

	pb "github.com/blockgossip/blockgossip/protos"
	"google.golang.org/protobuf/proto"
)

// BenchmarkDigestBuild answers a PullHello with a digest of a 10,000-block
// window: 10,000 committed blocks below the height (one range) and a
// reorder buffer above it, empty or holding every other block of the next
// 10,000 (the digest then hits MaxRanges). The store is a map, as a ledger
// fronted by an in-memory buffer would be.
func BenchmarkDigestBuild(b *testing.B) {
	for _, bc := range []struct {
		name     string
		buffered int // blocks held above the height, every other one
	}{{"committed", 0}, {"fragmented", 10_000}} {
		b.Run(bc.name, func(b *testing.B) {
			cfg := DefaultConfig()
			cfg.DigestWindow = 10_000
			const height = 20_000
			st := &memStore{blocks: make(map[uint64]*pb.Block), height: height}
			blk := &pb.Block{Header: []byte{1}}
			for n := range uint64(height) {
				st.blocks[n] = blk
			}
			for n := uint64(height); n < height+uint64(bc.buffered); n += 2 {
				st.blocks[n] = blk
			}
			e, err := New(cfg, pid(0), rand.New(rand.NewPCG(1, 1)), st)
			if err != nil {
				b.Fatal(err)
			}
			var size int
			b.ReportAllocs()
			for i := 0; b.Loop(); i++ {
				e.digest.valid = false // measure the build, not the per-tick cache
				outs, _ := e.Step(pid(1), hello(uint64(i+1)))
				size = proto.Size(outs[0].Msg)
			}
			b.ReportMetric(float64(size), "wire-bytes")
		})
	}
}
