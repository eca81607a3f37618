package sim

import (
	"crypto/sha256"
	"fmt"
	"math/rand/v2"

	"github.com/blockgossip/blockgossip/gossip"
	"github.com/blockgossip/blockgossip/identity"
	"github.com/blockgossip/blockgossip/ledger"
	pb "github.com/blockgossip/blockgossip/protos"
	"google.golang.org/protobuf/proto"
)

// stubVerifier accepts every orderer signature: the simulator measures
// dissemination, not ed25519. Data hashes are still checked.
type stubVerifier struct{}

func (stubVerifier) VerifyBlockSignature([]byte, []byte) error { return nil }

// stubSignature has the size of an ed25519 signature, so blocks weigh what
// real ones do on the wire.
func stubSignature([]byte) []byte { return make([]byte, 64) }

// chainLedger is a peer's ledger as a height over the one chain the
// orderer cut: 10,000 peers share the blocks instead of holding 10,000
// copies. The Peer checks linkage before it appends; Append checks the
// number and that the block is the chain's.
type chainLedger struct {
	chain  *[]*pb.Block
	height uint64
}

var _ gossip.Ledger = (*chainLedger)(nil)

func (l *chainLedger) Height() uint64 { return l.height }

func (l *chainLedger) Append(b *pb.Block) error {
	h, err := ledger.ParseHeader(b)
	if err != nil {
		return err
	}
	n := h.GetNumber()
	if n != l.height || n >= uint64(len(*l.chain)) {
		return fmt.Errorf("sim ledger: append block %d at height %d of a %d-block chain", n, l.height, len(*l.chain))
	}
	l.height++
	return nil
}

func (l *chainLedger) Block(n uint64) (*pb.Block, error) {
	if n >= l.height {
		return nil, fmt.Errorf("sim ledger: block %d above height %d", n, l.height)
	}
	return (*l.chain)[n], nil
}

// node is one simulated peer.
type node struct {
	p     *gossip.Peer
	id    identity.PKIID
	org   string
	led   *chainLedger
	inc   uint64
	down  bool
	epoch uint32 // changes at every crash and restart: in-flight messages to an older epoch are lost
	view  []int32
}

func peerID(i int) identity.PKIID { return sha256.Sum256(fmt.Appendf(nil, "sim-peer-%d", i)) }

// dupTracer counts duplicate block copies into the world's counter.
type dupTracer struct {
	gossip.NopTracer
	w *world
}

func (t dupTracer) BlockDuplicate(identity.PKIID, uint64, gossip.Via) {
	if t.w.measuring {
		t.w.traffic.Duplicates++
	}
}

// startPeer builds node i's Peer for its current incarnation and seeds its
// membership with its view, as a converged membership response would.
func (w *world) startPeer(i int) error {
	n := w.nodes[i]
	rng := rand.New(rand.NewPCG(w.o.Seed^0x5eed, uint64(i)<<20|n.inc))
	p, err := gossip.NewPeer(w.cfg, gossip.Self{ID: n.id, Endpoint: fmt.Sprintf("p%d", i), Org: n.org, Incarnation: n.inc},
		gossip.PeerDeps{Ledger: n.led, Verifier: stubVerifier{}, Crypto: gossip.NopCrypto{}, Rand: rng, Tracer: dupTracer{w: w}})
	if err != nil {
		return fmt.Errorf("peer %d: %w", i, err)
	}
	n.p = p
	var from int
	var env *pb.Envelope
	if w.o.View == 0 {
		from, env = (i+1)%len(w.nodes), w.fullView
	} else {
		if len(n.view) == 0 {
			return nil
		}
		resp := &pb.MembershipResponse{}
		for _, j := range n.view {
			resp.Alive = append(resp.Alive, w.alive(int(j)))
		}
		from, env = int(n.view[0]), wrap(&pb.GossipMessage{Content: &pb.GossipMessage_MembershipResponse{MembershipResponse: resp}})
	}
	p.Step(w.nodes[from].id, w.nodes[from].org, env, proto.Size(env))
	r := p.Ready() // seeding says nothing back; drop any reply
	_ = r
	return nil
}

// alive is an unsigned alive message of node j's current incarnation at
// sequence 0 (its own first alive is newer), as a converged view holds it.
func (w *world) alive(j int) *pb.Envelope {
	n := w.nodes[j]
	return wrap(&pb.GossipMessage{Content: &pb.GossipMessage_Alive{Alive: &pb.AliveMessage{
		Member:      &pb.Member{PkiId: n.id.Bytes(), Endpoint: fmt.Sprintf("p%d", j), Org: n.org},
		Incarnation: n.inc,
	}}})
}

func wrap(msg *pb.GossipMessage) *pb.Envelope {
	b, err := proto.Marshal(msg)
	if err != nil {
		panic(fmt.Sprintf("sim: marshal own message: %v", err)) // only messages built here
	}
	return &pb.Envelope{Payload: b}
}

// buildViews links each peer to up to View random peers of its org, both
// ways, so that views are symmetric (a member of my view has me in its
// view) and nearly View-regular.
func (w *world) buildViews(rng *rand.Rand) {
	k := w.o.View
	byOrg := make([][]int32, w.o.Orgs)
	for i := range w.nodes {
		byOrg[i%w.o.Orgs] = append(byOrg[i%w.o.Orgs], int32(i))
	}
	linked := func(a, b int32) bool {
		for _, x := range w.nodes[a].view {
			if x == b {
				return true
			}
		}
		return false
	}
	for _, members := range byOrg {
		if len(members) <= k+1 { // the whole org fits in a view
			for _, a := range members {
				for _, b := range members {
					if a != b {
						w.nodes[a].view = append(w.nodes[a].view, b)
					}
				}
			}
			continue
		}
		for range 3 {
			for _, a := range members {
				for tries := 0; len(w.nodes[a].view) < k && tries < 4*k; tries++ {
					b := members[rng.IntN(len(members))]
					if a == b || len(w.nodes[b].view) >= k || linked(a, b) {
						continue
					}
					w.nodes[a].view = append(w.nodes[a].view, b)
					w.nodes[b].view = append(w.nodes[b].view, a)
				}
			}
		}
	}
}

// newBlock cuts block number n after prev, with size random bytes.
func newBlock(n uint64, prev []byte, size int, at int64, rng *rand.Rand) *pb.Block {
	tx := make([]byte, size)
	for i := 0; i < size; i += 8 {
		v := rng.Uint64()
		for j := 0; j < 8 && i+j < size; j++ {
			tx[i+j] = byte(v >> (8 * j))
		}
	}
	b := ledger.NewBlock(n, prev, [][]byte{tx}, at)
	ledger.SignBlock(b, stubSignature)
	return b
}
