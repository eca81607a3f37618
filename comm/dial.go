package comm

import (
	"context"
	"errors"
	"fmt"
	"time"

	"google.golang.org/grpc"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/status"

	"github.com/blockgossip/blockgossip/identity"
	pb "github.com/blockgossip/blockgossip/protos"
)

// maybeDialLocked starts dialling the peer unless a stream is up, a dial
// is running or no endpoint is known; within the backoff after a failed
// dial, it schedules the dial for when the backoff ends. t.mu held.
func (t *GRPC) maybeDialLocked(p *peerState) {
	if p.active != nil || p.dialing || p.endpoint == "" {
		return
	}
	if time.Now().Before(p.retryAt) {
		t.scheduleDialLocked(p)
		return
	}
	p.dialing = true
	id, endpoint, gen := p.id, p.endpoint, p.gen
	t.goLocked(func() { t.dialPeer(id, endpoint, gen) })
}

// dialPeer dials a known peer on behalf of Send.
func (t *GRPC) dialPeer(id identity.PKIID, endpoint string, gen uint64) {
	c, err := t.dial(t.ctx, endpoint, id)
	t.mu.Lock()
	p := t.peerLocked(id)
	stale := p.gen != gen
	if !stale {
		p.dialing = false
	}
	if err != nil {
		if !stale {
			t.dialFailedLocked(p, errors.Is(err, ErrDuplicateStream))
		}
		t.mu.Unlock()
		if !errors.Is(err, ErrDuplicateStream) && !errors.Is(err, context.Canceled) {
			t.log.Info("dial failed", "peer", id.String(), "endpoint", endpoint, "err", err)
		}
		return
	}
	t.mu.Unlock()
	if stale { // Disconnect came while we dialled
		c.cancel()
		_ = c.cc.Close()
		return
	}
	t.adopt(c)
}

// dialFailedLocked backs off and, while envelopes wait, schedules the next
// dial. A peer that stays unreachable through the whole backoff range
// costs its queue (counted as dropped): the next Send starts over. A dial
// refused as a duplicate retries soon without growing the backoff: the
// peer's own dial is about to arrive. t.mu held.
func (t *GRPC) dialFailedLocked(p *peerState, duplicate bool) {
	if duplicate {
		p.retryAt = time.Now().Add(t.cfg.BackoffMin)
	} else {
		if p.backoff >= t.cfg.BackoffMax {
			drainQueue(p)
		}
		p.backoff = min(max(2*p.backoff, t.cfg.BackoffMin), t.cfg.BackoffMax)
		p.retryAt = time.Now().Add(p.backoff)
	}
	t.scheduleDialLocked(p)
}

// scheduleDialLocked arranges a dial at p.retryAt if envelopes are waiting
// and nothing else will send them. t.mu held.
func (t *GRPC) scheduleDialLocked(p *peerState) {
	if t.closed || p.retry != nil || p.active != nil || len(p.queue) == 0 || p.endpoint == "" {
		return
	}
	p.retry = time.AfterFunc(max(time.Until(p.retryAt), 0), func() {
		t.mu.Lock()
		defer t.mu.Unlock()
		p.retry = nil
		if !t.closed {
			t.maybeDialLocked(p)
		}
	})
}

// dial opens a stream to endpoint and exchanges handshakes. want, if not
// zero, is the member we mean to reach. ctx aborts the dial only; the
// stream lives until the transport or the conn closes it.
func (t *GRPC) dial(ctx context.Context, endpoint string, want identity.PKIID) (*conn, error) {
	cc, err := grpc.NewClient(endpoint, t.dialOpts...)
	if err != nil {
		return nil, fmt.Errorf("dial %s: %w", endpoint, err)
	}
	sctx, cancel := context.WithCancel(t.ctx)
	stop := context.AfterFunc(ctx, cancel)
	fail := func(err error) (*conn, error) {
		stop()
		cancel()
		_ = cc.Close()
		return nil, fmt.Errorf("dial %s: %w", endpoint, err)
	}
	start := time.Now()
	timer := time.AfterFunc(t.cfg.ConnectTimeout, cancel)
	stream, err := pb.NewGossipClient(cc).Stream(sctx)
	timer.Stop()
	if err != nil {
		return fail(err)
	}
	t.log.Debug("stream open", "endpoint", endpoint, "took", time.Since(start))
	hs, err := makeHandshake(t.self, t.tlsCert, time.Now())
	if err != nil {
		return fail(err)
	}
	if err := stream.Send(hs); err != nil {
		return fail(err)
	}
	env, err := t.recvWithin(sctx, t.cfg.HandshakeTimeout, stream.Recv)
	if err != nil {
		cancel() // unblocks the helper's Recv if it timed out
		if status.Code(err) == codes.AlreadyExists {
			return fail(ErrDuplicateStream)
		}
		return fail(err)
	}
	state, err := tlsState(stream.Context())
	if err != nil {
		return fail(err)
	}
	mem, err := verifyHandshake(t.msp, env, state, want)
	if err != nil {
		t.handshakeFailures.Add(1)
		t.log.Warn("refused peer's handshake", "endpoint", endpoint, "err", err)
		return fail(err)
	}
	if !stop() || sctx.Err() != nil {
		return fail(context.Cause(ctx))
	}
	t.dials.Add(1)
	c := newConn(t, mem, t.self.ID)
	c.send, c.recv, c.closeSend, c.cancel, c.cc = stream.Send, stream.Recv, stream.CloseSend, cancel, cc
	return c, nil
}

// Stream serves a peer's stream: handshake, then the conn's reader and
// writer run until it ends. Implements pb.GossipServer.
func (t *GRPC) Stream(ss pb.Gossip_StreamServer) error {
	t.mu.Lock()
	if t.closed {
		t.mu.Unlock()
		return status.Error(codes.Unavailable, ErrClosed.Error())
	}
	t.wg.Add(1)
	t.mu.Unlock()
	defer t.wg.Done()

	refuse := func(code codes.Code, err error) error {
		t.handshakeFailures.Add(1)
		t.log.Warn("refused stream", "err", err)
		return status.Error(code, err.Error())
	}
	state, err := tlsState(ss.Context())
	if err != nil {
		return refuse(codes.Unauthenticated, err)
	}
	start := time.Now()
	env, err := t.recvWithin(ss.Context(), t.cfg.HandshakeTimeout, ss.Recv)
	t.log.Debug("server got handshake", "took", time.Since(start), "err", err)
	if errors.Is(err, context.Canceled) || errors.Is(err, ErrClosed) {
		return status.Error(codes.Canceled, err.Error()) // the dialler gave up, or we are closing
	}
	if err != nil {
		return refuse(codes.DeadlineExceeded, fmt.Errorf("%w: %w", ErrHandshake, err))
	}
	mem, err := verifyHandshake(t.msp, env, state, identity.PKIID{})
	if err != nil {
		return refuse(codes.PermissionDenied, err)
	}
	if mem.ID == t.self.ID {
		return refuse(codes.InvalidArgument, fmt.Errorf("%w: a stream from ourselves", ErrHandshake))
	}
	hs, err := makeHandshake(t.self, t.tlsCert, time.Now())
	if err != nil {
		return status.Error(codes.Internal, err.Error())
	}
	c := newConn(t, mem, mem.ID)
	c.send, c.recv = ss.Send, ss.Recv
	t.mu.Lock()
	if !t.registerLocked(c) {
		t.mu.Unlock()
		return status.Error(codes.AlreadyExists, ErrDuplicateStream.Error())
	}
	t.mu.Unlock()
	if err := ss.Send(hs); err != nil {
		c.close(err)
		return err
	}
	t.mu.Lock()
	if t.closed {
		t.mu.Unlock()
		c.close(ErrClosed)
		return status.Error(codes.Unavailable, ErrClosed.Error())
	}
	t.startLocked(c, true)
	t.mu.Unlock()
	select {
	case <-c.done:
	case <-ss.Context().Done():
		c.close(ss.Context().Err())
	}
	if c.err == nil {
		// Drained: the peer reads until we return, so let the writer finish
		// the Send it may be in; returning first would discard it unseen.
		timer := time.NewTimer(t.cfg.HandshakeTimeout)
		defer timer.Stop()
		select {
		case <-c.writerDone:
		case <-timer.C:
		}
	}
	return c.status()
}
