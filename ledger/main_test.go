package ledger

import (
	"crypto/ed25519"
	"errors"
	"math/rand/v2"
	"testing"

	pb "github.com/blockgossip/blockgossip/protos"
	"go.uber.org/goleak"
)

// goleveldb's mpoolDrain goroutine outlives DB.Close by up to a second
// (it waits on time.After before exiting); every other LevelDB goroutine
// must be gone, so an unclosed Store still fails the check.
func TestMain(m *testing.M) {
	goleak.VerifyTestMain(m, goleak.IgnoreTopFunction("github.com/syndtr/goleveldb/leveldb.(*DB).mpoolDrain"))
}

// edVerifier checks block signatures against one ed25519 orderer key.
type edVerifier ed25519.PublicKey

func (v edVerifier) VerifyBlockSignature(header, sig []byte) error {
	if !ed25519.Verify(ed25519.PublicKey(v), header, sig) {
		return errors.New("ed25519 signature does not verify")
	}
	return nil
}

// orderer signs blocks with a key derived from a fixed seed.
type orderer struct {
	priv ed25519.PrivateKey
	v    edVerifier
}

func newOrderer(seed byte) orderer {
	var s [ed25519.SeedSize]byte
	s[0] = seed
	priv := ed25519.NewKeyFromSeed(s[:])
	return orderer{priv: priv, v: edVerifier(priv.Public().(ed25519.PublicKey))}
}

func (o orderer) sign(b *pb.Block) *pb.Block {
	SignBlock(b, func(h []byte) []byte { return ed25519.Sign(o.priv, h) })
	return b
}

// block builds and signs block number linking to prev.
func (o orderer) block(number uint64, prev []byte, txs [][]byte) *pb.Block {
	return o.sign(NewBlock(number, prev, txs, int64(number)))
}

// randomTxs returns 1..4 transactions of up to maxLen random bytes.
func randomTxs(rng *rand.Rand, maxLen int) [][]byte {
	txs := make([][]byte, 1+rng.IntN(4))
	for i := range txs {
		txs[i] = make([]byte, 1+rng.IntN(maxLen))
		for j := range txs[i] {
			txs[i][j] = byte(rng.Uint32())
		}
	}
	return txs
}

// chain builds n signed, linked blocks from genesis.
func (o orderer) chain(rng *rand.Rand, n int) []*pb.Block {
	var prev []byte
	out := make([]*pb.Block, n)
	for i := range out {
		out[i] = o.block(uint64(i), prev, randomTxs(rng, 512))
		prev = HeaderHash(out[i])
	}
	return out
}

// next builds the block that extends l.
func (o orderer) next(rng *rand.Rand, l Ledger) *pb.Block {
	tip := l.Tip()
	return o.block(tip.Height, tip.CurrentHash, randomTxs(rng, 512))
}
