package gossip

import (
	"bytes"
	"crypto/hmac"
	"crypto/sha256"
	"errors"
	"fmt"
	"math/rand/v2"
	"testing"

	"github.com/blockgossip/blockgossip/comm"
	"github.com/blockgossip/blockgossip/identity"
	"github.com/blockgossip/blockgossip/ledger"
	pb "github.com/blockgossip/blockgossip/protos"
)

// macOrderer is a cheap stand-in for the orderer's ed25519 key: a block is
// "signed" with an HMAC under a secret key. Forging needs the key, and
// verifying costs a hash, so thousands of simulated peers stay fast.
type macOrderer struct{ key []byte }

func (o macOrderer) sign(header []byte) []byte {
	m := hmac.New(sha256.New, o.key)
	m.Write(header)
	return m.Sum(nil)
}

func (o macOrderer) VerifyBlockSignature(header, sig []byte) error {
	if !hmac.Equal(o.sign(header), sig) {
		return errors.New("mac mismatch")
	}
	return nil
}

var testOrderer = macOrderer{key: []byte("orderer secret")}

// makeChain returns n linked blocks signed by o.
func makeChain(o macOrderer, n int, seed uint64) []*pb.Block {
	var prev []byte
	out := make([]*pb.Block, n)
	for i := range out {
		tx := fmt.Appendf(nil, "seed %d tx %d", seed, i)
		b := ledger.NewBlock(uint64(i), prev, [][]byte{tx}, 0)
		ledger.SignBlock(b, o.sign)
		prev = ledger.HeaderHash(b)
		out[i] = b
	}
	return out
}

func fakeID(i int) identity.PKIID { return sha256.Sum256(fmt.Appendf(nil, "peer-%d", i)) }

// simPeer is one Peer core in the harness, with what it committed.
type simPeer struct {
	idx     int
	p       *Peer
	led     *ledger.Memory
	tr      *recTracer
	commits []Commit
	down    bool
	// reachable counts, per member, the times Ready told the transport
	// it was reachable again.
	reachable map[identity.PKIID]int
}

type simMsg struct {
	from, to identity.PKIID
	env      *pb.Envelope
}

// simNet is a discrete-event harness for Peer cores: messages sent during
// a step are delivered in the next round, rounds run until no message is in
// flight, and Tick advances every live peer by one tick first. Loss drops
// each message independently with the seeded rng. No goroutines, no clock.
type simNet struct {
	t       testing.TB
	rng     *rand.Rand
	peers   []*simPeer
	byID    map[identity.PKIID]*simPeer
	queue   []simMsg
	loss    float64
	sent    int
	dropped int
	filter  func(m simMsg) bool // return false to drop
	now     int
}

func newSimNet(t testing.TB, seed uint64) *simNet {
	return &simNet{t: t, rng: rand.New(rand.NewPCG(seed, 0xb10c)), byID: map[identity.PKIID]*simPeer{}}
}

// add creates peer i of org with cfg, an empty ledger and incarnation inc.
func (n *simNet) add(i int, org string, cfg Config, inc uint64) *simPeer {
	n.t.Helper()
	id := fakeID(i)
	sp := &simPeer{idx: i, led: ledger.OpenMemory(testOrderer), tr: newRecTracer()}
	p, err := NewPeer(cfg, Self{ID: id, Endpoint: fmt.Sprintf("peer%d:7051", i), Org: org, Incarnation: inc},
		PeerDeps{Ledger: sp.led, Verifier: testOrderer, Crypto: NopCrypto{}, Rand: rand.New(rand.NewPCG(uint64(i), inc)), Tracer: sp.tr})
	if err != nil {
		n.t.Fatalf("NewPeer %d: %v", i, err)
	}
	sp.p = p
	if old := n.byID[id]; old != nil {
		n.peers[old.idx] = sp
	} else {
		for len(n.peers) <= i {
			n.peers = append(n.peers, nil)
		}
		n.peers[i] = sp
	}
	n.byID[id] = sp
	return sp
}

// collect moves a peer's effects into the harness.
func (n *simNet) collect(sp *simPeer) {
	r := sp.p.Ready()
	for _, m := range r.Messages {
		n.queue = append(n.queue, simMsg{from: sp.p.self.ID, to: m.To.ID, env: m.Env})
	}
	sp.commits = append(sp.commits, r.Commits...)
	for _, id := range r.Reachable {
		if sp.reachable == nil {
			sp.reachable = make(map[identity.PKIID]int)
		}
		sp.reachable[id]++
	}
}

// deliver runs rounds until nothing is in flight.
func (n *simNet) deliver() {
	for rounds := 0; len(n.queue) > 0; rounds++ {
		if rounds > 10000 {
			n.t.Fatal("harness: messages still in flight after 10000 rounds")
		}
		q := n.queue
		n.queue = nil
		for _, m := range q {
			n.sent++
			dst := n.byID[m.to]
			src := n.byID[m.from]
			if dst == nil || dst.down || (src != nil && src.down) ||
				(n.filter != nil && !n.filter(m)) || (n.loss > 0 && n.rng.Float64() < n.loss) {
				n.dropped++
				continue
			}
			org := ""
			if src != nil {
				org = src.p.self.Org
			}
			dst.p.Step(m.from, org, m.env, len(m.env.GetPayload()))
			n.collect(dst)
		}
	}
}

// tick advances every live peer by one tick and delivers the traffic.
func (n *simNet) tick() {
	n.now++
	for _, sp := range n.peers {
		if sp != nil && !sp.down {
			sp.p.Tick()
			n.collect(sp)
		}
	}
	n.deliver()
}

func (n *simNet) ticks(k int) {
	for range k {
		n.tick()
	}
}

// inject hands block b to peer i as if from the orderer, then delivers.
func (n *simNet) inject(i int, b *pb.Block) {
	sp := n.peers[i]
	_ = sp.p.InjectBlock(b)
	n.collect(sp)
	n.deliver()
}

// bootstrapAll makes every peer but 0 bootstrap from peer 0.
func (n *simNet) bootstrapAll() {
	p0 := n.peers[0].p
	for _, sp := range n.peers[1:] {
		sp.p.AddBootstrap(comm.Peer{ID: p0.self.ID, Endpoint: p0.self.Endpoint})
		n.collect(sp)
	}
	n.deliver()
}

// seedMembership tells every peer about every other one directly, as if
// each had received a complete membership response: large networks skip
// the convergence phase this way.
func (n *simNet) seedMembership() {
	resp := &pb.MembershipResponse{}
	for _, sp := range n.peers {
		resp.Alive = append(resp.Alive, sp.p.aliveEnvelope())
	}
	env := envelope(&pb.GossipMessage{Content: &pb.GossipMessage_MembershipResponse{MembershipResponse: resp}})
	for _, sp := range n.peers {
		sp.p.Step(n.peers[0].p.self.ID, "", env, 0)
		n.collect(sp)
	}
	n.deliver()
}

// converged reports whether every live peer sees every other live peer.
func (n *simNet) converged() bool {
	live := 0
	for _, sp := range n.peers {
		if !sp.down {
			live++
		}
	}
	for _, sp := range n.peers {
		if !sp.down && len(sp.p.LivePeers()) != live-1 {
			return false
		}
	}
	return true
}

// checkPrefix asserts that every peer committed blocks 0..k-1 in order
// with the chain's hashes (a prefix of the chain: no fork, no reordering).
func checkPrefix(t testing.TB, sp *simPeer, chain []*pb.Block) {
	t.Helper()
	for i, c := range sp.commits {
		if c.Number != uint64(i) {
			t.Fatalf("peer %d: commit #%d is block %d: out of order", sp.idx, i, c.Number)
		}
		if !bytes.Equal(c.Hash, ledger.HeaderHash(chain[i])) {
			t.Fatalf("peer %d: block %d hash %x, want %x: fork", sp.idx, i, c.Hash, ledger.HeaderHash(chain[i]))
		}
	}
	if got := sp.led.Height(); got != uint64(len(sp.commits)) {
		t.Fatalf("peer %d: ledger height %d, %d commits", sp.idx, got, len(sp.commits))
	}
}

// recTracer records the events tests assert on.
type recTracer struct {
	NopTracer
	accepted  map[uint64]int // block -> copies accepted (0 or 1 per peer)
	dups      map[uint64]int // block -> duplicate copies received
	forwarded map[uint64]int
	rejected  []error
	dead      map[identity.PKIID]int
	alive     map[identity.PKIID]uint64 // last incarnation admitted
	readmits  int
	penalised map[identity.PKIID]int
	banned    map[identity.PKIID]bool
	leaders   int
	grafts    []tracedGraft
}

// tracedGraft is one GraftSent event.
type tracedGraft struct {
	to               identity.PKIID
	number           uint64
	repeat, reshapes bool
}

func newRecTracer() *recTracer {
	return &recTracer{accepted: map[uint64]int{}, dups: map[uint64]int{}, forwarded: map[uint64]int{}, dead: map[identity.PKIID]int{},
		alive: map[identity.PKIID]uint64{}, penalised: map[identity.PKIID]int{}, banned: map[identity.PKIID]bool{}}
}

func (r *recTracer) BlockAccepted(_ identity.PKIID, n uint64, _ Via, _ uint32) { r.accepted[n]++ }
func (r *recTracer) BlockDuplicate(_ identity.PKIID, n uint64, _ Via)          { r.dups[n]++ }
func (r *recTracer) BlockForwarded(n uint64, _ uint32, _ int)                  { r.forwarded[n]++ }
func (r *recTracer) BlockRejected(_ identity.PKIID, _ uint64, _ Via, err error) {
	r.rejected = append(r.rejected, err)
}
func (r *recTracer) MemberDead(id identity.PKIID) { r.dead[id]++ }
func (r *recTracer) MemberAlive(id identity.PKIID, inc uint64, readmitted bool) {
	r.alive[id] = inc
	if readmitted {
		r.readmits++
	}
}
func (r *recTracer) PeerPenalised(id identity.PKIID, n int, banned bool) {
	r.penalised[id]++
	if banned {
		r.banned[id] = true
	}
}
func (r *recTracer) LeaderChanged(identity.PKIID, bool) { r.leaders++ }
func (r *recTracer) GraftSent(to identity.PKIID, n uint64, repeat, reshapes bool) {
	r.grafts = append(r.grafts, tracedGraft{to, n, repeat, reshapes})
}

func peerOf(sp *simPeer) comm.Peer { return comm.Peer{ID: sp.p.self.ID, Endpoint: sp.p.self.Endpoint} }
