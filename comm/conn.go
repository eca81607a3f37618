package comm

import (
	"errors"
	"io"
	"sync"
	"sync/atomic"
	"time"

	"google.golang.org/grpc"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/status"
	"google.golang.org/protobuf/proto"

	"github.com/blockgossip/blockgossip/identity"
	pb "github.com/blockgossip/blockgossip/protos"
)

// conn is one handshaken stream to a peer, dialled by us (client side) or
// by the peer (server side). A reader goroutine feeds Incoming; a writer
// goroutine drains the peer's queue while the conn is the active one.
type conn struct {
	t      *GRPC
	peer   identity.PKIID
	member *identity.Member
	dialer identity.PKIID // who opened the stream: decides duplicates
	ctr    *counters
	since  time.Time // when it became the active stream

	send      func(*pb.Envelope) error
	recv      func() (*pb.Envelope, error)
	closeSend func() error     // client side only
	cancel    func()           // client side only: ends the stream
	cc        *grpc.ClientConn // client side only: closed by the reader

	stopWrite     chan struct{} // closed to stop the writer (drain or close)
	stopWriteOnce sync.Once
	done          chan struct{} // closed when the conn is finished
	writerDone    chan struct{} // closed when the writer has returned
	closeOnce     sync.Once
	err           error // why it closed, for the server handler's status
	// abort: the conn closes for a reason (err != nil: our Close or
	// Disconnect, a bad message, an expired certificate, a drain gone
	// stale), not as a retirement; the writer does not half-close then,
	// so the peer reads a failed stream (Event.Broken), never a clean end
	// awaiting a replacement that is not coming.
	abort atomic.Bool

	mu     sync.Mutex
	timers []*time.Timer // drain deadline, certificate expiry

	nSent, nRecv atomic.Uint64 // envelopes over this stream, for debug logs
	lastActive   atomic.Int64  // unix nanos of the last envelope either way, for reapIdle

	// Set by reapIdle (t.mu held): retired for being idle, so no stream
	// replaces it, unless Disconnect (which bumps the peer's gen) dropped
	// the queue since.
	reaped  bool
	reapGen uint64
}

func newConn(t *GRPC, mem *identity.Member, dialer identity.PKIID) *conn {
	t.mu.Lock()
	ctr := t.countersLocked(mem.ID)
	t.mu.Unlock()
	return &conn{
		t: t, peer: mem.ID, member: mem, dialer: dialer, ctr: ctr,
		stopWrite:  make(chan struct{}),
		done:       make(chan struct{}),
		writerDone: make(chan struct{}),
	}
}

// drain retires a superseded stream gracefully: stop writing, half-close,
// keep reading until the peer does the same, but no longer than
// HandshakeTimeout.
func (c *conn) drain() {
	c.stopWriting()
	c.after(c.t.cfg.HandshakeTimeout, func() { c.close(errDrainTimeout) })
}

func (c *conn) stopWriting() {
	c.stopWriteOnce.Do(func() { close(c.stopWrite) })
}

// after runs f after d unless the conn closes first.
func (c *conn) after(d time.Duration, f func()) {
	c.mu.Lock()
	defer c.mu.Unlock()
	select {
	case <-c.done:
		return
	default:
	}
	c.timers = append(c.timers, time.AfterFunc(d, f))
}

// watchExpiry re-checks the member when its certificate expires.
func (c *conn) watchExpiry() {
	d := time.Until(c.member.Cert.NotAfter) + time.Second
	c.after(max(d, 0), func() {
		if _, err := c.t.msp.Validate(c.member.CertDER); err != nil {
			c.close(err)
		}
	})
}

// close ends the conn at once; err says why. A nil err means the peer
// half-closed a stream it retired and we read it to the end: the one
// graceful ending, which the server reports with an OK status.
func (c *conn) close(err error) {
	c.closeOnce.Do(func() {
		c.err = err
		c.abort.Store(err != nil) // before the writer can see stopWrite
		c.stopWriting()
		c.mu.Lock()
		close(c.done)
		for _, tm := range c.timers {
			tm.Stop()
		}
		c.mu.Unlock()
		if c.cancel != nil {
			c.cancel()
		}
		c.t.log.Debug("stream closed", "peer", c.peer.String(), "dialer", c.dialer.String(),
			"sent", c.nSent.Load(), "received", c.nRecv.Load(), "err", err)
		c.t.connClosed(c)
	})
}

// touch records traffic on the stream, for reapIdle.
func (c *conn) touch() { c.lastActive.Store(time.Now().UnixNano()) }

// writeLoop sends the peer's queued envelopes until told to stop.
func (c *conn) writeLoop(q chan *pb.Envelope) {
	defer func() {
		close(c.writerDone)
		if c.closeSend != nil && !c.abort.Load() {
			_ = c.closeSend() // half-close: the peer reads to our end
		}
		c.t.writerStopped(c)
	}()
	for {
		select {
		case <-c.stopWrite:
			return
		default:
		}
		select {
		case <-c.stopWrite:
			return
		case env := <-q:
			select {
			case <-c.stopWrite: // retired meanwhile: the next stream sends it
				c.putBack(q, env)
				return
			default:
			}
			if err := c.send(env); err != nil {
				// The stream is ending. Closing it here would cut off what
				// the peer sent before its end, still unread: leave that to
				// the reader, which sees the end too, and keep env for the
				// next stream.
				c.putBack(q, env)
				c.drain()
				return
			}
			c.touch() // before the count: a test that sees the count sees this
			c.ctr.sent(proto.Size(env))
			c.nSent.Add(1)
		}
	}
}

// putBack returns an envelope this writer took but did not send to the
// peer's queue, for the stream that replaces this one. Order is kept per
// stream, not across a switch of streams.
func (c *conn) putBack(q chan *pb.Envelope, env *pb.Envelope) {
	select {
	case q <- env:
	default:
		c.ctr.dropped(proto.Size(env))
	}
}

// readLoop hands the peer's envelopes to Incoming until the stream ends.
// Anything malformed, unknown or oversized ends this stream only.
func (c *conn) readLoop() {
	var err error
	bad := false
	defer func() {
		c.close(err)
		if bad { // counted once the stream is gone, so a count seen means closed
			c.ctr.badStreams.Add(1)
			c.t.log.Warn("closed stream: bad message", "peer", c.peer.String(), "err", err)
		}
		if c.cc != nil {
			_ = c.cc.Close()
		}
	}()
	for {
		var env *pb.Envelope
		env, err = c.recv()
		if err != nil {
			bad = badStreamError(err)
			if errors.Is(err, io.EOF) {
				err = nil
			}
			return
		}
		if err = checkEnvelope(env); err != nil {
			bad = true
			return
		}
		c.touch() // before Incoming: whoever reads env sees this
		size := proto.Size(env)
		select {
		case c.t.incoming <- Message{From: c.peer, Org: c.member.Org, Cert: c.member.CertDER, Env: env, Size: size}:
			c.ctr.received(size)
			c.nRecv.Add(1)
		default:
			c.ctr.dropped(size)
		}
	}
}

// badStreamError tells a peer's protocol violation (oversized or
// undecodable message) from an ordinary end of stream.
func badStreamError(err error) bool {
	switch status.Code(err) {
	case codes.ResourceExhausted, codes.Internal:
		return true
	}
	return false
}

// status is what the server handler returns when the conn ends.
func (c *conn) status() error {
	switch {
	case c.err == nil:
		return nil // drained: the client reads our end as a clean EOF
	case errors.Is(c.err, ErrBadMessage):
		return status.Error(codes.InvalidArgument, c.err.Error())
	case errors.Is(c.err, identity.ErrRevoked), errors.Is(c.err, identity.ErrExpired):
		return status.Error(codes.PermissionDenied, c.err.Error())
	default:
		return status.Error(codes.Unavailable, c.err.Error())
	}
}
