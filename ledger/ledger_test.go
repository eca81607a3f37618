package ledger

import (
	"bytes"
	"errors"
	"math/rand/v2"
	"sync"
	"testing"

	pb "github.com/blockgossip/blockgossip/protos"
	"github.com/stretchr/testify/require"
	"google.golang.org/protobuf/proto"
)

// impls is the one table every Ledger implementation must pass.
var impls = []struct {
	name string
	open func(t *testing.T, v BlockVerifier) Ledger
}{
	{"memory", func(t *testing.T, v BlockVerifier) Ledger { return OpenMemory(v) }},
	{"leveldb", func(t *testing.T, v BlockVerifier) Ledger {
		s, err := Open(t.TempDir(), v)
		require.NoError(t, err)
		return s
	}},
}

// forEach runs f against a fresh, empty ledger of each implementation.
func forEach(t *testing.T, f func(t *testing.T, o orderer, l Ledger)) {
	for _, impl := range impls {
		t.Run(impl.name, func(t *testing.T) {
			o := newOrderer(1)
			l := impl.open(t, o.v)
			defer func() { require.NoError(t, l.Close()) }()
			f(t, o, l)
		})
	}
}

func appendAll(t *testing.T, l Ledger, blocks []*pb.Block) {
	t.Helper()
	for _, b := range blocks {
		require.NoError(t, l.Append(b))
	}
}

func TestEmptyLedger(t *testing.T) {
	forEach(t, func(t *testing.T, o orderer, l Ledger) {
		require.Equal(t, uint64(0), l.Height())
		require.Equal(t, TipInfo{}, l.Tip())
		_, err := l.Block(0)
		require.ErrorIs(t, err, ErrNotFound)
		_, err = l.Range(0, 10, 0)
		require.ErrorIs(t, err, ErrNotFound)
	})
}

func TestAppendAndRead(t *testing.T) {
	forEach(t, func(t *testing.T, o orderer, l Ledger) {
		blocks := o.chain(rand.New(rand.NewPCG(1, 1)), 10)
		require.NoError(t, l.Append(blocks[0]))
		require.Equal(t, uint64(1), l.Height(), "genesis counts")
		require.Equal(t, TipInfo{Height: 1, CurrentHash: HeaderHash(blocks[0])}, l.Tip())
		appendAll(t, l, blocks[1:])

		require.Equal(t, uint64(10), l.Height())
		require.Equal(t, TipInfo{Height: 10, CurrentHash: HeaderHash(blocks[9]), PreviousHash: HeaderHash(blocks[8])}, l.Tip())
		for i, want := range blocks {
			got, err := l.Block(uint64(i))
			require.NoError(t, err)
			require.True(t, proto.Equal(want, got), "block %d", i)
			require.Equal(t, want.Header, got.Header, "header bytes kept exactly")
			byHash, err := l.BlockByHash(HeaderHash(want))
			require.NoError(t, err)
			require.True(t, proto.Equal(want, byHash), "block %d by hash", i)
		}
		_, err := l.Block(10)
		require.ErrorIs(t, err, ErrNotFound)
		_, err = l.BlockByHash(bytes.Repeat([]byte{7}, 32))
		require.ErrorIs(t, err, ErrNotFound)
		_, err = l.BlockByHash(nil)
		require.ErrorIs(t, err, ErrNotFound)
	})
}

// TestReturnedBlocksAreCopies checks that neither the caller of Append nor
// a reader can change what the ledger holds.
func TestReturnedBlocksAreCopies(t *testing.T) {
	forEach(t, func(t *testing.T, o orderer, l Ledger) {
		b := o.block(0, nil, [][]byte{[]byte("tx")})
		want := proto.Clone(b).(*pb.Block)
		require.NoError(t, l.Append(b))
		b.Data.Transactions[0][0] = 'X'
		b.Header[0] ^= 0xff

		got, err := l.Block(0)
		require.NoError(t, err)
		require.True(t, proto.Equal(want, got))
		got.Data.Transactions[0][0] = 'Y'
		tip := l.Tip()
		tip.CurrentHash[0] ^= 0xff

		again, err := l.Block(0)
		require.NoError(t, err)
		require.True(t, proto.Equal(want, again))
		require.Equal(t, HeaderHash(want), l.Tip().CurrentHash)
	})
}

// TestRejections: each bad block wraps its own sentinel, leaves the ledger
// exactly as it was, and the right block is still accepted afterwards.
func TestRejections(t *testing.T) {
	sentinels := []error{ErrWrongNumber, ErrBadPreviousHash, ErrBadDataHash, ErrBadSignature, ErrMalformedBlock}
	txs := [][]byte{[]byte("ab"), []byte("cd")}
	cases := []struct {
		name string
		make func(o orderer, tip TipInfo) *pb.Block
		want error
	}{
		{"forged signature", func(o orderer, tip TipInfo) *pb.Block {
			return newOrderer(99).block(tip.Height, tip.CurrentHash, txs)
		}, ErrBadSignature},
		{"flipped signature bit", func(o orderer, tip TipInfo) *pb.Block {
			b := o.block(tip.Height, tip.CurrentHash, txs)
			b.Metadata.Signature[3] ^= 1
			return b
		}, ErrBadSignature},
		{"no signature", func(o orderer, tip TipInfo) *pb.Block {
			b := o.block(tip.Height, tip.CurrentHash, txs)
			b.Metadata = nil
			return b
		}, ErrBadSignature},
		{"wrong previous hash", func(o orderer, tip TipInfo) *pb.Block {
			return o.block(tip.Height, HeaderHash(o.block(7, nil, nil)), txs)
		}, ErrBadPreviousHash},
		{"empty previous hash after genesis", func(o orderer, tip TipInfo) *pb.Block {
			return o.block(tip.Height, nil, txs)
		}, ErrBadPreviousHash},
		{"signed header, other transactions", func(o orderer, tip TipInfo) *pb.Block {
			b := o.block(tip.Height, tip.CurrentHash, txs)
			b.Data.Transactions = [][]byte{[]byte("ab"), []byte("ce")}
			return b
		}, ErrBadDataHash},
		{"re-split transactions", func(o orderer, tip TipInfo) *pb.Block {
			b := o.block(tip.Height, tip.CurrentHash, txs) // "ab","cd"
			b.Data.Transactions = [][]byte{[]byte("abc"), []byte("d")}
			return b
		}, ErrBadDataHash},
		{"merged transactions", func(o orderer, tip TipInfo) *pb.Block {
			b := o.block(tip.Height, tip.CurrentHash, txs)
			b.Data.Transactions = [][]byte{[]byte("abcd")}
			return b
		}, ErrBadDataHash},
		{"dropped transaction", func(o orderer, tip TipInfo) *pb.Block {
			b := o.block(tip.Height, tip.CurrentHash, txs)
			b.Data = nil
			return b
		}, ErrBadDataHash},
		{"number ahead", func(o orderer, tip TipInfo) *pb.Block {
			return o.block(tip.Height+1, tip.CurrentHash, txs)
		}, ErrWrongNumber},
		{"number already committed", func(o orderer, tip TipInfo) *pb.Block {
			return o.block(tip.Height-1, tip.PreviousHash, txs)
		}, ErrWrongNumber},
		{"genesis again", func(o orderer, tip TipInfo) *pb.Block {
			return o.block(0, nil, txs)
		}, ErrWrongNumber},
		{"nil block", func(o orderer, tip TipInfo) *pb.Block { return nil }, ErrMalformedBlock},
		{"empty block", func(o orderer, tip TipInfo) *pb.Block { return &pb.Block{} }, ErrMalformedBlock},
		{"garbage header", func(o orderer, tip TipInfo) *pb.Block {
			return o.sign(&pb.Block{Header: []byte{0xff, 0xff, 0xff}})
		}, ErrMalformedBlock},
	}
	forEach(t, func(t *testing.T, o orderer, l Ledger) {
		rng := rand.New(rand.NewPCG(2, 2))
		appendAll(t, l, o.chain(rng, 3))
		for _, c := range cases {
			before := l.Tip()
			err := l.Append(c.make(o, before))
			require.ErrorIs(t, err, c.want, c.name)
			for _, s := range sentinels {
				if s != c.want {
					require.NotErrorIs(t, err, s, "%s: wraps only %v", c.name, c.want)
				}
			}
			require.Equal(t, before, l.Tip(), "%s: ledger unchanged", c.name)
			_, err = l.Block(before.Height)
			require.ErrorIs(t, err, ErrNotFound, c.name)
		}
		good := o.block(3, l.Tip().CurrentHash, txs)
		require.NoError(t, l.Append(good), "the right block is still accepted")
		require.Equal(t, uint64(4), l.Height())
	})
}

func TestGenesisRules(t *testing.T) {
	forEach(t, func(t *testing.T, o orderer, l Ledger) {
		err := l.Append(o.block(0, []byte("not empty"), nil))
		require.ErrorIs(t, err, ErrBadPreviousHash)
		require.ErrorIs(t, l.Append(o.block(1, nil, nil)), ErrWrongNumber)
		require.ErrorIs(t, l.Append(newOrderer(2).block(0, nil, nil)), ErrBadSignature,
			"genesis is checked against the caller's pinned orderer key")
		require.Equal(t, uint64(0), l.Height())
		require.NoError(t, l.Append(o.block(0, nil, nil)), "a genesis block with no transactions is fine")
	})
}

func TestRange(t *testing.T) {
	forEach(t, func(t *testing.T, o orderer, l Ledger) {
		blocks := o.chain(rand.New(rand.NewPCG(3, 3)), 10)
		appendAll(t, l, blocks)
		size := func(i int) int { return proto.Size(blocks[i]) }
		numbers := func(bs []*pb.Block) []int {
			var out []int
			for _, b := range bs {
				h, err := ParseHeader(b)
				require.NoError(t, err)
				out = append(out, int(h.GetNumber()))
			}
			return out
		}
		check := func(start, end uint64, maxBytes int, want ...int) {
			t.Helper()
			got, err := l.Range(start, end, maxBytes)
			require.NoError(t, err)
			require.Equal(t, want, numbers(got), "Range(%d,%d,%d)", start, end, maxBytes)
			for _, b := range got {
				h, _ := ParseHeader(b)
				require.True(t, proto.Equal(blocks[h.GetNumber()], b))
			}
		}
		check(0, 10, 0, 0, 1, 2, 3, 4, 5, 6, 7, 8, 9)
		check(2, 5, 0, 2, 3, 4)
		check(8, 1000, 0, 8, 9)                       // end capped at the height
		check(9, 10, 0, 9)                            // the tip alone
		check(5, 5, 0)                                // empty interval
		check(6, 3, 0)                                // reversed interval
		check(2, 10, size(2)+size(3), 2, 3)           // exactly fits two
		check(2, 10, size(2)+size(3)+size(4)-1, 2, 3) // one byte short of three
		check(4, 10, 1, 4)                            // always at least one block
		check(0, 10, -1, 0, 1, 2, 3, 4, 5, 6, 7, 8, 9)

		_, err := l.Range(10, 20, 0)
		require.ErrorIs(t, err, ErrNotFound)
	})
}

func TestClosed(t *testing.T) {
	for _, impl := range impls {
		t.Run(impl.name, func(t *testing.T) {
			o := newOrderer(1)
			l := impl.open(t, o.v)
			appendAll(t, l, o.chain(rand.New(rand.NewPCG(4, 4)), 2))
			tip := l.Tip()
			require.NoError(t, l.Close())
			require.NoError(t, l.Close(), "closing twice is harmless")
			require.ErrorIs(t, l.Append(o.block(2, tip.CurrentHash, nil)), ErrClosed)
			_, err := l.Block(0)
			require.ErrorIs(t, err, ErrClosed)
			_, err = l.BlockByHash(tip.CurrentHash)
			require.ErrorIs(t, err, ErrClosed)
			_, err = l.Range(0, 2, 0)
			require.ErrorIs(t, err, ErrClosed)
		})
	}
}

func TestNilVerifier(t *testing.T) {
	o := newOrderer(1)
	require.ErrorIs(t, OpenMemory(nil).Append(o.block(0, nil, nil)), ErrNoVerifier)
	_, err := Open(t.TempDir(), nil)
	require.ErrorIs(t, err, ErrNoVerifier)
	_, err = VerifyBlock(o.block(0, nil, nil), nil)
	require.ErrorIs(t, err, ErrNoVerifier)
}

// TestConcurrentReadersSeeCommittedBlocks: while one goroutine appends,
// readers always find the block the tip names, with the tip's hash.
func TestConcurrentReadersSeeCommittedBlocks(t *testing.T) {
	forEach(t, func(t *testing.T, o orderer, l Ledger) {
		rng := rand.New(rand.NewPCG(5, 5))
		require.NoError(t, l.Append(o.next(rng, l)))
		const appends = 40
		blocks := make([]*pb.Block, 0, appends)
		prev := l.Tip().CurrentHash
		for i := range appends {
			b := o.block(uint64(i+1), prev, randomTxs(rng, 256))
			blocks = append(blocks, b)
			prev = HeaderHash(b)
		}

		var wg sync.WaitGroup
		done := make(chan struct{})
		errs := make(chan error, 4)
		for range 3 {
			wg.Add(1)
			go func() {
				defer wg.Done()
				for {
					select {
					case <-done:
						return
					default:
					}
					tip := l.Tip()
					b, err := l.Block(tip.Height - 1)
					if err == nil && !bytes.Equal(HeaderHash(b), tip.CurrentHash) {
						err = errors.New("block at the tip does not have the tip's hash")
					}
					if err == nil {
						var rs []*pb.Block
						rs, err = l.Range(0, tip.Height, 0)
						if err == nil && uint64(len(rs)) != tip.Height {
							err = errors.New("range over a committed prefix came back short")
						}
					}
					if err != nil {
						errs <- err
						return
					}
				}
			}()
		}
		for _, b := range blocks {
			require.NoError(t, l.Append(b))
		}
		close(done)
		wg.Wait()
		close(errs)
		for err := range errs {
			require.NoError(t, err)
		}
		require.Equal(t, uint64(appends+1), l.Height())
	})
}

// countingVerifier counts the signature checks it makes.
type countingVerifier struct {
	v     BlockVerifier
	calls int
}

func (c *countingVerifier) VerifyBlockSignature(header, sig []byte) error {
	c.calls++
	return c.v.VerifyBlockSignature(header, sig)
}

// AppendVerified commits what Verify passed without a second signature
// check, but still refuses a block that does not extend the tip, and
// never takes a Verified that Verify did not make.
func TestAppendVerified(t *testing.T) {
	for _, impl := range impls {
		t.Run(impl.name, func(t *testing.T) {
			o := newOrderer(1)
			cv := &countingVerifier{v: o.v}
			l := impl.open(t, cv)
			defer func() { require.NoError(t, l.Close()) }()
			blocks := o.chain(rand.New(rand.NewPCG(3, 3)), 4)

			_, err := Verify(newOrderer(9).block(0, nil, nil), cv)
			require.ErrorIs(t, err, ErrBadSignature, "Verify checks as VerifyBlock does")
			cv.calls = 0

			for i, b := range blocks[:3] {
				vb, err := Verify(b, cv)
				require.NoError(t, err)
				require.Same(t, b, vb.Block())
				require.Equal(t, uint64(i), vb.Header().GetNumber())
				require.NoError(t, l.AppendVerified(vb))
			}
			require.Equal(t, 3, cv.calls, "one signature check per block: Verify's, not the ledger's")
			require.Equal(t, uint64(3), l.Height())
			got, err := l.Block(2)
			require.NoError(t, err)
			require.True(t, proto.Equal(blocks[2], got))

			before := l.Tip()
			old, err := Verify(blocks[1], cv)
			require.NoError(t, err)
			require.ErrorIs(t, l.AppendVerified(old), ErrWrongNumber, "linkage is still checked")
			fork, err := Verify(o.block(3, HeaderHash(blocks[0]), nil), cv)
			require.NoError(t, err)
			require.ErrorIs(t, l.AppendVerified(fork), ErrBadPreviousHash)
			require.ErrorIs(t, l.AppendVerified(Verified{}), ErrMalformedBlock, "the zero Verified is no block")
			require.Equal(t, before, l.Tip(), "rejections leave the ledger unchanged")

			last, err := Verify(blocks[3], cv)
			require.NoError(t, err)
			require.NoError(t, l.AppendVerified(last))
			require.NoError(t, l.Close())
			require.ErrorIs(t, l.AppendVerified(last), ErrClosed)
		})
	}
}
