package bench

// Go benchmarks of the hot paths a bench run exercises, through the
// packages' exported APIs:
//
//	go test -run - -bench . -benchmem ./cmd/internal/bench

import (
	"fmt"
	"math/rand/v2"
	"testing"
	"time"

	"github.com/blockgossip/blockgossip/gossip"
	"github.com/blockgossip/blockgossip/identity"
	"github.com/blockgossip/blockgossip/ledger"
	pb "github.com/blockgossip/blockgossip/protos"
	"github.com/blockgossip/blockgossip/pull"
	"google.golang.org/protobuf/proto"
)

var benchSizes = []int{1 << 10, 100 << 10, 1 << 20}

// chain makes n signed blocks (genesis first) of size transaction bytes.
func chain(b *testing.B, n, size int) ([]*pb.Block, ledger.BlockVerifier) {
	b.Helper()
	bundle, err := identity.NewBundle(identity.GenerateSpec{Orgs: 1, PeersPerOrg: 1})
	if err != nil {
		b.Fatal(err)
	}
	v, err := bundle.Network.OrdererVerifier()
	if err != nil {
		b.Fatal(err)
	}
	rng := rand.New(rand.NewPCG(1, 2))
	var prev []byte
	out := make([]*pb.Block, n)
	for i := range out {
		tx := make([]byte, size)
		for j := range tx {
			tx[j] = byte(rng.Uint32())
		}
		blk := ledger.NewBlock(uint64(i), prev, [][]byte{tx}, time.Now().UnixNano())
		ledger.SignBlock(blk, bundle.Orderer.Sign)
		prev = ledger.HeaderHash(blk)
		out[i] = blk
	}
	return out, v
}

func newBenchPeer(b *testing.B, v ledger.BlockVerifier, id identity.PKIID) *gossip.Peer {
	b.Helper()
	cfg := gossip.DefaultConfig()
	cfg.Tree = false // random push to Fanout: the hot path these benchmarks measure (tree push became the default)
	p, err := gossip.NewPeer(cfg, gossip.Self{ID: id, Org: "org1", Endpoint: "self"}, gossip.PeerDeps{
		Ledger: ledger.OpenMemory(v), Verifier: v, Crypto: gossip.NopCrypto{}, Rand: rand.New(rand.NewPCG(3, 4)),
	})
	if err != nil {
		b.Fatal(err)
	}
	return p
}

func pkiid(i int) identity.PKIID {
	var id identity.PKIID
	id[0], id[1], id[31] = byte(i>>8), byte(i), 1
	return id
}

// BenchmarkVerifyAndCommit: a block from the orderer goes through the
// pipeline: orderer signature and data hash verified, linked, committed.
func BenchmarkVerifyAndCommit(b *testing.B) {
	for _, size := range benchSizes {
		b.Run(sizeName(size), func(b *testing.B) {
			const n = 64
			blocks, v := chain(b, n, size)
			b.SetBytes(int64(size))
			var p *gossip.Peer
			b.ResetTimer()
			for i := range b.N {
				if i%n == 0 {
					b.StopTimer()
					p = newBenchPeer(b, v, pkiid(0))
					b.StartTimer()
				}
				if err := p.InjectBlock(blocks[i%n]); err != nil {
					b.Fatal(err)
				}
				p.Ready()
			}
		})
	}
}

// BenchmarkPushFanout: a block pushed by a peer is received (decoded,
// verified, committed) and forwarded to Fanout of 100 live org peers.
func BenchmarkPushFanout(b *testing.B) {
	for _, size := range benchSizes {
		b.Run(sizeName(size), func(b *testing.B) {
			const n = 64
			blocks, v := chain(b, n, size)
			envs := make([]*pb.Envelope, n)
			for i, blk := range blocks {
				// As peers push it: hops in the envelope, so the payload is forwarded as it is.
				payload, err := proto.Marshal(&pb.GossipMessage{Content: &pb.GossipMessage_Block{Block: &pb.BlockMessage{Block: blk}}})
				if err != nil {
					b.Fatal(err)
				}
				envs[i] = &pb.Envelope{Payload: payload, Hops: 1}
			}
			fresh := func() *gossip.Peer {
				p := newBenchPeer(b, v, pkiid(0))
				for m := 1; m <= 100; m++ {
					payload, err := proto.Marshal(&pb.GossipMessage{Content: &pb.GossipMessage_Alive{Alive: &pb.AliveMessage{
						Member:      &pb.Member{PkiId: pkiid(m).Bytes(), Endpoint: fmt.Sprintf("peer%d", m), Org: "org1"},
						Incarnation: 1, Sequence: 1, LedgerHeight: 0,
					}}})
					if err != nil {
						b.Fatal(err)
					}
					p.Step(pkiid(m), "org1", &pb.Envelope{Payload: payload}, len(payload))
				}
				p.Ready()
				return p
			}
			p := fresh()
			p.Step(pkiid(1), "org1", envs[0], len(envs[0].Payload))
			if got := len(p.Ready().Messages); got != gossip.DefaultConfig().Fanout {
				b.Fatalf("a pushed block was forwarded to %d peers, want Fanout=%d", got, gossip.DefaultConfig().Fanout)
			}
			b.SetBytes(int64(size))
			b.ResetTimer()
			for i := range b.N {
				if i%n == 0 {
					b.StopTimer()
					p = fresh()
					b.StartTimer()
				}
				e := envs[i%n]
				p.Step(pkiid(1), "org1", e, len(e.Payload))
				p.Ready()
			}
		})
	}
}

// heightStore is a pull.Store holding blocks [0, height).
type heightStore struct{ height uint64 }

func (s heightStore) Height() uint64                 { return s.height }
func (s heightStore) Have(n uint64) bool             { return n < s.height }
func (s heightStore) Block(uint64) (*pb.Block, bool) { return nil, false }

// BenchmarkDigestBuild: a responder answers a PullHello with the digest of
// its window (default DigestWindow, a long chain).
func BenchmarkDigestBuild(b *testing.B) {
	e, err := pull.New(pull.DefaultConfig(), pkiid(0), rand.New(rand.NewPCG(5, 6)), heightStore{height: 100_000})
	if err != nil {
		b.Fatal(err)
	}
	outs, _ := e.Step(pkiid(1), &pb.GossipMessage{Content: &pb.GossipMessage_PullHello{PullHello: &pb.PullHello{Nonce: 1}}})
	if len(outs) != 1 || outs[0].Msg.GetPullDigest() == nil {
		b.Fatalf("hello answered with %v, want one digest", outs)
	}
	b.ResetTimer()
	for i := range b.N {
		from := pkiid(1 + i%512)
		e.Step(from, &pb.GossipMessage{Content: &pb.GossipMessage_PullHello{PullHello: &pb.PullHello{Nonce: uint64(i + 2)}}})
	}
}
