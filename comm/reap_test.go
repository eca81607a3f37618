package comm_test

import (
	"context"
	"errors"
	"net"
	"runtime"
	"strings"
	"testing"
	"time"

	"github.com/stretchr/testify/require"

	"github.com/blockgossip/blockgossip/comm"
	"github.com/blockgossip/blockgossip/comm/transporttest"
	"github.com/blockgossip/blockgossip/identity"
	pb "github.com/blockgossip/blockgossip/protos"
)

// The reaper's tests drive ReapIdle with a clock of their own: the
// transport's own reaper would wait a real IdleTimeout (a minute by
// default) before touching any of these streams.

// idlePair returns a and b joined by one stream a dialled, both having
// seen Up, and a's envelope on it counted as sent.
func idlePair(t *testing.T, pn *peerNet, cfg *comm.Config) (a, b *gnode) {
	t.Helper()
	a, b = pn.node(0, cfg), pn.node(1, cfg)
	ping(t, a, b, 0)
	require.True(t, transporttest.NextEvent(t, a.tr).Up)
	require.True(t, transporttest.NextEvent(t, b.tr).Up)
	sentTo(t, a, b, 1)
	dialer, up := a.tr.ActiveDialer(b.id.ID)
	require.True(t, up)
	require.Equal(t, a.id.ID, dialer)
	return a, b
}

// sentTo waits until from's writer has counted n envelopes sent to to:
// what it wrote before is then on record as the stream's last activity.
func sentTo(t *testing.T, from, to *gnode, n uint64) {
	t.Helper()
	require.Eventually(t, func() bool { return from.tr.Stats().Peers[to.id.ID].Sent.Msgs >= n },
		20*time.Second, time.Millisecond)
}

// recvWithin waits at most d for the next envelope at to and checks it is
// tag from from.
func recvWithin(t *testing.T, d time.Duration, from, to *gnode, tag int, why string) {
	t.Helper()
	select {
	case m := <-to.tr.Incoming():
		require.Equal(t, from.id.ID, m.From)
		require.Equal(t, tag, transporttest.Tag(t, m.Env))
	case <-time.After(d):
		t.Fatalf("envelope %d not delivered within %v %s", tag, d, why)
	}
}

// TestIdleStreamIsReapedByItsDialler: past IdleTimeout without traffic,
// the dialler retires the stream, reports the peer Down at once and no
// longer counts the stream as active; the next envelope from either side
// opens a new stream (Up) and arrives.
func TestIdleStreamIsReapedByItsDialler(t *testing.T) {
	for _, first := range []string{"dialler", "server"} {
		t.Run(first+" sends first", func(t *testing.T) {
			noLeaks(t)
			pn := newPeerNet(t)
			cfg := comm.DefaultConfig()
			a, b := idlePair(t, pn, &cfg)
			require.Zero(t, a.tr.ReapIdle(time.Now()), "a stream just used is not idle")

			require.Equal(t, 1, a.tr.ReapIdle(time.Now().Add(cfg.IdleTimeout)))
			_, up := a.tr.ActiveDialer(b.id.ID)
			require.False(t, up, "a reaped stream stops being the active one at once")
			require.Equal(t, comm.Event{Peer: b.id.ID, Org: "org2"}, transporttest.NextEvent(t, a.tr), "Down, not Broken: retired for idleness, the peer is fine")
			require.Equal(t, uint64(1), a.tr.Stats().StreamsReaped)
			require.Zero(t, a.tr.ReapIdle(time.Now().Add(cfg.IdleTimeout)), "reaped once")

			if first == "server" {
				ping(t, b, a, 1)
				ping(t, a, b, 2)
			} else {
				ping(t, a, b, 1)
				ping(t, b, a, 2)
			}
			require.Equal(t, comm.Event{Peer: b.id.ID, Org: "org2", Up: true}, transporttest.NextEvent(t, a.tr))
			_, up = a.tr.ActiveDialer(b.id.ID)
			require.True(t, up)
			// The old stream drains away; one is left.
			require.Eventually(t, func() bool { return a.tr.Streams() == 1 && b.tr.Streams() == 1 }, 20*time.Second, time.Millisecond)
			st := a.tr.Stats()
			require.Zero(t, st.Total.Dropped.Msgs+b.tr.Stats().Total.Dropped.Msgs)
		})
	}
}

// TestTrafficEitherWayKeepsAStream: an envelope received, or one sent,
// since a moment restarts the stream's idle time from there.
func TestTrafficEitherWayKeepsAStream(t *testing.T) {
	pn := newPeerNet(t)
	cfg := comm.DefaultConfig()
	a, b := idlePair(t, pn, &cfg)

	mark := time.Now()
	ping(t, b, a, 1) // a's reader sees it
	require.Zero(t, a.tr.ReapIdle(mark.Add(cfg.IdleTimeout)), "an envelope received restarts the idle time")

	mark = time.Now()
	ping(t, a, b, 2) // a's writer sends it
	sentTo(t, a, b, 2)
	require.Zero(t, a.tr.ReapIdle(mark.Add(cfg.IdleTimeout)), "an envelope sent restarts the idle time")

	require.Equal(t, 1, a.tr.ReapIdle(time.Now().Add(cfg.IdleTimeout)))
}

// TestNewStreamIsNotIdle: a stream's idle time starts when it comes up,
// not at its first envelope.
func TestNewStreamIsNotIdle(t *testing.T) {
	pn := newPeerNet(t)
	cfg := comm.DefaultConfig()
	a, b := pn.node(0, &cfg), pn.node(1, &cfg)
	ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
	defer cancel()
	_, err := a.tr.Connect(ctx, b.addr)
	require.NoError(t, err)
	require.Zero(t, a.tr.ReapIdle(time.Now().Add(cfg.IdleTimeout/2)))
	require.Equal(t, 1, a.tr.ReapIdle(time.Now().Add(cfg.IdleTimeout)))
}

// TestOnlyTheDiallerReaps: the end that accepted a stream keeps it however
// long it stays idle, so the two ends never retire it at once.
func TestOnlyTheDiallerReaps(t *testing.T) {
	pn := newPeerNet(t)
	cfg := comm.DefaultConfig()
	a, b := idlePair(t, pn, &cfg)
	require.Zero(t, b.tr.ReapIdle(time.Now().Add(100*cfg.IdleTimeout)))
	dialer, up := b.tr.ActiveDialer(a.id.ID)
	require.True(t, up)
	require.Equal(t, a.id.ID, dialer)
	require.Zero(t, b.tr.Stats().StreamsReaped)
}

// muteGossip completes the handshake as id, then never reads again, so
// that a sender's window closes and its queue fills.
type muteGossip struct {
	pb.UnimplementedGossipServer
	id *identity.Identity
}

func (m muteGossip) Stream(ss pb.Gossip_StreamServer) error {
	if _, err := ss.Recv(); err != nil {
		return err
	}
	hs, err := comm.MakeHandshake(m.id, m.id.CertDER)
	if err != nil {
		return err
	}
	if err := ss.Send(hs); err != nil {
		return err
	}
	<-ss.Context().Done()
	return nil
}

// TestPeerWithQueuedEnvelopesIsNotReaped: envelopes waiting for a peer
// whose stream sent nothing lately (its window is shut) keep the stream:
// reaping it would only dial again for them.
func TestPeerWithQueuedEnvelopesIsNotReaped(t *testing.T) {
	pn := newPeerNet(t)
	cfg := comm.DefaultConfig()
	cfg.WindowBytes = 64 << 10
	a := pn.node(0, &cfg)
	mute := pn.ident(1)
	srv := comm.NewServer(cfg, mute, pn.msp())
	pb.RegisterGossipServer(srv, muteGossip{id: mute})
	lis, err := net.Listen("tcp", "127.0.0.1:0")
	require.NoError(t, err)
	served := make(chan struct{})
	go func() { defer close(served); _ = srv.Serve(lis) }()
	t.Cleanup(func() { srv.Stop(); <-served })

	// At most a window and a write quota of these (64 KiB each) leave the
	// queue: most of the 40 stay in it.
	big := &pb.Envelope{Payload: transporttest.Env(0).Payload, Signature: make([]byte, 64<<10)}
	to := comm.Peer{ID: mute.ID, Endpoint: lis.Addr().String()}
	for range 40 {
		require.NoError(t, a.tr.Send(to, big))
	}
	require.True(t, transporttest.NextEvent(t, a.tr).Up)
	require.Zero(t, a.tr.ReapIdle(time.Now().Add(100*cfg.IdleTimeout)))
	_, up := a.tr.ActiveDialer(mute.ID)
	require.True(t, up)
}

// TestSendRacingAReapIsDeliveredPromptly: envelopes sent both ways just
// before, during and just after the dialler reaps the stream all arrive,
// and without waiting HandshakeTimeout (30 s here) for the drained
// stream's end or a deferred Down.
func TestSendRacingAReapIsDeliveredPromptly(t *testing.T) {
	pn := newPeerNet(t)
	cfg := comm.DefaultConfig()
	cfg.HandshakeTimeout = 30 * time.Second
	a, b := idlePair(t, pn, &cfg)
	const rounds, bound = 100, 5 * time.Second
	why := "of a reap: held back by the drained stream (HandshakeTimeout is 30 s)"
	reaps := 0
	// settled: no stream is draining; up: one stream, active at both ends.
	settled := func() (ok, up bool, dialer identity.PKIID) {
		da, okA := a.tr.ActiveDialer(b.id.ID)
		db, okB := b.tr.ActiveDialer(a.id.ID)
		na, nb := a.tr.Streams(), b.tr.Streams()
		up = okA && okB && da == db && na == 1 && nb == 1
		return up || !okA && !okB && na == 0 && nb == 0, up, da
	}
	var dialer identity.PKIID
	for i := 1; i <= rounds; i++ {
		// The last round's reaped stream has drained away, leaving a new
		// one or, if all went out on the old one, none. A ping brings one
		// up; its dialler reaps it.
		require.Eventually(t, func() bool { ok, _, _ := settled(); return ok }, 20*time.Second, time.Millisecond)
		require.NoError(t, a.tr.Send(b.peer(), transporttest.Env(2000+i)))
		recvWithin(t, bound, a, b, 2000+i, "on a settled link")
		require.Eventually(t, func() bool {
			_, up, d := settled()
			dialer = d
			return up
		}, 20*time.Second, time.Millisecond)
		reaper := a
		if dialer == b.id.ID {
			reaper = b
		}
		far := time.Now().Add(cfg.IdleTimeout)
		send := func() error {
			return errors.Join(a.tr.Send(b.peer(), transporttest.Env(i)), b.tr.Send(a.peer(), transporttest.Env(1000+i)))
		}
		switch i % 3 {
		case 0: // at once
			sent := make(chan error, 1)
			go func() { sent <- send() }()
			reaps += reaper.tr.ReapIdle(far)
			require.NoError(t, <-sent)
		case 1: // just before
			require.NoError(t, send())
			reaps += reaper.tr.ReapIdle(far)
		case 2: // just after
			reaps += reaper.tr.ReapIdle(far)
			require.NoError(t, send())
		}
		recvWithin(t, bound, a, b, i, why)
		recvWithin(t, bound, b, a, 1000+i, why)
	}
	t.Logf("%d of %d rounds reaped the stream", reaps, rounds)
	require.Positive(t, reaps)
	sa, sb := a.tr.Stats(), b.tr.Stats()
	require.Zero(t, sa.Total.Dropped.Msgs+sb.Total.Dropped.Msgs)
	require.Equal(t, uint64(1+2*rounds), sa.Total.Sent.Msgs, "idlePair's ping and two a round")
	require.Equal(t, uint64(rounds), sb.Total.Sent.Msgs)
}

// TestServerOfAReapedStreamSendsWhatItQueuedAtOnce: the peer that
// accepted a stream has envelopes queued for it (its writer is stuck: the
// dialler does not read) when the dialler retires it as a reaper does,
// with a half-close. No other stream is coming, so the peer dials
// for them at once rather than wait HandshakeTimeout (30 s here) for one.
func TestServerOfAReapedStreamSendsWhatItQueuedAtOnce(t *testing.T) {
	pn := newPeerNet(t)
	cfg := comm.DefaultConfig()
	cfg.HandshakeTimeout = 30 * time.Second
	a, b := pn.node(0, &cfg), pn.node(1, &cfg)
	// a's reaping side, by hand, with a window smaller than one envelope.
	small := cfg
	small.WindowBytes = 64 << 10
	rs := openRawWith(t, small, a.id, pn.msp(), b.addr)
	rs.handshake(t, a.id)
	require.True(t, transporttest.NextEvent(t, b.tr).Up)

	// b's writer hands the first to gRPC, then blocks on the second until
	// the stream ends; the rest wait in the queue.
	big := &pb.Envelope{Payload: transporttest.Env(0).Payload, Signature: make([]byte, 256<<10)}
	for range 10 {
		require.NoError(t, b.tr.Send(a.peer(), big))
	}
	sentTo(t, b, a, 1)
	require.NoError(t, rs.CloseSend())
	select {
	case m := <-a.tr.Incoming():
		require.Equal(t, b.id.ID, m.From)
	case <-time.After(5 * time.Second):
		t.Fatal("no queued envelope reached a within 5 s of its half-close (HandshakeTimeout is 30 s)")
	}
	require.True(t, transporttest.NextEvent(t, a.tr).Up, "b dialled a")
}

// TestReaperRunsUntilClose: the transport's own reaper retires an idle
// stream (Down) without being driven, and Close stops it.
func TestReaperRunsUntilClose(t *testing.T) {
	noLeaks(t)
	pn := newPeerNet(t)
	cfg := comm.DefaultConfig()
	cfg.IdleTimeout = 50 * time.Millisecond
	a, b := pn.node(0, &cfg), pn.node(1, &cfg)
	ping(t, a, b, 0)
	require.True(t, transporttest.NextEvent(t, a.tr).Up)
	require.Equal(t, comm.Event{Peer: b.id.ID, Org: "org2"}, transporttest.NextEvent(t, a.tr))
	require.Positive(t, a.tr.Stats().StreamsReaped)
	require.True(t, reaperRunning(), "the reaper runs")
	a.stop()
	b.stop()
	require.False(t, reaperRunning(), "Close waits for the reaper to stop")

	cfg.IdleTimeout = 0
	c := pn.node(0, &cfg)
	require.False(t, reaperRunning(), "IdleTimeout 0 starts no reaper")
	c.stop()
}

// reaperRunning reports whether any transport's reaper goroutine is alive.
func reaperRunning() bool {
	buf := make([]byte, 1<<20)
	for {
		n := runtime.Stack(buf, true)
		if n < len(buf) {
			return strings.Contains(string(buf[:n]), "comm.(*GRPC).reapLoop")
		}
		buf = make([]byte, 2*len(buf))
	}
}

func TestConfigRefusesNegativeIdleTimeout(t *testing.T) {
	cfg := comm.DefaultConfig()
	require.Equal(t, time.Minute, cfg.IdleTimeout)
	cfg.IdleTimeout = 0
	require.NoError(t, cfg.Validate(), "0 disables the reaper")
	cfg.IdleTimeout = -time.Second
	err := cfg.Validate()
	require.ErrorIs(t, err, comm.ErrInvalidConfig)
	require.Contains(t, err.Error(), "IdleTimeout")
	require.Contains(t, err.Error(), "use 0")
}
