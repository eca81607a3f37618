package ledger

import (
	"errors"
	"os"
	"testing"

	pb "github.com/blockgossip/blockgossip/protos"
	"github.com/stretchr/testify/require"
	"google.golang.org/protobuf/proto"
	"pgregory.net/rapid"
)

// sentinelOf names the sentinel an error wraps, so two implementations'
// errors can be compared without comparing messages.
func sentinelOf(err error) string {
	for _, s := range []error{ErrNotFound, ErrWrongNumber, ErrBadPreviousHash, ErrBadDataHash,
		ErrBadSignature, ErrMalformedBlock, ErrCorrupted, ErrClosed} {
		if errors.Is(err, s) {
			return s.Error()
		}
	}
	if err != nil {
		return "other: " + err.Error()
	}
	return ""
}

// TestMemoryMatchesStore drives Memory and Store with the same random
// sequence of good and bad appends and reads, and requires identical
// answers: Memory is a faithful stand-in for protocol tests.
func TestMemoryMatchesStore(t *testing.T) {
	o := newOrderer(1)
	other := newOrderer(2)
	txsGen := rapid.SliceOfN(rapid.SliceOfN(rapid.Byte(), 0, 300), 0, 4)
	rapid.Check(t, func(rt *rapid.T) {
		dir, err := os.MkdirTemp("", "ledger-model")
		require.NoError(rt, err)
		defer os.RemoveAll(dir)
		s, err := Open(dir, o.v)
		require.NoError(rt, err)
		defer s.Close()
		m := OpenMemory(o.v)
		defer m.Close()
		var committed []*pb.Block

		same := func(what string, a, b []*pb.Block, errA, errB error) {
			require.Equal(rt, sentinelOf(errA), sentinelOf(errB), what)
			require.Equal(rt, len(a), len(b), what)
			for i := range a {
				require.True(rt, proto.Equal(a[i], b[i]), "%s: block %d", what, i)
			}
		}
		steps := rapid.IntRange(1, 25).Draw(rt, "steps")
		for range steps {
			tip := m.Tip()
			switch op := rapid.IntRange(0, 5).Draw(rt, "op"); op {
			case 0, 1: // the right next block
				b := o.block(tip.Height, tip.CurrentHash, txsGen.Draw(rt, "txs"))
				require.NoError(rt, m.Append(b))
				require.NoError(rt, s.Append(b))
				committed = append(committed, b)
			case 2: // a wrong one
				txs := txsGen.Draw(rt, "txs")
				var b *pb.Block
				switch rapid.IntRange(0, 4).Draw(rt, "fault") {
				case 0:
					b = o.block(tip.Height+uint64(rapid.IntRange(1, 3).Draw(rt, "ahead")), tip.CurrentHash, txs)
				case 1:
					b = o.block(tip.Height, []byte("elsewhere"), txs)
				case 2:
					b = other.block(tip.Height, tip.CurrentHash, txs)
				case 3:
					b = o.block(tip.Height, tip.CurrentHash, txs)
					b.Data.Transactions = append(b.Data.Transactions, []byte{1})
				case 4:
					b = &pb.Block{Header: rapid.SliceOfN(rapid.Byte(), 1, 20).Draw(rt, "header")}
				}
				errM, errS := m.Append(b), s.Append(b)
				require.Error(rt, errM)
				require.Equal(rt, sentinelOf(errM), sentinelOf(errS))
			case 3:
				start := rapid.Uint64Range(0, tip.Height+2).Draw(rt, "start")
				end := rapid.Uint64Range(0, tip.Height+3).Draw(rt, "end")
				maxBytes := rapid.IntRange(-1, 2000).Draw(rt, "maxBytes")
				a, errA := m.Range(start, end, maxBytes)
				b, errB := s.Range(start, end, maxBytes)
				same("range", a, b, errA, errB)
				if start < min(end, tip.Height) && errA == nil {
					require.NotEmpty(rt, a, "at least one block when start < height")
				}
			case 4:
				n := rapid.Uint64Range(0, tip.Height+1).Draw(rt, "n")
				a, errA := m.Block(n)
				b, errB := s.Block(n)
				same("block", []*pb.Block{a}, []*pb.Block{b}, errA, errB)
			case 5:
				hash := rapid.SliceOfN(rapid.Byte(), 32, 32).Draw(rt, "hash")
				if len(committed) > 0 && rapid.Bool().Draw(rt, "known") {
					hash = HeaderHash(committed[rapid.IntRange(0, len(committed)-1).Draw(rt, "i")])
				}
				a, errA := m.BlockByHash(hash)
				b, errB := s.BlockByHash(hash)
				same("by hash", []*pb.Block{a}, []*pb.Block{b}, errA, errB)
			}
			require.Equal(rt, m.Tip(), s.Tip())
			require.Equal(rt, uint64(len(committed)), s.Height())
		}
	})
}
