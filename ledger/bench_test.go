package ledger

import (
	"fmt"
	"math/rand/v2"
	"testing"
)

// benchTxs returns size bytes of random transactions of at most 4 KiB.
func benchTxs(size int) [][]byte {
	rng := rand.New(rand.NewPCG(1, 2))
	var txs [][]byte
	for size > 0 {
		n := min(size, 4<<10)
		tx := make([]byte, n)
		for i := range tx {
			tx[i] = byte(rng.Uint32())
		}
		txs = append(txs, tx)
		size -= n
	}
	return txs
}

// BenchmarkAppend measures a verified, synced Append to a LevelDB store
// (data hash, ed25519 verify, marshal, one fsynced batch). Building and
// signing the block is outside the timer.
func BenchmarkAppend(b *testing.B) {
	for _, size := range []int{1 << 10, 100 << 10, 1 << 20} {
		b.Run(fmt.Sprintf("%dKiB", size>>10), func(b *testing.B) {
			o := newOrderer(1)
			s, err := Open(b.TempDir(), o.v)
			if err != nil {
				b.Fatal(err)
			}
			defer s.Close()
			txs := benchTxs(size)
			b.SetBytes(int64(size))
			b.ResetTimer()
			for i := 0; i < b.N; i++ {
				b.StopTimer()
				blk := o.block(s.Height(), s.Tip().CurrentHash, txs)
				b.StartTimer()
				if err := s.Append(blk); err != nil {
					b.Fatal(err)
				}
			}
		})
	}
}

func BenchmarkDataHash(b *testing.B) {
	for _, size := range []int{1 << 10, 1 << 20} {
		b.Run(fmt.Sprintf("%dKiB", size>>10), func(b *testing.B) {
			txs := benchTxs(size)
			b.SetBytes(int64(size))
			for b.Loop() {
				DataHash(txs)
			}
		})
	}
}

func BenchmarkHeaderHash(b *testing.B) {
	blk := NewBlock(1, make([]byte, 32), [][]byte{[]byte("tx")}, 0)
	var sink []byte
	for b.Loop() {
		sink = HeaderHash(blk)
	}
	_ = sink
}
