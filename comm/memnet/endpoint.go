package memnet

import (
	"context"
	"fmt"
	"time"

	"google.golang.org/protobuf/proto"

	"github.com/blockgossip/blockgossip/comm"
	"github.com/blockgossip/blockgossip/identity"
	pb "github.com/blockgossip/blockgossip/protos"
)

// Endpoint is one member's view of the network; it implements
// comm.Transport. All its state is guarded by the network's lock.
type Endpoint struct {
	net      *Network
	id       identity.PKIID
	endpoint string
	org      string
	cert     []byte
	in       chan comm.Message
	events   chan comm.Event
	dead     bool // crashed or closed: sends nothing, receives nothing
}

var _ comm.Transport = (*Endpoint)(nil)

// Self is the member's PKI-ID.
func (e *Endpoint) Self() identity.PKIID { return e.id }

// Endpoint is the address the member joined with.
func (e *Endpoint) Endpoint() string { return e.endpoint }

// Incoming delivers received envelopes. It is never closed.
func (e *Endpoint) Incoming() <-chan comm.Message { return e.in }

// Events delivers connection up and down events. It is never closed.
func (e *Endpoint) Events() <-chan comm.Event { return e.events }

// Send puts env on the wire to the peer. Like a real network it reports no
// loss: an envelope to an unknown, crashed or partitioned peer, or one the
// link loses, is counted in the sender's Lost and Send returns nil. It
// returns comm.ErrClosed after Crash or Close, and comm.ErrUnknown when
// to names neither a PKI-ID nor an endpoint.
func (e *Endpoint) Send(to comm.Peer, env *pb.Envelope) error {
	n := e.net
	n.mu.Lock()
	defer n.mu.Unlock()
	if e.dead || n.closed {
		return comm.ErrClosed
	}
	size := proto.Size(env)
	st := n.stat(e.id)
	st.Sent.Add(size)
	if to.ID.IsZero() && to.Endpoint == "" {
		st.Lost.Add(size)
		return comm.ErrUnknown
	}
	dst := n.resolveLocked(e, to)
	if dst == nil || dst == e || n.partitionedLocked(e.id, dst.id) {
		st.Lost.Add(size)
		return nil
	}
	gen := n.connectLocked(e, dst)
	ls := n.linkLocked(e.id, dst.id)
	if p := n.lossLocked(e.id, dst.id); p > 0 && ls.rng.Float64() < p {
		st.Lost.Add(size)
		return nil
	}
	if !n.cfg.ShareEnvelopes {
		env = proto.CloneOf(env)
	}
	msg := comm.Message{From: e.id, Org: e.org, Cert: e.cert, Env: env, Size: size}
	var d time.Duration
	if n.cfg.Latency != nil {
		d = n.cfg.Latency(e.id, dst.id, ls.rng)
	}
	if d <= 0 && len(ls.pending) == 0 {
		n.deliverLocked(link{e.id, dst.id}, gen, msg)
		return nil
	}
	now := time.Now()
	at := now.Add(d)
	if at.Before(ls.last) {
		at = ls.last // FIFO per link: never overtake an earlier message
	}
	ls.last = at
	ls.pending = append(ls.pending, delivery{at: at, gen: gen, msg: msg})
	if ls.timer == nil {
		l := link{e.id, dst.id}
		ls.timer = time.AfterFunc(ls.pending[0].at.Sub(now), func() { n.fire(l) })
	}
	return nil
}

// resolveLocked finds the live member to.ID names, or, without an ID, the
// one at to.Endpoint. With both, an existing connection wins; otherwise the
// endpoint must lead to that ID, as a gRPC handshake would insist.
func (n *Network) resolveLocked(from *Endpoint, to comm.Peer) *Endpoint {
	if to.ID.IsZero() {
		return n.members[n.byEndpoint[to.Endpoint]]
	}
	dst, ok := n.members[to.ID]
	if !ok {
		return nil
	}
	if _, connected := n.conns[mkpair(from.id, to.ID)]; connected || to.Endpoint == "" {
		return dst
	}
	if n.byEndpoint[to.Endpoint] != to.ID {
		return nil
	}
	return dst
}

// Connect finds the member at endpoint, connects to it (both ends see Up)
// and returns its PKI-ID.
func (e *Endpoint) Connect(ctx context.Context, endpoint string) (identity.PKIID, error) {
	if err := ctx.Err(); err != nil {
		return identity.PKIID{}, err
	}
	n := e.net
	n.mu.Lock()
	defer n.mu.Unlock()
	if e.dead || n.closed {
		return identity.PKIID{}, comm.ErrClosed
	}
	id, ok := n.byEndpoint[endpoint]
	if !ok || id == e.id {
		return identity.PKIID{}, fmt.Errorf("%w %q", ErrNoEndpoint, endpoint)
	}
	if n.partitionedLocked(e.id, id) {
		return identity.PKIID{}, fmt.Errorf("%w: %q", ErrUnreachable, endpoint)
	}
	n.connectLocked(e, n.members[id])
	return id, nil
}

// Disconnect closes the connection to the peer, if any; both ends see a
// Down event and messages in flight on it are lost.
func (e *Endpoint) Disconnect(id identity.PKIID) {
	n := e.net
	n.mu.Lock()
	defer n.mu.Unlock()
	if !e.dead {
		n.disconnectLocked(mkpair(e.id, id))
	}
}

// Reachable does nothing: the in-memory network connects at once or not
// at all, with no backoff to end.
func (e *Endpoint) Reachable(identity.PKIID) {}

// Close takes the member off the network, like Crash. It is idempotent.
func (e *Endpoint) Close() error {
	n := e.net
	n.mu.Lock()
	defer n.mu.Unlock()
	if !e.dead {
		n.removeLocked(e)
	}
	return nil
}
