package ledger

import (
	"bytes"
	"errors"
	"math/rand/v2"
	"sync"
	"testing"

	pb "github.com/blockgossip/blockgossip/protos"
	"google.golang.org/protobuf/proto"
)

var (
	fuzzOnce  sync.Once
	fuzzOrd   orderer
	fuzzChain []*pb.Block
)

// fuzzFixture is one orderer and a 6-block chain, built once per process.
func fuzzFixture() (orderer, []*pb.Block) {
	fuzzOnce.Do(func() {
		fuzzOrd = newOrderer(7)
		fuzzChain = fuzzOrd.chain(rand.New(rand.NewPCG(7, 7)), 6)
	})
	return fuzzOrd, fuzzChain
}

// blockSentinels are the errors a rejected block must wrap: a caller tells
// a forger (penalise) from a stale or early block (ignore) by them.
var blockSentinels = []error{ErrMalformedBlock, ErrBadSignature, ErrBadDataHash, ErrWrongNumber, ErrBadPreviousHash}

// FuzzVerifyBlock feeds arbitrary bytes, as a peer would send them, to the
// block decoder, VerifyBlock and Append on a ledger at height 3. Contract:
// no panic; every rejection wraps a sentinel; whatever is accepted carries
// a header the orderer really signed (the fixture's chain), with
// transactions matching its data hash; and only block 3 of that chain can
// be appended.
func FuzzVerifyBlock(f *testing.F) {
	o, chain := fuzzFixture()
	for _, b := range chain {
		raw, err := proto.Marshal(b)
		if err != nil {
			f.Fatal(err)
		}
		f.Add(raw)
	}
	forged := proto.Clone(chain[3]).(*pb.Block)
	forged.Data.Transactions = append(forged.Data.Transactions, []byte("injected"))
	raw, _ := proto.Marshal(forged)
	f.Add(raw)
	f.Add([]byte{})
	f.Add([]byte{0x0a, 0x02, 0x08, 0x03})
	f.Fuzz(func(t *testing.T, raw []byte) {
		b := new(pb.Block)
		if err := proto.Unmarshal(raw, b); err != nil {
			return // the transport hands such bytes to nobody
		}
		known := func(b *pb.Block) int {
			for i, c := range chain {
				if bytes.Equal(c.GetHeader(), b.GetHeader()) {
					return i
				}
			}
			return -1
		}
		h, err := VerifyBlock(b, o.v)
		if err != nil {
			requireSentinel(t, "VerifyBlock", err)
		} else {
			i := known(b)
			if i < 0 {
				t.Fatalf("VerifyBlock accepted a header the orderer never signed: %x", b.GetHeader())
			}
			if !bytes.Equal(h.GetDataHash(), DataHash(b.GetData().GetTransactions())) {
				t.Fatalf("VerifyBlock accepted block %d whose transactions do not match its data hash", i)
			}
		}
		l := OpenMemory(o.v)
		for _, c := range chain[:3] {
			if err := l.Append(c); err != nil {
				t.Fatalf("fixture append: %v", err)
			}
		}
		if err := l.Append(b); err != nil {
			requireSentinel(t, "Append", err)
			if l.Height() != 3 {
				t.Fatalf("a rejected append moved the height to %d", l.Height())
			}
			return
		}
		if known(b) != 3 || l.Height() != 4 || !bytes.Equal(l.Tip().CurrentHash, HeaderHash(chain[3])) {
			t.Fatalf("Append accepted a block other than chain[3]: known=%d height=%d", known(b), l.Height())
		}
		got, err := l.Block(3)
		if err != nil || !bytes.Equal(got.GetHeader(), chain[3].GetHeader()) {
			t.Fatalf("block 3 reads back as %v, %v", got, err)
		}
	})
}

func requireSentinel(t *testing.T, op string, err error) {
	t.Helper()
	for _, s := range blockSentinels {
		if errors.Is(err, s) {
			return
		}
	}
	t.Fatalf("%s: rejection %q wraps no ledger sentinel", op, err)
}
