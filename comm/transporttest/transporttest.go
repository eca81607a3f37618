// Package transporttest is the contract every comm.Transport passes: the
// in-memory network (comm/memnet) and the gRPC transport (comm) run the
// same suite through a Factory, so protocol code tested on one behaves the
// same on the other.
package transporttest

import (
	"context"
	"fmt"
	"testing"
	"time"

	"github.com/stretchr/testify/require"
	"go.uber.org/goleak"
	"google.golang.org/protobuf/proto"

	"github.com/blockgossip/blockgossip/comm"
	pb "github.com/blockgossip/blockgossip/protos"
)

// Member is one transport of a test network.
type Member struct {
	T        comm.Transport
	Endpoint string // where others can Connect to it
	Org      string // its organisation, as Messages and Events must say
}

// Network is what a Factory builds.
type Network struct {
	Members []Member
	// Counts sums, over all members, the envelopes handed to Incoming and
	// the envelopes dropped or lost anywhere (sender or receiver side).
	Counts func() (received, dropped uint64)
	// Close closes every transport and whatever else the factory started
	// (servers, listeners); afterwards no goroutine of theirs may remain.
	Close func()
}

// Options shape the network a Factory builds.
type Options struct {
	// RecvQueue is each member's Incoming capacity; 0 means the default.
	RecvQueue int
}

// Factory builds a network of n members that can reach each other.
type Factory func(t *testing.T, n int, opt Options) *Network

// wait bounds how long a test waits for an asynchronous transport: a
// watchdog against hangs, not a pacing delay.
const wait = 20 * time.Second

// Run runs the contract suite.
func Run(t *testing.T, f Factory) {
	t.Run("SendReceive", func(t *testing.T) { testSendReceive(t, f) })
	t.Run("UpDownEvents", func(t *testing.T) { testUpDown(t, f) })
	t.Run("ConnectLearnsPKIID", func(t *testing.T) { testConnect(t, f) })
	t.Run("FullQueueDropsAndCounts", func(t *testing.T) { testQueueFull(t, f) })
	t.Run("CloseLeavesNoGoroutine", func(t *testing.T) { testClose(t, f) })
}

func build(t *testing.T, f Factory, n int, opt Options) *Network {
	nw := f(t, n, opt)
	t.Cleanup(nw.Close)
	return nw
}

// Env makes a tagged envelope: a well-formed GossipMessage (a PullHello
// carrying i as its nonce), as any transport must accept.
func Env(i int) *pb.Envelope {
	payload, err := proto.Marshal(&pb.GossipMessage{Content: &pb.GossipMessage_PullHello{PullHello: &pb.PullHello{Nonce: uint64(i)}}})
	if err != nil {
		panic(err)
	}
	return &pb.Envelope{Payload: payload, Signature: []byte(fmt.Sprintf("sig-%d", i))}
}

// Tag returns the i Env put in an envelope.
func Tag(t testing.TB, env *pb.Envelope) int {
	t.Helper()
	msg := new(pb.GossipMessage)
	require.NoError(t, proto.Unmarshal(env.GetPayload(), msg))
	return int(msg.GetPullHello().GetNonce())
}

// Recv waits for the next envelope at tr.
func Recv(t testing.TB, tr comm.Transport) comm.Message {
	t.Helper()
	select {
	case m := <-tr.Incoming():
		return m
	case <-time.After(wait):
		t.Fatalf("no envelope within %v", wait)
		return comm.Message{}
	}
}

// NextEvent waits for the next event at tr.
func NextEvent(t testing.TB, tr comm.Transport) comm.Event {
	t.Helper()
	select {
	case ev := <-tr.Events():
		return ev
	case <-time.After(wait):
		t.Fatalf("no event within %v", wait)
		return comm.Event{}
	}
}

func peerOf(m Member) comm.Peer { return comm.Peer{ID: m.T.Self(), Endpoint: m.Endpoint} }

func testSendReceive(t *testing.T, f Factory) {
	nw := build(t, f, 3, Options{})
	a, b, c := nw.Members[0], nw.Members[1], nw.Members[2]
	const n = 50
	for i := range n {
		require.NoError(t, a.T.Send(peerOf(b), Env(i)))
		require.NoError(t, c.T.Send(peerOf(b), Env(1000+i)))
	}
	var fromA, fromC []int
	for range 2 * n {
		m := Recv(t, b.T)
		require.Equal(t, proto.Size(m.Env), m.Size)
		switch m.From {
		case a.T.Self():
			require.Equal(t, a.Org, m.Org)
			require.NotEmpty(t, m.Cert)
			fromA = append(fromA, Tag(t, m.Env))
		case c.T.Self():
			require.Equal(t, c.Org, m.Org)
			fromC = append(fromC, Tag(t, m.Env))
		default:
			t.Fatalf("envelope from a stranger %v", m.From)
		}
	}
	for i := range n {
		require.Equal(t, i, fromA[i], "one sender's envelopes arrive in order")
		require.Equal(t, 1000+i, fromC[i])
	}
	require.Equal(t, "sig-7", string(Env(7).Signature))
}

func testUpDown(t *testing.T, f Factory) {
	nw := build(t, f, 2, Options{})
	a, b := nw.Members[0], nw.Members[1]
	require.NoError(t, a.T.Send(peerOf(b), Env(1)))
	require.Equal(t, comm.Event{Peer: b.T.Self(), Org: b.Org, Up: true}, NextEvent(t, a.T))
	require.Equal(t, comm.Event{Peer: a.T.Self(), Org: a.Org, Up: true}, NextEvent(t, b.T))
	Recv(t, b.T)

	a.T.Disconnect(b.T.Self())
	require.Equal(t, comm.Event{Peer: b.T.Self(), Org: b.Org, Broken: true}, NextEvent(t, a.T))
	RequireDown(t, comm.Event{Peer: a.T.Self(), Org: a.Org}, NextEvent(t, b.T))

	// The next exchange brings the connection back up; closing one end
	// takes it down at the other.
	require.NoError(t, b.T.Send(peerOf(a), Env(2)))
	require.Equal(t, comm.Event{Peer: a.T.Self(), Org: a.Org, Up: true}, NextEvent(t, b.T))
	require.Equal(t, comm.Event{Peer: b.T.Self(), Org: b.Org, Up: true}, NextEvent(t, a.T))
	require.Equal(t, 2, Tag(t, Recv(t, a.T).Env))
	require.NoError(t, a.T.Close())
	RequireDown(t, comm.Event{Peer: a.T.Self(), Org: a.Org}, NextEvent(t, b.T))
}

// RequireDown checks the Down event for a peer that ended the stream on
// purpose (its Disconnect, its Close, a revocation): a deliberate end is
// not a retirement, so it reaches us as a failure (Broken), at once, not as
// a clean end followed, HandshakeTimeout later, by a Down without news.
func RequireDown(t testing.TB, want, got comm.Event) {
	t.Helper()
	want.Broken = true
	require.Equal(t, want, got)
}

func testConnect(t *testing.T, f Factory) {
	nw := build(t, f, 2, Options{})
	a, b := nw.Members[0], nw.Members[1]
	ctx, cancel := context.WithTimeout(context.Background(), wait)
	defer cancel()
	id, err := a.T.Connect(ctx, b.Endpoint)
	require.NoError(t, err)
	require.Equal(t, b.T.Self(), id)
	require.Equal(t, comm.Event{Peer: b.T.Self(), Org: b.Org, Up: true}, NextEvent(t, a.T))
	require.Equal(t, comm.Event{Peer: a.T.Self(), Org: a.Org, Up: true}, NextEvent(t, b.T))
	// Once connected, the endpoint alone addresses the peer.
	require.NoError(t, a.T.Send(comm.Peer{Endpoint: b.Endpoint}, Env(9)))
	m := Recv(t, b.T)
	require.Equal(t, a.T.Self(), m.From)
	require.Equal(t, 9, Tag(t, m.Env))

	_, err = a.T.Connect(ctx, "127.0.0.1:1")
	require.Error(t, err, "nobody there")
	require.ErrorIs(t, a.T.Send(comm.Peer{}, Env(1)), comm.ErrUnknown)
}

func testQueueFull(t *testing.T, f Factory) {
	const capacity, n = 4, 200
	nw := build(t, f, 2, Options{RecvQueue: capacity})
	a, b := nw.Members[0], nw.Members[1]
	for i := range n {
		if err := a.T.Send(peerOf(b), Env(i)); err != nil {
			require.ErrorIs(t, err, comm.ErrQueueFull, "a refused Send is a counted drop")
		}
	}
	require.Eventually(t, func() bool {
		r, d := nw.Counts()
		return r+d == n
	}, wait, time.Millisecond, "every envelope is received or counted as dropped")
	r, d := nw.Counts()
	require.Equal(t, uint64(capacity), r, "b never read: only its queue's worth was handed over")
	require.Equal(t, uint64(n-capacity), d)
	for range capacity {
		Recv(t, b.T)
	}
	// The sender was never blocked and the link still works.
	require.NoError(t, a.T.Send(peerOf(b), Env(n)))
	require.Equal(t, n, Tag(t, Recv(t, b.T).Env))
}

func testClose(t *testing.T, f Factory) {
	before := goleak.IgnoreCurrent()
	nw := f(t, 3, Options{})
	for i, m := range nw.Members {
		next := nw.Members[(i+1)%len(nw.Members)]
		require.NoError(t, m.T.Send(peerOf(next), Env(i)))
	}
	for _, m := range nw.Members {
		Recv(t, m.T)
	}
	nw.Close()
	for _, m := range nw.Members {
		require.NoError(t, m.T.Close(), "Close is idempotent")
		require.ErrorIs(t, m.T.Send(peerOf(nw.Members[0]), Env(0)), comm.ErrClosed)
	}
	goleak.VerifyNone(t, before)
}
