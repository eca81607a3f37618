package comm

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"sync"
	"sync/atomic"
	"time"

	"google.golang.org/grpc"
	"google.golang.org/protobuf/proto"

	"github.com/blockgossip/blockgossip/identity"
	pb "github.com/blockgossip/blockgossip/protos"
)

// GRPC is the Transport over mutual-TLS gRPC: one long-lived bidirectional
// Gossip.Stream per pair of peers, opened by whichever side sends first and
// reused by both. Every new stream starts with a signed handshake in each
// direction that binds the member's identity to the TLS session.
//
// Simultaneous dials from both sides settle on the stream dialled by the
// lower PKI-ID; the other is drained (each side stops writing and reads
// to the end) so that nothing sent on it is lost. Envelopes to one peer
// arrive in order while one stream carries them; when streams switch
// (duplicate dials, reconnects) a few may arrive out of order.
//
// A stream that carries no envelope either way for Config.IdleTimeout is
// retired by the side that dialled it, drained like a duplicate so that
// nothing sent on it is lost; the next envelope either way opens a new one.
//
// Events: Up when the first stream to a peer is established, Down when the
// last one ends; a stream replaced by another raises neither. A stream we
// retire for being idle raises Down at once, and Up comes with the next
// stream; the peer that served it reports Down only if no new stream comes
// within HandshakeTimeout.
type GRPC struct {
	pb.UnimplementedGossipServer

	cfg      Config
	self     *identity.Identity
	msp      *identity.MSP
	log      *slog.Logger
	dialOpts []grpc.DialOption
	tlsCert  []byte // DER certificate we present in TLS sessions
	incoming chan Message
	events   chan Event

	ctx         context.Context // ends at Close: aborts dials and handshakes
	cancel      context.CancelFunc
	wg          sync.WaitGroup // every goroutine the transport starts
	unsubscribe func()

	mu                sync.Mutex
	closed            bool
	peers             map[identity.PKIID]*peerState
	byEndpoint        map[string]identity.PKIID
	conns             map[*conn]struct{} // every live stream, active or draining
	stats             map[identity.PKIID]*counters
	unattributed      counters
	handshakeFailures atomic.Uint64
	eventsDropped     atomic.Uint64
	dials             atomic.Uint64 // streams we dialled through to a handshake
	reapedStreams     atomic.Uint64 // streams we retired for being idle
}

var _ Transport = (*GRPC)(nil)

// peerState is what the transport knows of one remote member.
type peerState struct {
	id        identity.PKIID
	endpoint  string            // where to dial it; empty if never told
	queue     chan *pb.Envelope // outbound; survives reconnects
	active    *conn             // the stream in use, nil if none
	dialing   bool              // a dial goroutine is running
	gen       uint64            // bumped by Disconnect: stale dials are discarded
	backoff   time.Duration     // wait after the last failed dial
	retryAt   time.Time         // no dial before this
	retry     *time.Timer       // a dial scheduled while envelopes wait
	downTimer *time.Timer       // Down deferred while a retired stream's successor comes
	org       string            // from its certificate, once seen
	ctr       *counters
}

// NewGRPC builds the transport of self, admitting peers that msp validates.
// It starts only the idle-stream reaper (unless IdleTimeout is 0), which
// Close stops: streams come from Send, Connect and the server the node
// registers it on (Register). A nil logger discards logs.
func NewGRPC(cfg Config, self *identity.Identity, msp *identity.MSP, logger *slog.Logger) (*GRPC, error) {
	if err := cfg.Validate(); err != nil {
		return nil, err
	}
	if self == nil || msp == nil {
		return nil, errors.New("comm: NewGRPC needs an identity and an MSP")
	}
	if _, err := msp.Validate(self.CertDER); err != nil {
		return nil, fmt.Errorf("comm: our own certificate fails the MSP, peers would refuse us: %w", err)
	}
	if logger == nil {
		logger = slog.New(slog.DiscardHandler)
	}
	tlsCert := self.TLSCertificate()
	if len(tlsCert.Certificate) == 0 {
		return nil, errors.New("comm: identity has no TLS certificate")
	}
	ctx, cancel := context.WithCancel(context.Background())
	t := &GRPC{
		cfg:        cfg,
		self:       self,
		msp:        msp,
		log:        logger.With("component", "comm", "self", self.ID.String()),
		dialOpts:   DialOptions(cfg, self, msp),
		tlsCert:    tlsCert.Certificate[0],
		incoming:   make(chan Message, cfg.RecvQueue),
		events:     make(chan Event, cfg.EventQueue),
		ctx:        ctx,
		cancel:     cancel,
		peers:      make(map[identity.PKIID]*peerState),
		byEndpoint: make(map[string]identity.PKIID),
		conns:      make(map[*conn]struct{}),
		stats:      make(map[identity.PKIID]*counters),
	}
	t.unsubscribe = msp.Subscribe(t.recheck)
	if cfg.IdleTimeout > 0 {
		t.goTracked(t.reapLoop)
	}
	return t, nil
}

// Register registers the Gossip service on a server the node owns
// (normally one from NewServer). Gossip streams last until the transport
// ends them, so close the transport before the server's GracefulStop, or
// GracefulStop waits for them.
func (t *GRPC) Register(s *grpc.Server) { pb.RegisterGossipServer(s, t) }

// Self is this member's PKI-ID.
func (t *GRPC) Self() identity.PKIID { return t.self.ID }

// Incoming delivers received envelopes. It is never closed.
func (t *GRPC) Incoming() <-chan Message { return t.incoming }

// Events delivers connection up and down events. It is never closed.
func (t *GRPC) Events() <-chan Event { return t.events }

// Send queues env for the peer and, if no stream is up, starts dialling
// to.Endpoint (or the endpoint last learned for to.ID) unless the last dial
// failed less than a backoff ago. to.ID may be zero if to.Endpoint was
// learned by Connect. Returns ErrQueueFull, ErrUnknown (no stream and no
// endpoint to dial) or ErrClosed; every refusal is counted as a drop.
func (t *GRPC) Send(to Peer, env *pb.Envelope) error {
	size := proto.Size(env)
	t.mu.Lock()
	defer t.mu.Unlock()
	if t.closed {
		return ErrClosed
	}
	id := to.ID
	if id.IsZero() && to.Endpoint != "" {
		id = t.byEndpoint[to.Endpoint]
	}
	if id.IsZero() || id == t.self.ID {
		t.unattributed.dropped(size)
		return ErrUnknown
	}
	p := t.peerLocked(id)
	if to.Endpoint != "" {
		p.endpoint = to.Endpoint
	}
	if p.active == nil && p.downTimer == nil && p.endpoint == "" {
		p.ctr.dropped(size)
		return ErrUnknown
	}
	select {
	case p.queue <- env:
	default:
		p.ctr.dropped(size)
		return ErrQueueFull
	}
	t.maybeDialLocked(p)
	return nil
}

// Connect dials endpoint, completes the handshake and returns the PKI-ID
// found there; the stream stays up for Send. An endpoint already connected
// answers at once.
func (t *GRPC) Connect(ctx context.Context, endpoint string) (identity.PKIID, error) {
	t.mu.Lock()
	if t.closed {
		t.mu.Unlock()
		return identity.PKIID{}, ErrClosed
	}
	if id, ok := t.byEndpoint[endpoint]; ok && t.peers[id] != nil && t.peers[id].active != nil {
		t.mu.Unlock()
		return id, nil
	}
	t.mu.Unlock()
	c, err := t.dial(ctx, endpoint, identity.PKIID{})
	for errors.Is(err, ErrDuplicateStream) {
		// The peer holds a fresh stream it dialled to us (it may not have
		// reached us yet): ask again once that settles or turns stale.
		select {
		case <-ctx.Done():
			return identity.PKIID{}, ctx.Err()
		case <-t.ctx.Done():
			return identity.PKIID{}, ErrClosed
		case <-time.After(t.cfg.BackoffMin):
		}
		c, err = t.dial(ctx, endpoint, identity.PKIID{})
	}
	if err != nil {
		return identity.PKIID{}, err
	}
	t.mu.Lock()
	t.byEndpoint[endpoint] = c.peer
	t.peerLocked(c.peer).endpoint = endpoint
	t.mu.Unlock()
	t.adopt(c)
	return c.peer, nil
}

// Reachable ends the redial backoff to the peer, and dials it at once if
// envelopes wait for it: the failures that grew the backoff are history
// (a partition healed, the peer restarted). Without it, a peer that had
// been unreachable for a while got the envelopes queued for it only when
// the backoff ran out, up to BackoffMax after it was back: after a 3 s
// partition, 3.2 s later than everyone else (fault suite).
func (t *GRPC) Reachable(id identity.PKIID) {
	t.mu.Lock()
	defer t.mu.Unlock()
	p, ok := t.peers[id]
	if !ok || t.closed || p.backoff == 0 {
		return
	}
	p.backoff, p.retryAt = 0, time.Time{}
	if len(p.queue) > 0 {
		t.maybeDialLocked(p)
	}
}

// Disconnect closes every stream to the peer and discards its queue
// (counted as dropped). The next Send dials again.
func (t *GRPC) Disconnect(id identity.PKIID) {
	t.mu.Lock()
	var victims []*conn
	for c := range t.conns {
		if c.peer == id {
			victims = append(victims, c)
		}
	}
	if p, ok := t.peers[id]; ok {
		p.gen++
		p.dialing = false
		drainQueue(p)
		if p.downTimer != nil { // up as far as anyone knows
			t.downLocked(p, true)
		}
	}
	t.mu.Unlock()
	for _, c := range victims {
		c.close(errDisconnected)
	}
}

// Close stops every goroutine the transport started and closes all
// streams; envelopes still queued are counted as dropped. Idempotent.
func (t *GRPC) Close() error {
	t.mu.Lock()
	if t.closed {
		t.mu.Unlock()
		return nil
	}
	t.closed = true
	for _, p := range t.peers {
		if p.retry != nil {
			p.retry.Stop()
		}
		if p.downTimer != nil {
			p.downTimer.Stop()
		}
	}
	victims := make([]*conn, 0, len(t.conns))
	for c := range t.conns {
		victims = append(victims, c)
	}
	t.mu.Unlock()
	t.unsubscribe()
	t.cancel()
	for _, c := range victims {
		c.close(ErrClosed)
	}
	t.wg.Wait()
	t.mu.Lock()
	for _, p := range t.peers {
		if p.retry != nil {
			p.retry.Stop()
		}
		drainQueue(p)
	}
	t.mu.Unlock()
	return nil
}

// drainQueue empties a peer's queue, counting each envelope as dropped.
func drainQueue(p *peerState) {
	for {
		select {
		case env := <-p.queue:
			p.ctr.dropped(proto.Size(env))
		default:
			return
		}
	}
}

// peerLocked returns the peer's state, creating it. t.mu held.
func (t *GRPC) peerLocked(id identity.PKIID) *peerState {
	p, ok := t.peers[id]
	if !ok {
		p = &peerState{id: id, queue: make(chan *pb.Envelope, t.cfg.SendQueue), ctr: t.countersLocked(id)}
		t.peers[id] = p
	}
	return p
}

// goLocked runs f on a goroutine counted in t.wg. t.mu held, !t.closed.
func (t *GRPC) goLocked(f func()) {
	t.wg.Add(1)
	go func() {
		defer t.wg.Done()
		f()
	}()
}

// goTracked runs f on a goroutine counted in t.wg, unless the transport
// is closed.
func (t *GRPC) goTracked(f func()) bool {
	t.mu.Lock()
	defer t.mu.Unlock()
	if t.closed {
		return false
	}
	t.goLocked(f)
	return true
}

func (t *GRPC) emit(ev Event) {
	select {
	case t.events <- ev:
	default:
		t.eventsDropped.Add(1)
	}
}

// recheck closes the streams of members the MSP no longer accepts
// (revoked or expired). It runs on the MSP's SetRevoked goroutine and when
// a connected member's certificate expires.
func (t *GRPC) recheck() {
	t.mu.Lock()
	live := make([]*conn, 0, len(t.conns))
	for c := range t.conns {
		live = append(live, c)
	}
	t.mu.Unlock()
	for _, c := range live {
		if _, err := t.msp.Validate(c.member.CertDER); err != nil {
			t.log.Warn("closing stream of a member that no longer validates", "peer", c.peer.String(), "err", err)
			c.close(err)
		}
	}
}
