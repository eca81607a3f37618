package orderer

import (
	"fmt"
	"testing"
)

// BenchmarkCutBlock measures building, signing and durably appending one
// block of 10 transactions on LevelDB (synced writes dominate).
func BenchmarkCutBlock(b *testing.B) {
	for _, size := range []int{1 << 10, 100 << 10} {
		b.Run(fmt.Sprintf("10x%dKiB", size>>10), func(b *testing.B) {
			f := newFixture(b)
			o, err := New(DefaultConfig(), f.b.Orderer, f.b.Network, f.openStore(b, b.TempDir()), nil)
			if err != nil {
				b.Fatal(err)
			}
			batch := txs(10, size)
			b.SetBytes(int64(10 * size))
			for b.Loop() {
				if _, err := o.CutBlock(batch); err != nil {
					b.Fatal(err)
				}
			}
		})
	}
}
