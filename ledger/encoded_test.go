package ledger

import (
	"math/rand/v2"
	"testing"

	"github.com/stretchr/testify/require"
	"google.golang.org/protobuf/encoding/protowire"
	"google.golang.org/protobuf/proto"

	pb "github.com/blockgossip/blockgossip/protos"
)

// FuzzDecodeBlock: for any bytes, DecodeBlock fails exactly when
// proto.Unmarshal does, and otherwise returns the same block.
func FuzzDecodeBlock(f *testing.F) {
	_, chain := fuzzFixture()
	for _, b := range chain {
		raw, err := proto.Marshal(b)
		if err != nil {
			f.Fatal(err)
		}
		f.Add(raw)
		f.Add(append(raw, raw...))                                                                 // every field twice: proto's merge rules
		f.Add(protowire.AppendString(protowire.AppendTag(raw, 9, protowire.BytesType), "unknown")) // kept by proto.Unmarshal
	}
	f.Add([]byte{})
	f.Add([]byte{0x1a, 0x02, 0x10, 0xff})       // metadata whose cut time is cut short
	f.Add([]byte{0x12, 0x03, 0x0a, 0x05, 0x00}) // a transaction longer than its data
	f.Fuzz(func(t *testing.T, raw []byte) {
		want := new(pb.Block)
		wantErr := proto.Unmarshal(raw, want)
		got, err := DecodeBlock(raw)
		if wantErr != nil {
			require.ErrorIs(t, err, ErrMalformedBlock, "proto.Unmarshal: %v", wantErr)
			return
		}
		require.NoError(t, err)
		require.True(t, proto.Equal(want, got), "DecodeBlock differs from proto.Unmarshal:\n%v\n%v", want, got)
	})
}

// DecodeBlock's result shares raw's bytes, and VerifyEncoded's block is
// what AppendVerified stores: read back equal, with one signature check.
func TestDecodeBlockAliasesAndLedgerStoresIt(t *testing.T) {
	o := newOrderer(1)
	blocks := o.chain(rand.New(rand.NewPCG(4, 4)), 3)
	raw, err := proto.Marshal(blocks[1])
	require.NoError(t, err)
	b, err := DecodeBlock(raw)
	require.NoError(t, err)
	require.True(t, proto.Equal(blocks[1], b))
	for _, blk := range blocks {
		raw, err := proto.Marshal(blk)
		require.NoError(t, err)
		_, ok := decodeAliased(raw)
		require.True(t, ok, "what proto.Marshal writes takes the aliasing path, not proto.Unmarshal's copy")
	}
	tx := b.GetData().GetTransactions()[0]
	tx[0] ^= 0xff
	require.NotEqual(t, blocks[1].GetData().GetTransactions()[0][0], tx[0])
	require.Contains(t, string(raw), string(tx), "the transaction is a slice of raw, not a copy")
	tx[0] ^= 0xff

	for _, impl := range impls {
		t.Run(impl.name, func(t *testing.T) {
			cv := &countingVerifier{v: o.v}
			l := impl.open(t, cv)
			defer func() { require.NoError(t, l.Close()) }()
			for i, blk := range blocks {
				raw, err := proto.Marshal(blk)
				require.NoError(t, err)
				enc, err := DecodeEncoded(raw)
				require.NoError(t, err)
				require.True(t, proto.Equal(blk, enc.Block()))
				vb, err := VerifyEncoded(enc, cv)
				require.NoError(t, err)
				require.Equal(t, raw, vb.Bytes())
				require.NoError(t, l.AppendVerified(vb), "block %d", i)
			}
			require.Equal(t, len(blocks), cv.calls)
			for i, blk := range blocks {
				got, err := l.Block(uint64(i))
				require.NoError(t, err)
				require.True(t, proto.Equal(blk, got), "block %d read back", i)
			}
			forged := proto.Clone(blocks[2]).(*pb.Block)
			forged.Data.Transactions[0] = []byte("forged")
			raw, err := proto.Marshal(forged)
			require.NoError(t, err)
			enc, err := DecodeEncoded(raw)
			require.NoError(t, err)
			_, err = VerifyEncoded(enc, cv)
			require.ErrorIs(t, err, ErrBadDataHash)
			_, err = DecodeEncoded([]byte{0xff})
			require.ErrorIs(t, err, ErrMalformedBlock)
			_, err = VerifyEncoded(Encoded{}, cv)
			require.ErrorIs(t, err, ErrMalformedBlock, "the zero Encoded is no block")
		})
	}
}
