package pull

import (
	"bytes"
	"crypto/ed25519"
	"errors"
	"fmt"
	"math/rand/v2"
	"testing"

	"github.com/blockgossip/blockgossip/identity"
	"github.com/blockgossip/blockgossip/ledger"
	pb "github.com/blockgossip/blockgossip/protos"
	"google.golang.org/protobuf/proto"
)

// This file is a small discrete-event harness: N engines, each with an
// in-memory store and a caller that verifies (real ed25519 orderer
// signatures), dedupes and commits in order; a seeded network that
// marshals every message, delivers it one tick later, and drops it on loss
// or across a partition. Push is not simulated: blocks reach the "fed"
// peers directly, and every other peer gets them by pull or state transfer.

// chain is the orderer's output: signed, linked blocks.
type chain struct {
	pub    ed25519.PublicKey
	priv   ed25519.PrivateKey
	blocks []*pb.Block
}

func newChain(seed uint64) *chain {
	var s [32]byte
	s[0] = byte(seed)
	priv := ed25519.NewKeyFromSeed(s[:])
	return &chain{pub: priv.Public().(ed25519.PublicKey), priv: priv}
}

// extend cuts blocks up to number n-1.
func (c *chain) extend(n int) {
	for len(c.blocks) < n {
		num := uint64(len(c.blocks))
		var prev []byte
		if num > 0 {
			prev = ledger.HeaderHash(c.blocks[num-1])
		}
		b := ledger.NewBlock(num, prev, [][]byte{fmt.Appendf(nil, "tx %d", num)}, 0)
		ledger.SignBlock(b, func(h []byte) []byte { return ed25519.Sign(c.priv, h) })
		c.blocks = append(c.blocks, b)
	}
}

// verifier checks orderer signatures, remembering good headers so that a
// run of 50 peers does not verify each block 50 times.
type verifier struct {
	pub ed25519.PublicKey
	ok  map[string]bool
}

func (v *verifier) VerifyBlockSignature(header, sig []byte) error {
	key := string(header) + string(sig)
	if v.ok[key] {
		return nil
	}
	if !ed25519.Verify(v.pub, header, sig) {
		return errors.New("bad signature")
	}
	v.ok[key] = true
	return nil
}

// memStore is a ledger plus reorder buffer; it implements Store.
type memStore struct {
	blocks map[uint64]*pb.Block // committed ([0, height)) and buffered
	height uint64
}

func (s *memStore) Height() uint64     { return s.height }
func (s *memStore) Have(n uint64) bool { return s.blocks[n] != nil }
func (s *memStore) Block(n uint64) (*pb.Block, bool) {
	b := s.blocks[n]
	return b, b != nil
}

// kind is how a simulated peer behaves.
type kind int

const (
	honest   kind = iota
	silent        // advertises a huge height, answers nothing
	emptyish      // advertises a huge height, answers every request empty
	corrupt       // runs an engine, but its store holds forged blocks
)

type simNode struct {
	id    identity.PKIID
	kind  kind
	eng   *Engine
	store *memStore
	cut   int // partition side; messages cross only between equal sides
}

type envelope struct {
	from, to int
	wire     []byte
}

type sim struct {
	t        testing.TB
	rng      *rand.Rand
	chain    *chain
	ver      *verifier
	nodes    []*simNode
	index    map[identity.PKIID]int
	loss     float64
	queue    []envelope
	tick     int
	msgs     int // messages delivered
	bytes    int // bytes delivered
	received map[Via]int
	invalid  int
	// onDeliver, if set, sees every message delivered.
	onDeliver func(from, to int, msg *pb.GossipMessage)
	// drop, if set, sees every message that survived loss and partitions,
	// and loses it by returning true (a test may keep env to resend later).
	drop func(env envelope, msg *pb.GossipMessage) bool
}

func newSim(t testing.TB, seed uint64, n int, cfg Config) *sim {
	s := &sim{t: t, rng: rand.New(rand.NewPCG(seed, 1)), chain: newChain(seed),
		index: make(map[identity.PKIID]int), received: make(map[Via]int)}
	s.ver = &verifier{pub: s.chain.pub, ok: make(map[string]bool)}
	for range n {
		s.addNode(cfg, honest)
	}
	return s
}

func (s *sim) addNode(cfg Config, k kind) *simNode {
	var id identity.PKIID
	id[0], id[1] = byte(len(s.nodes)>>8), byte(len(s.nodes))
	st := &memStore{blocks: make(map[uint64]*pb.Block)}
	eng, err := New(cfg, id, rand.New(rand.NewPCG(s.rng.Uint64(), 2)), st)
	if err != nil {
		s.t.Fatal(err)
	}
	nd := &simNode{id: id, kind: k, eng: eng, store: st}
	s.index[id] = len(s.nodes)
	s.nodes = append(s.nodes, nd)
	return nd
}

// feed gives node i every block the orderer cut so far, as push would.
func (s *sim) feed(i int) {
	nd := s.nodes[i]
	for n := nd.store.height; n < uint64(len(s.chain.blocks)); n++ {
		s.accept(nd, Received{Block: s.chain.blocks[n]})
	}
}

// accept is the caller's pipeline: verify, dedupe, buffer, commit in order
// checking the chain link.
func (s *sim) accept(nd *simNode, r Received) {
	hdr, err := ledger.VerifyBlock(r.Block, s.ver)
	if err != nil {
		s.invalid++
		nd.eng.ReportInvalid(r.From)
		return
	}
	n, st := hdr.GetNumber(), nd.store
	if n < st.height || st.blocks[n] != nil || n >= st.height+nd.eng.cfg.Lookahead {
		return
	}
	st.blocks[n] = r.Block
	before := st.height
	for b := st.blocks[st.height]; b != nil; b = st.blocks[st.height] {
		h, _ := ledger.ParseHeader(b)
		if st.height > 0 && !bytes.Equal(h.GetPreviousHash(), ledger.HeaderHash(st.blocks[st.height-1])) {
			s.t.Fatalf("node %d: block %d does not link", s.index[nd.id], st.height)
		}
		st.height++
	}
	if st.height > before {
		nd.eng.OnCommitted(st.height)
	}
}

func (s *sim) live(i int) []PeerInfo {
	var out []PeerInfo
	for j, nd := range s.nodes {
		if j == i || nd.cut != s.nodes[i].cut {
			continue
		}
		h := nd.store.height
		if nd.kind == silent || nd.kind == emptyish {
			h = 1 << 40
		}
		out = append(out, PeerInfo{ID: nd.id, Height: h})
	}
	return out
}

func (s *sim) send(from int, outs []Out) {
	for _, o := range outs {
		wire, err := proto.Marshal(o.Msg)
		if err != nil {
			s.t.Fatal(err)
		}
		s.queue = append(s.queue, envelope{from, s.index[o.To], wire})
	}
}

// step runs one tick: deliver what was sent last tick, then tick everyone.
func (s *sim) step() {
	s.tick++
	q := s.queue
	s.queue = nil
	for _, env := range q {
		src, dst := s.nodes[env.from], s.nodes[env.to]
		if src.cut != dst.cut || s.rng.Float64() < s.loss {
			continue
		}
		msg := new(pb.GossipMessage)
		if err := proto.Unmarshal(env.wire, msg); err != nil {
			s.t.Fatal(err)
		}
		if s.drop != nil && s.drop(env, msg) {
			continue
		}
		s.msgs++
		s.bytes += len(env.wire)
		if s.onDeliver != nil {
			s.onDeliver(env.from, env.to, msg)
		}
		switch dst.kind {
		case silent:
			continue
		case emptyish:
			if req := msg.GetStateRequest(); req != nil {
				s.send(env.to, []Out{{src.id, &pb.GossipMessage{Content: &pb.GossipMessage_StateResponse{
					StateResponse: &pb.StateResponse{Nonce: req.GetNonce(), Height: 1 << 40}}}}})
			}
			continue
		}
		outs, recv := dst.eng.Step(src.id, msg)
		s.send(env.to, outs)
		for _, r := range recv {
			s.received[r.Via]++
			s.accept(dst, r)
		}
	}
	for i, nd := range s.nodes {
		if nd.kind == honest || nd.kind == corrupt {
			s.send(i, nd.eng.Tick(s.live(i)))
		}
	}
}

// converged reports whether every honest node holds the whole chain.
func (s *sim) converged() bool {
	tip := uint64(len(s.chain.blocks))
	for _, nd := range s.nodes {
		if nd.kind == honest && nd.store.height != tip {
			return false
		}
	}
	return true
}

// runUntilConverged steps until convergence, failing after max ticks, and
// returns the ticks it took.
func (s *sim) runUntilConverged(max int) int {
	start := s.tick
	for !s.converged() {
		if s.tick-start >= max {
			s.t.Fatalf("not converged after %d ticks: heights %v", max, s.heights())
		}
		s.step()
	}
	s.assertIdentical()
	return s.tick - start
}

func (s *sim) heights() []uint64 {
	var hs []uint64
	for _, nd := range s.nodes {
		hs = append(hs, nd.store.height)
	}
	return hs
}

// assertIdentical checks that every honest node committed the orderer's
// chain, block for block.
func (s *sim) assertIdentical() {
	for i, nd := range s.nodes {
		if nd.kind != honest {
			continue
		}
		for n, b := range s.chain.blocks {
			if !bytes.Equal(ledger.HeaderHash(nd.store.blocks[uint64(n)]), ledger.HeaderHash(b)) {
				s.t.Fatalf("node %d block %d differs from the orderer's", i, n)
			}
		}
	}
}
