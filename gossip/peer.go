package gossip

import (
	"errors"
	"fmt"
	"math/rand/v2"

	"github.com/blockgossip/blockgossip/comm"
	"github.com/blockgossip/blockgossip/identity"
	"github.com/blockgossip/blockgossip/ledger"
	pb "github.com/blockgossip/blockgossip/protos"
	"google.golang.org/protobuf/proto"
)

// Out is an envelope the caller must send.
type Out struct {
	To  comm.Peer
	Env *pb.Envelope
}

// Commit reports a block appended to the ledger.
type Commit struct {
	Number uint64
	Hash   []byte
	Via    Via
	// Hops is how many peer-to-peer hops the block made before it reached
	// us (0 when injected here).
	Hops uint32
	// From is the peer whose copy was committed: this peer's own ID when
	// the block was injected here (from the orderer).
	From identity.PKIID
	// CutTimeUnixNano is when the orderer cut the block (from its
	// unsigned metadata: for measurement only).
	CutTimeUnixNano int64
}

// Ready is what a Peer asks its caller to do, accumulated since the last
// call to Peer.Ready.
type Ready struct {
	// Messages to send, in order.
	Messages []Out
	// Commits made, in block order.
	Commits []Commit
	// Disconnect lists penalised peers whose streams should be closed.
	Disconnect []identity.PKIID
	// Reachable lists members just heard of alive again (new, readmitted
	// or restarted): dials to them that back off after failures may try
	// again at once (comm.Transport.Reachable). A restarted member that
	// was also readmitted is listed twice; the second call finds no
	// backoff left to end.
	Reachable []identity.PKIID
}

// PeerDeps is what a Peer needs besides its Config.
type PeerDeps struct {
	Ledger Ledger
	// Verifier checks the orderer's signature on blocks.
	Verifier ledger.BlockVerifier
	Crypto   Crypto
	// Rand drives every random choice; seed it for reproducible runs.
	Rand *rand.Rand
	// Tracer may be nil.
	Tracer Tracer
}

// ErrMissingDep is returned by NewPeer and NewNode when a required
// dependency is nil.
var ErrMissingDep = errors.New("missing dependency")

// Peer is the single-threaded protocol core: membership, push, the block
// pipeline, and the pull and election engines. It has no goroutines, no
// sockets and no clock; it is not safe for concurrent use.
type Peer struct {
	cfg    Config
	self   Self
	rng    *rand.Rand
	ledger Ledger
	orderV ledger.BlockVerifier
	crypto Crypto
	tracer Tracer
	now    uint64 // ticks since start

	membership
	pipeline
	pushState
	engines
	treeState

	out Ready
}

// NewPeer builds a Peer. It sends nothing until it is ticked or bootstrapped.
func NewPeer(cfg Config, self Self, deps PeerDeps) (*Peer, error) {
	if err := cfg.Validate(); err != nil {
		return nil, err
	}
	switch {
	case deps.Ledger == nil:
		return nil, fmt.Errorf("%w: PeerDeps.Ledger", ErrMissingDep)
	case deps.Verifier == nil:
		return nil, fmt.Errorf("%w: PeerDeps.Verifier (the orderer's block verifier)", ErrMissingDep)
	case deps.Crypto == nil:
		return nil, fmt.Errorf("%w: PeerDeps.Crypto", ErrMissingDep)
	case deps.Rand == nil:
		return nil, fmt.Errorf("%w: PeerDeps.Rand", ErrMissingDep)
	case self.ID.IsZero():
		return nil, fmt.Errorf("%w: Self.ID", ErrMissingDep)
	}
	if deps.Tracer == nil {
		deps.Tracer = NopTracer{}
	}
	p := &Peer{
		cfg: cfg, self: self, rng: deps.Rand, ledger: deps.Ledger,
		orderV: deps.Verifier, crypto: deps.Crypto, tracer: deps.Tracer,
	}
	p.membership.init()
	p.aliveDue, p.firstSync = uint64(cfg.AliveInterval), uint64(cfg.AliveInterval)
	if cfg.MaxView == 0 { // see aliveDue and firstSync
		p.aliveDue = 1 + uint64(p.rng.IntN(cfg.AliveInterval))
		p.firstSync += uint64(p.rng.IntN(cfg.AliveInterval))
	}
	p.initTree()
	if err := p.pipeline.init(cfg, deps.Ledger); err != nil {
		return nil, err
	}
	if err := p.initEngines(); err != nil {
		return nil, err
	}
	return p, nil
}

// Ready returns the effects accumulated since the last call and forgets
// them.
func (p *Peer) Ready() Ready {
	r := p.out
	p.out = Ready{}
	return r
}

// Now is the number of ticks since the Peer was created.
func (p *Peer) Now() uint64 { return p.now }

// Self returns this peer's identity as announced.
func (p *Peer) Self() Self { return p.self }

// Tick advances logical time by one tick; the tree's clock moves to the
// tick's first sub-tick (see SubTick).
func (p *Peer) Tick() {
	p.now++
	p.sub = p.now * p.resolution()
	p.tickMembership()
	p.tickPipeline()
	p.tickPush()
	p.tickTree()
	p.tickEngines()
}

// Step handles an envelope received from the authenticated peer from, of
// organisation org; size is its size on the wire. Anything malformed is
// reported to the Tracer and dropped; Step never panics on remote input.
func (p *Peer) Step(from identity.PKIID, org string, env *pb.Envelope, size int) {
	if p.isBanned(from) || env == nil {
		return
	}
	p.heardFrom(from)
	if w, hops, ok := pushedBlock(env.GetPayload()); ok {
		w.stamp = env.GetStamp()
		p.stepBlock(from, w, max(hops, env.GetHops()))
		return
	}
	msg := new(pb.GossipMessage)
	if err := proto.Unmarshal(env.GetPayload(), msg); err != nil {
		p.tracer.MessageRejected(from, fmt.Errorf("%w: %v", ErrMalformed, err))
		return
	}
	switch c := msg.Content.(type) {
	case *pb.GossipMessage_Alive:
		p.handleAlive(from, env, c.Alive, true)
	case *pb.GossipMessage_Heartbeat:
		p.handleHeartbeat(from, env, c.Heartbeat, true, 0)
	case *pb.GossipMessage_MembershipBatch:
		p.handleMembershipBatch(from, c.MembershipBatch)
	case *pb.GossipMessage_MembershipRequest:
		p.handleMembershipRequest(from, c.MembershipRequest)
	case *pb.GossipMessage_MembershipResponse:
		p.handleMembershipResponse(from, c.MembershipResponse)
	case *pb.GossipMessage_Block:
		_ = p.handleBlock(from, c.Block.GetBlock(), wireBlock{stamp: env.GetStamp()}, ViaPush, max(c.Block.GetHops(), env.GetHops(), 1))
	default:
		p.stepOther(from, org, msg)
	}
}

// stepBlock steps a pushed block found in its message's bytes by
// pushedBlock: decoded without a copy, and forwarded and committed as
// those bytes.
func (p *Peer) stepBlock(from identity.PKIID, w wireBlock, hops uint32) {
	var err error
	if w.enc, err = ledger.DecodeEncoded(w.raw); err != nil { // as when proto.Unmarshal refuses a whole message
		p.tracer.MessageRejected(from, fmt.Errorf("%w: %v", ErrMalformed, err))
		return
	}
	_ = p.handleBlock(from, w.enc.Block(), w, ViaPush, max(hops, 1)) // a remote push has made at least one hop
}

// InjectBlock hands the Peer a block from the orderer (the leader's deliver
// client). It goes through the same pipeline as a pushed block and is
// pushed to our org. A nil error means accepted (buffered or committed).
func (p *Peer) InjectBlock(b *pb.Block) error {
	w, err := encodeBlock(b)
	if err != nil { // not a block (nil, say): the pipeline rejects it and says why
		return p.handleBlock(p.self.ID, b, wireBlock{}, ViaOrderer, 0)
	}
	if p.cfg.Tree && p.cfg.CutLagGraft {
		w.stamp = p.sub + 1 // the cut stamp (Config.CutLagGraft)
	}
	return p.handleBlock(p.self.ID, w.enc.Block(), w, ViaOrderer, 0)
}

// send queues env for delivery to id.
func (p *Peer) send(id identity.PKIID, env *pb.Envelope) {
	p.out.Messages = append(p.out.Messages, Out{To: comm.Peer{ID: id, Endpoint: p.endpointOf(id)}, Env: env})
}

// envelope marshals msg into an unsigned envelope.
func envelope(msg *pb.GossipMessage) *pb.Envelope {
	b, err := proto.Marshal(msg)
	if err != nil { // only a message we built ourselves gets here
		panic(fmt.Sprintf("gossip: marshal own message: %v", err))
	}
	return &pb.Envelope{Payload: b}
}

// signedEnvelope marshals msg and signs it with our identity.
func (p *Peer) signedEnvelope(msg *pb.GossipMessage) *pb.Envelope {
	env := envelope(msg)
	env.Signature = p.crypto.Sign(env.Payload)
	return env
}
