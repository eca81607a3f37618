package gossip

import (
	"slices"
	"sync"
	"testing"

	"google.golang.org/protobuf/encoding/protowire"
	"google.golang.org/protobuf/proto"
	"google.golang.org/protobuf/reflect/protoreflect"

	"github.com/blockgossip/blockgossip/identity"
	pb "github.com/blockgossip/blockgossip/protos"
)

// Fuzz targets for every decoder of peer input the Peer core runs: alive
// and heartbeat (and membership messages and batches carrying them), pushed blocks, pull digests
// and responses, state-transfer responses. Each feeds the bytes of one
// GossipMessage content, exactly as a member could put them on the wire, to
// a victim that has requests outstanding to the sender (so answers with the
// right nonce reach the deep paths). Contract: no panic; the victim commits
// only a prefix of the real chain, in order; its tables stay bounded.
//
// Run one with a count-capped minimisation, for example
//
//	go test -run X -fuzz '^FuzzStateResponse$' -fuzztime 10m -fuzzminimizetime 50x -parallel 1 ./gossip/
//
// The core iterates maps, so coverage varies a little from run to run and
// many inputs look new; the default 60 s of minimisation for each starved
// a 10-minute run to a few hundred executions.
//
// Alive signatures go through NopCrypto here: the signature check itself is
// identity's MSP (identity.FuzzValidate, comm.FuzzVerifyHandshake); this
// explores what happens after a member is believed.

var (
	fuzzChainOnce sync.Once
	fuzzChainG    []*pb.Block
)

func fuzzChainBlocks() []*pb.Block {
	fuzzChainOnce.Do(func() { fuzzChainG = makeChain(testOrderer, 80, 42) })
	return fuzzChainG
}

// fuzzVictim is a peer at height 5 that knows a sender at height 80 and,
// for a content kind that answers a request,
// has the request outstanding to the sender that this kind answers (a
// hello, a pull request or a state request). Between the two the harness
// passes hellos and digests only, so requests wait.
type fuzzVictim struct {
	net    *simNet
	victim *simPeer
	sender identity.PKIID
	nonces map[string]uint64 // content kind -> a nonce the victim awaits
}

func newFuzzVictim(t testing.TB, kind string) *fuzzVictim {
	chain := fuzzChainBlocks()
	cfg := DefaultConfig()
	if kind != "pull_response" {
		cfg.Pull.StateTransferThreshold = 20 // so that 75 blocks behind means state transfer
	}
	net := newSimNet(t, 1)
	v := net.add(0, "org1", cfg, 1)
	s := net.add(1, "org1", cfg, 1)
	for _, b := range chain {
		net.inject(1, b)
	}
	mine := chain[:5]
	if slices.Contains(serveKinds, kind) {
		mine = chain // it serves: give it something to serve
	}
	for _, b := range mine {
		net.inject(0, b)
	}
	net.seedMembership()
	fv := &fuzzVictim{net: net, victim: v, sender: s.p.self.ID, nonces: map[string]uint64{}}
	net.filter = func(m simMsg) bool {
		if m.from == v.p.self.ID && m.to == fv.sender {
			msg := new(pb.GossipMessage)
			if proto.Unmarshal(m.env.GetPayload(), msg) == nil {
				switch c := msg.Content.(type) {
				case *pb.GossipMessage_PullHello:
					fv.nonces["pull_digest"] = c.PullHello.GetNonce()
				case *pb.GossipMessage_StateRequest:
					if c.StateRequest.GetRange().GetStart() == v.led.Height() {
						fv.nonces["state_response"] = c.StateRequest.GetNonce()
					}
				case *pb.GossipMessage_PullRequest:
					fv.nonces["pull_response"] = c.PullRequest.GetNonce()
				}
			}
		}
		if m.from == fv.sender { // the sender only answers hellos
			msg := new(pb.GossipMessage)
			return proto.Unmarshal(m.env.GetPayload(), msg) == nil && msg.GetPullDigest() != nil
		}
		if m.to == fv.sender { // ... and hears hellos only
			msg := new(pb.GossipMessage)
			return proto.Unmarshal(m.env.GetPayload(), msg) == nil && msg.GetPullHello() != nil
		}
		return true
	}
	// Stop as soon as the request this kind answers is out, so it is fresh.
	for range 3*cfg.AliveInterval + 2*cfg.Pull.PullInterval {
		if _, ok := fv.nonces[kind]; ok || kind == "" {
			break
		}
		net.tick()
	}
	return fv
}

// step wraps inner as content field `kind` of a GossipMessage; with
// patchNonce, a decodable inner message gets the nonce the victim awaits.
func (fv *fuzzVictim) step(t *testing.T, kind string, inner []byte, patchNonce bool) {
	fd := gossipFields.ByName(protoreflect.Name(kind))
	if fd == nil {
		t.Fatalf("no GossipMessage content %q", kind)
	}
	if patchNonce {
		m := fd.Message()
		if nf := m.Fields().ByName("nonce"); nf != nil {
			dyn := new(pb.GossipMessage).ProtoReflect().NewField(fd).Message()
			if proto.Unmarshal(inner, dyn.Interface()) == nil {
				dyn.Set(nf, protoreflect.ValueOfUint64(fv.nonces[kind]))
				if b, err := proto.Marshal(dyn.Interface()); err == nil {
					inner = b
				}
			}
		}
	}
	payload := protowire.AppendTag(nil, fd.Number(), protowire.BytesType)
	payload = protowire.AppendBytes(payload, inner)
	fv.victim.p.Step(fv.sender, "org1", &pb.Envelope{Payload: payload, Signature: []byte("sig")}, len(payload))
	fv.net.collect(fv.victim)
	for range 2 {
		fv.victim.p.Tick()
		fv.net.collect(fv.victim)
	}
	// Whatever the request, the answer to it stays bounded.
	replies, limit := 0, max(fv.victim.p.cfg.Pull.MaxBlocksPerResponse, int(fv.victim.p.cfg.Pull.BatchSize))
	for _, m := range fv.net.queue {
		if m.to != fv.sender {
			continue
		}
		replies++
		msg := new(pb.GossipMessage)
		if err := proto.Unmarshal(m.env.GetPayload(), msg); err != nil {
			t.Fatalf("victim sent an envelope that does not decode: %v", err)
		}
		if n := len(msg.GetPullResponse().GetBlocks()) + len(msg.GetStateResponse().GetBlocks()); n > limit {
			t.Fatalf("one request got %d blocks back, limit %d", n, limit)
		}
	}
	if replies > 16 {
		t.Fatalf("one %s made the victim send %d messages to its sender", kind, replies)
	}
	fv.net.queue = nil // only the silent sender could be listening
	checkPrefix(t, fv.victim, fuzzChainBlocks())
}

var gossipFields = (&pb.GossipMessage{}).ProtoReflect().Descriptor().Fields()

func marshalT(tb testing.TB, m proto.Message) []byte {
	b, err := proto.Marshal(m)
	if err != nil {
		tb.Fatal(err)
	}
	return b
}

func fuzzKind(f *testing.F, kind string, seeds ...proto.Message) {
	newFuzzVictim(f, kind) // fail early if the fixture is broken
	for _, s := range seeds {
		f.Add(marshalT(f, s), true)
		f.Add(marshalT(f, s), false)
	}
	f.Add([]byte{}, false)
	f.Add([]byte{0xff, 0x01}, true)
	f.Fuzz(func(t *testing.T, inner []byte, patchNonce bool) {
		newFuzzVictim(t, kind).step(t, kind, inner, patchNonce)
	})
}

// TestFuzzVictimAwaitsAnswers checks the fixture the fuzzers rely on: the
// victim awaits a digest, a pull response and a state response from the sender, and a true
// state response with the awaited nonce is committed.
func TestFuzzVictimAwaitsAnswers(t *testing.T) {
	for _, k := range []string{"pull_digest", "pull_response", "state_response"} {
		if _, ok := newFuzzVictim(t, k).nonces[k]; !ok {
			t.Fatalf("victim sent the sender no request answered by %s", k)
		}
	}
	fv := newFuzzVictim(t, "state_response")
	c := fuzzChainBlocks()
	fv.step(t, "state_response", marshalT(t, &pb.StateResponse{Blocks: c[5:10], Height: 80}), true)
	if h := fv.victim.led.Height(); h <= 5 {
		t.Fatalf("a true state response with the awaited nonce left the victim at height %d", h)
	}
}

// serveKinds are the requests a peer answers: FuzzServe feeds them to a
// victim holding the whole chain.
var serveKinds = []string{"pull_hello", "pull_request", "state_request", "membership_request", "leadership"}

func FuzzServe(f *testing.F) {
	newFuzzVictim(f, "state_request")
	id := fakeID(1)
	seeds := []proto.Message{
		&pb.PullHello{Nonce: 7},
		&pb.PullRequest{Nonce: 7, Ranges: []*pb.BlockRange{{Start: 0, End: 80}, {Start: 1 << 63, End: 1}}},
		&pb.StateRequest{Nonce: 7, Range: &pb.BlockRange{Start: 3, End: ^uint64(0)}},
		&pb.MembershipRequest{SelfAlive: &pb.Envelope{Payload: []byte{0x12, 0x00}}},
		&pb.MembershipRequest{Want: [][]byte{id[:], {1, 2}, id[:]}},
		&pb.LeadershipMessage{PkiId: id[:], Org: "org1", Declaration: true, Incarnation: 9, LedgerHeight: 1 << 50},
	}
	for i, s := range seeds {
		f.Add(uint8(i), marshalT(f, s))
	}
	f.Fuzz(func(t *testing.T, which uint8, inner []byte) {
		kind := serveKinds[int(which)%len(serveKinds)]
		newFuzzVictim(t, kind).step(t, kind, inner, false)
	})
}

func FuzzAlive(f *testing.F) {
	id := fakeID(9)
	fuzzKind(f, "alive",
		&pb.AliveMessage{Member: &pb.Member{PkiId: id[:], Endpoint: "peer9:7051", Org: "org1"}, Incarnation: 5, Sequence: 1, LedgerHeight: 1 << 62},
		&pb.AliveMessage{Member: &pb.Member{PkiId: []byte{1, 2}, Org: "org2"}},
		&pb.AliveMessage{Member: &pb.Member{PkiId: id[:], Org: "org1"}, Incarnation: 5, Sequence: 9, CertificateOmitted: true,
			ChainElement: make([]byte, chainElemLen), ChainEnd: ^uint64(0)},
	)
}

func FuzzMembershipResponse(f *testing.F) {
	id := fakeID(9)
	alive := marshalT(f, &pb.GossipMessage{Content: &pb.GossipMessage_Alive{Alive: &pb.AliveMessage{
		Member: &pb.Member{PkiId: id[:], Endpoint: "peer9:7051", Org: "org1"}, Incarnation: 2, LedgerHeight: 70}}})
	fuzzKind(f, "membership_response",
		&pb.MembershipResponse{Alive: []*pb.Envelope{{Payload: alive}, {Payload: []byte{0x12, 0x00}}}, Dead: [][]byte{id[:]}},
		&pb.MembershipResponse{Alive: []*pb.Envelope{{Payload: alive}}, Silence: []uint32{1 << 31, 7}, Certificates: [][]byte{{1}, nil, {2}},
			Heartbeats: []*pb.Heartbeat{{PkiId: id[:], Incarnation: 2, Sequence: 1 << 40, Element: make([]byte, chainElemLen)}, {PkiId: []byte{1}}}},
	)
}

// FuzzHeartbeat feeds heartbeats claiming to be the sender's (whose signed
// alive, with its chain, the victim holds) or anyone's: the genuine next
// element, wrong ones, far sequences, other incarnations.
func FuzzHeartbeat(f *testing.F) {
	fv := newFuzzVictim(f, "heartbeat")
	s := fv.net.byID[fv.sender].p
	m := fv.victim.p.members[fv.sender]
	if m == nil || !m.chain.ok {
		f.Fatal("fixture: the victim holds no chain of the sender")
	}
	next := s.chain.element(m.seq + 1)
	far := s.chain.element(s.chain.end)
	fuzzKind(f, "heartbeat",
		&pb.Heartbeat{PkiId: fv.sender[:], Incarnation: m.inc, Sequence: m.seq + 1, Element: next[:], LedgerHeight: 80},
		&pb.Heartbeat{PkiId: fv.sender[:], Incarnation: m.inc, Sequence: s.chain.end, Element: far[:], LedgerHeight: 1 << 63},
		&pb.Heartbeat{PkiId: fv.sender[:], Incarnation: m.inc, Sequence: ^uint64(0), Element: next[:]},
		&pb.Heartbeat{PkiId: fv.sender[:], Incarnation: m.inc + 1, Sequence: 1, Element: next[:8]},
		&pb.Heartbeat{PkiId: fakeID(9).Bytes(), Incarnation: 1, Sequence: 2, Element: next[:]},
	)
}

// FuzzMembershipBatch feeds batches mixing the sender's genuine next
// heartbeat, its alive, and made-up, malformed or far-off items.
func FuzzMembershipBatch(f *testing.F) {
	fv := newFuzzVictim(f, "membership_batch")
	s := fv.net.byID[fv.sender].p
	m := fv.victim.p.members[fv.sender]
	if m == nil || !m.chain.ok {
		f.Fatal("fixture: the victim holds no chain of the sender")
	}
	next := s.chain.element(m.seq + 1)
	id := fakeID(9)
	alive := marshalT(f, &pb.GossipMessage{Content: &pb.GossipMessage_Alive{Alive: &pb.AliveMessage{
		Member: &pb.Member{PkiId: id[:], Endpoint: "peer9:7051", Org: "org1"}, Incarnation: 2, LedgerHeight: 70}}})
	fuzzKind(f, "membership_batch",
		&pb.MembershipBatch{
			Alives:     []*pb.Envelope{s.aliveEnvelope(), {Payload: alive}, {Payload: []byte{0x12, 0x00}}, nil},
			Heartbeats: []*pb.Heartbeat{{PkiId: fv.sender[:], Incarnation: m.inc, Sequence: m.seq + 1, Element: next[:], LedgerHeight: 80}, {PkiId: []byte{1}}},
		},
		&pb.MembershipBatch{Heartbeats: []*pb.Heartbeat{
			{PkiId: id[:], Incarnation: 2, Sequence: 1 << 40, Element: next[:]},
			{PkiId: fv.sender[:], Incarnation: m.inc, Sequence: ^uint64(0), Element: next[:]},
		}},
	)
}

func FuzzBlockPush(f *testing.F) {
	c := fuzzChainBlocks()
	fuzzKind(f, "block",
		&pb.BlockMessage{Block: c[5], Hops: 1},
		&pb.BlockMessage{Block: c[9], Hops: 1 << 31},
		&pb.BlockMessage{Block: &pb.Block{Header: c[5].Header, Data: c[6].Data, Metadata: c[5].Metadata}},
	)
}

func FuzzPullDigest(f *testing.F) {
	fuzzKind(f, "pull_digest",
		&pb.PullDigest{Ranges: []*pb.BlockRange{{Start: 5, End: 40}}},
		&pb.PullDigest{Ranges: []*pb.BlockRange{{Start: 1 << 63, End: 3}, {Start: 0, End: ^uint64(0)}}},
	)
}

func FuzzPullResponse(f *testing.F) {
	c := fuzzChainBlocks()
	fuzzKind(f, "pull_response",
		&pb.PullResponse{Blocks: c[5:9]},
		&pb.PullResponse{Blocks: []*pb.Block{c[7], nil, {Header: []byte{0x08}}}},
	)
}

func FuzzStateResponse(f *testing.F) {
	c := fuzzChainBlocks()
	fuzzKind(f, "state_response",
		&pb.StateResponse{Blocks: c[5:15], Height: 80},
		&pb.StateResponse{Blocks: []*pb.Block{c[5], c[4], c[70]}, Height: 2},
		&pb.StateResponse{Height: ^uint64(0)},
	)
}
