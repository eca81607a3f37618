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
// is running, no endpoint is known or the backoff has not elapsed. t.mu
// held.
func (t *GRPC) maybeDialLocked(p *peerState) {
	if p.active != nil || p.dialing || p.endpoint == "" || time.Now().Before(p.retryAt) {
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
		if !stale && !errors.Is(err, ErrDuplicateStream) {
			p.backoff = min(max(2*p.backoff, t.cfg.BackoffMin), t.cfg.BackoffMax)
			p.retryAt = time.Now().Add(p.backoff)
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
	timer := time.AfterFunc(t.cfg.ConnectTimeout, cancel)
	stream, err := pb.NewGossipClient(cc).Stream(sctx)
	timer.Stop()
	if err != nil {
		return fail(err)
	}
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
	env, err := t.recvWithin(ss.Context(), t.cfg.HandshakeTimeout, ss.Recv)
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
	return c.status()
}
