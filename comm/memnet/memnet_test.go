package memnet

import (
	"context"
	"errors"
	"fmt"
	"math/rand/v2"
	"testing"
	"testing/synctest"
	"time"

	"github.com/stretchr/testify/require"
	"go.uber.org/goleak"
	"google.golang.org/protobuf/proto"

	"github.com/blockgossip/blockgossip/comm"
	"github.com/blockgossip/blockgossip/identity"
	pb "github.com/blockgossip/blockgossip/protos"
)

func TestMain(m *testing.M) { goleak.VerifyTestMain(m) }

func pid(i int) identity.PKIID {
	return identity.PKIIDFromCert(fmt.Appendf(nil, "cert-%d", i))
}

func env(i int) *pb.Envelope {
	return &pb.Envelope{Payload: fmt.Appendf(nil, "msg-%d", i)}
}

// join adds n members named peer0..peer(n-1), org "org<i%2>".
func join(t testing.TB, nw *Network, n int) []*Endpoint {
	t.Helper()
	eps := make([]*Endpoint, n)
	for i := range eps {
		e, err := nw.Join(pid(i), fmt.Sprintf("peer%d", i), fmt.Sprintf("org%d", i%2), fmt.Appendf(nil, "cert-%d", i))
		require.NoError(t, err)
		eps[i] = e
	}
	return eps
}

func drain(e *Endpoint) []comm.Message {
	var out []comm.Message
	for {
		select {
		case m := <-e.Incoming():
			out = append(out, m)
		default:
			return out
		}
	}
}

func drainEvents(e *Endpoint) []comm.Event {
	var out []comm.Event
	for {
		select {
		case ev := <-e.Events():
			out = append(out, ev)
		default:
			return out
		}
	}
}

func TestZeroLatencyDeliversInsideSend(t *testing.T) {
	nw := New(DefaultConfig())
	defer nw.Close()
	eps := join(t, nw, 2)
	sent := env(7)
	require.NoError(t, eps[0].Send(comm.Peer{ID: pid(1)}, sent))
	got := drain(eps[1])
	require.Len(t, got, 1)
	m := got[0]
	require.Equal(t, pid(0), m.From)
	require.Equal(t, "org0", m.Org)
	require.Equal(t, []byte("cert-0"), m.Cert)
	require.True(t, proto.Equal(sent, m.Env))
	require.NotSame(t, sent, m.Env, "receivers get a private copy by default")
	require.Equal(t, proto.Size(sent), m.Size)

	st := nw.Stats()
	require.Equal(t, Counter{Msgs: 1, Bytes: uint64(m.Size)}, st.Members[pid(0)].Sent)
	require.Equal(t, Counter{Msgs: 1, Bytes: uint64(m.Size)}, st.Members[pid(1)].Received)
}

func TestLatencyRunsOnTheVirtualClockAndKeepsLinkOrder(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		cfg := DefaultConfig()
		cfg.Latency = Uniform(time.Millisecond, 50*time.Millisecond)
		nw := New(cfg)
		defer nw.Close()
		eps := join(t, nw, 2)
		start := time.Now()
		for i := range 100 {
			require.NoError(t, eps[0].Send(comm.Peer{ID: pid(1)}, env(i)))
		}
		require.Empty(t, drain(eps[1]), "nothing arrives before the latency")
		require.Equal(t, 100, nw.Stats().InFlight)
		var got []comm.Message
		for len(got) < 100 {
			m := <-eps[1].Incoming()
			require.GreaterOrEqual(t, time.Since(start), time.Millisecond)
			got = append(got, m)
		}
		require.LessOrEqual(t, time.Since(start), 50*time.Millisecond)
		for i, m := range got {
			require.Equal(t, fmt.Sprintf("msg-%d", i), string(m.Env.Payload), "per-link FIFO")
		}
		require.Zero(t, nw.Stats().InFlight)
	})
}

func TestTwoRegionsLatency(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		region := map[identity.PKIID]int{pid(0): 0, pid(1): 0, pid(2): 1}
		cfg := DefaultConfig()
		cfg.Latency = TwoRegions(func(id identity.PKIID) int { return region[id] }, 2*time.Millisecond, 80*time.Millisecond)
		nw := New(cfg)
		defer nw.Close()
		eps := join(t, nw, 3)
		start := time.Now()
		require.NoError(t, eps[0].Send(comm.Peer{ID: pid(1)}, env(1)))
		require.NoError(t, eps[0].Send(comm.Peer{ID: pid(2)}, env(2)))
		<-eps[1].Incoming()
		require.Equal(t, 2*time.Millisecond, time.Since(start))
		<-eps[2].Incoming()
		require.Equal(t, 80*time.Millisecond, time.Since(start))
	})
}

// lossRun sends 2000 messages over a lossy network and returns which arrived.
func lossRun(t *testing.T, seed uint64) []string {
	cfg := DefaultConfig()
	cfg.Seed = seed
	cfg.Loss = 0.3
	cfg.QueueSize = 4096
	nw := New(cfg)
	defer nw.Close()
	eps := join(t, nw, 2)
	for i := range 2000 {
		require.NoError(t, eps[0].Send(comm.Peer{ID: pid(1)}, env(i)))
	}
	var got []string
	for _, m := range drain(eps[1]) {
		got = append(got, string(m.Env.Payload))
	}
	st := nw.Stats()
	require.Equal(t, uint64(2000), st.Total.Sent.Msgs)
	require.Equal(t, st.Total.Sent, st.Total.Received.Plus(st.Total.Lost))
	return got
}

func TestLossIsSeededAndReproducible(t *testing.T) {
	a, b := lossRun(t, 42), lossRun(t, 42)
	require.Equal(t, a, b, "same seed and send order, same losses")
	require.NotEqual(t, a, lossRun(t, 43))
	require.InDelta(t, 0.7, float64(len(a))/2000, 0.04, "about 30%% lost")
}

func TestSetLinkLossOverridesDefault(t *testing.T) {
	nw := New(DefaultConfig())
	defer nw.Close()
	eps := join(t, nw, 3)
	nw.SetLinkLoss(pid(0), pid(1), 1)
	for i := range 10 {
		require.NoError(t, eps[0].Send(comm.Peer{ID: pid(1)}, env(i)))
		require.NoError(t, eps[1].Send(comm.Peer{ID: pid(0)}, env(i)))
		require.NoError(t, eps[0].Send(comm.Peer{ID: pid(2)}, env(i)))
	}
	require.Empty(t, drain(eps[0]))
	require.Empty(t, drain(eps[1]))
	require.Len(t, drain(eps[2]), 10)
	require.Equal(t, uint64(10), nw.Stats().Members[pid(0)].Lost.Msgs)
}

func TestFullQueueDropsAndCountsWithoutBlocking(t *testing.T) {
	cfg := DefaultConfig()
	cfg.QueueSize = 4
	nw := New(cfg)
	defer nw.Close()
	eps := join(t, nw, 2)
	for i := range 10 {
		require.NoError(t, eps[0].Send(comm.Peer{ID: pid(1)}, env(i)))
	}
	require.Len(t, drain(eps[1]), 4)
	st := nw.Stats().Members[pid(1)]
	require.Equal(t, uint64(4), st.Received.Msgs)
	require.Equal(t, uint64(6), st.Dropped.Msgs)
}

func TestUpEventsOnFirstExchangeAndConnect(t *testing.T) {
	nw := New(DefaultConfig())
	defer nw.Close()
	eps := join(t, nw, 3)
	require.NoError(t, eps[0].Send(comm.Peer{ID: pid(1)}, env(1)))
	require.NoError(t, eps[0].Send(comm.Peer{ID: pid(1)}, env(2)))
	require.Equal(t, []comm.Event{{Peer: pid(1), Org: "org1", Up: true}}, drainEvents(eps[0]))
	require.Equal(t, []comm.Event{{Peer: pid(0), Org: "org0", Up: true}}, drainEvents(eps[1]))

	id, err := eps[2].Connect(context.Background(), "peer0")
	require.NoError(t, err)
	require.Equal(t, pid(0), id)
	require.Equal(t, []comm.Event{{Peer: pid(0), Org: "org0", Up: true}}, drainEvents(eps[2]))
	require.Equal(t, []comm.Event{{Peer: pid(2), Org: "org0", Up: true}}, drainEvents(eps[0]))

	_, err = eps[2].Connect(context.Background(), "nowhere")
	require.ErrorIs(t, err, ErrNoEndpoint)
}

func TestSendByEndpointOnly(t *testing.T) {
	nw := New(DefaultConfig())
	defer nw.Close()
	eps := join(t, nw, 3)
	require.NoError(t, eps[0].Send(comm.Peer{Endpoint: "peer1"}, env(1)))
	require.Len(t, drain(eps[1]), 1)
	require.ErrorIs(t, eps[0].Send(comm.Peer{}, env(1)), comm.ErrUnknown)
	// An endpoint that leads to another member than the ID named is lost,
	// as a handshake would refuse it...
	require.NoError(t, eps[2].Send(comm.Peer{ID: pid(0), Endpoint: "peer1"}, env(1)))
	require.Empty(t, drain(eps[0]))
	require.Empty(t, drain(eps[1]))
	// ...but an existing connection is used whatever endpoint is named.
	require.NoError(t, eps[1].Send(comm.Peer{ID: pid(0), Endpoint: "stale"}, env(2)))
	require.Len(t, drain(eps[0]), 1)
}

func TestCutAndHeal(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		cfg := DefaultConfig()
		cfg.Latency = Fixed(10 * time.Millisecond)
		nw := New(cfg)
		defer nw.Close()
		eps := join(t, nw, 2)
		require.NoError(t, eps[0].Send(comm.Peer{ID: pid(1)}, env(1)))
		drainEvents(eps[0])
		drainEvents(eps[1])
		nw.Cut(pid(1), pid(0)) // the message in flight dies with the connection
		require.Equal(t, []comm.Event{{Peer: pid(1), Org: "org1", Broken: true}}, drainEvents(eps[0]))
		require.Equal(t, []comm.Event{{Peer: pid(0), Org: "org0", Broken: true}}, drainEvents(eps[1]))
		require.NoError(t, eps[0].Send(comm.Peer{ID: pid(1)}, env(2)))
		_, err := eps[0].Connect(context.Background(), "peer1")
		require.ErrorIs(t, err, ErrUnreachable)
		time.Sleep(time.Second)
		require.Empty(t, drain(eps[1]))
		require.Equal(t, uint64(2), nw.Stats().Members[pid(0)].Lost.Msgs)

		nw.Heal()
		require.NoError(t, eps[0].Send(comm.Peer{ID: pid(1)}, env(3)))
		require.Equal(t, []comm.Event{{Peer: pid(0), Org: "org0", Up: true}}, drainEvents(eps[1]))
		m := <-eps[1].Incoming()
		require.Equal(t, "msg-3", string(m.Env.Payload))
	})
}

func TestIsolate(t *testing.T) {
	nw := New(DefaultConfig())
	defer nw.Close()
	eps := join(t, nw, 3)
	nw.Isolate(pid(2))
	for i := range 2 {
		require.NoError(t, eps[i].Send(comm.Peer{ID: pid(2)}, env(i)))
		require.NoError(t, eps[2].Send(comm.Peer{ID: pid(i)}, env(i)))
	}
	require.NoError(t, eps[0].Send(comm.Peer{ID: pid(1)}, env(9)))
	require.Empty(t, drain(eps[2]))
	require.Len(t, drain(eps[1]), 1)
	require.Empty(t, drain(eps[0]))
}

func TestCrashAndRestart(t *testing.T) {
	nw := New(DefaultConfig())
	defer nw.Close()
	eps := join(t, nw, 3)
	require.NoError(t, eps[0].Send(comm.Peer{ID: pid(1)}, env(1)))
	require.NoError(t, eps[2].Send(comm.Peer{ID: pid(1)}, env(1)))
	drainEvents(eps[0])
	drainEvents(eps[2])
	nw.Crash(pid(1))
	require.Equal(t, []comm.Event{{Peer: pid(1), Org: "org1", Broken: true}}, drainEvents(eps[0]))
	require.Equal(t, []comm.Event{{Peer: pid(1), Org: "org1", Broken: true}}, drainEvents(eps[2]))
	require.ErrorIs(t, eps[1].Send(comm.Peer{ID: pid(0)}, env(1)), comm.ErrClosed)
	require.NoError(t, eps[0].Send(comm.Peer{ID: pid(1)}, env(2)), "lost on the wire, not an error")
	_, err := eps[0].Connect(context.Background(), "peer1")
	require.ErrorIs(t, err, ErrNoEndpoint)

	_, err = nw.Join(pid(0), "other", "org0", nil)
	require.ErrorIs(t, err, ErrDuplicateID)
	restarted, err := nw.Join(pid(1), "peer1", "org1", []byte("cert-1"))
	require.NoError(t, err)
	require.NoError(t, eps[0].Send(comm.Peer{ID: pid(1)}, env(3)))
	got := drain(restarted)
	require.Len(t, got, 1)
	require.Equal(t, "msg-3", string(got[0].Env.Payload))
	require.Equal(t, []comm.Event{{Peer: pid(0), Org: "org0", Up: true}}, drainEvents(restarted))
}

func TestDisconnectLosesInFlight(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		cfg := DefaultConfig()
		cfg.Latency = Fixed(5 * time.Millisecond)
		nw := New(cfg)
		defer nw.Close()
		eps := join(t, nw, 2)
		require.NoError(t, eps[0].Send(comm.Peer{ID: pid(1)}, env(1)))
		eps[1].Disconnect(pid(0))
		synctest.Wait()
		time.Sleep(10 * time.Millisecond)
		require.Empty(t, drain(eps[1]))
		require.Equal(t, []comm.Event{{Peer: pid(1), Org: "org1", Up: true}, {Peer: pid(1), Org: "org1", Broken: true}}, drainEvents(eps[0]))
		st := nw.Stats().Total
		require.Equal(t, st.Sent, st.Lost)
	})
}

// TestConservationUnderChaos drives many members through random sends,
// cuts, crashes and restarts on a lossy, slow network, and checks that
// every envelope is accounted for exactly once.
func TestConservationUnderChaos(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		cfg := DefaultConfig()
		cfg.Loss = 0.1
		cfg.QueueSize = 8
		cfg.Latency = Uniform(0, 20*time.Millisecond)
		nw := New(cfg)
		defer nw.Close()
		const n = 10
		eps := join(t, nw, n)
		rng := rand.New(rand.NewPCG(7, 7))
		for step := range 3000 {
			a, b := rng.IntN(n), rng.IntN(n)
			switch r := rng.IntN(100); {
			case r < 2:
				nw.Cut(pid(a), pid(b))
			case r < 3:
				nw.Heal()
			case r < 4:
				nw.Crash(pid(a))
			case r < 6:
				if e, err := nw.Join(pid(a), fmt.Sprintf("peer%d", a), "org", nil); err == nil {
					eps[a] = e
				}
			case r < 30:
				drain(eps[a])
				drainEvents(eps[a])
			default:
				err := eps[a].Send(comm.Peer{ID: pid(b)}, env(step))
				if err != nil && !errors.Is(err, comm.ErrClosed) {
					t.Fatal(err)
				}
			}
			if step%50 == 0 {
				time.Sleep(time.Duration(rng.IntN(10)) * time.Millisecond)
			}
		}
		time.Sleep(time.Second)
		st := nw.Stats()
		require.Zero(t, st.InFlight)
		tot := st.Total
		require.Equal(t, tot.Sent, tot.Received.Plus(tot.Dropped).Plus(tot.Lost))
		require.NotZero(t, tot.Dropped.Msgs)
		require.NotZero(t, tot.Lost.Msgs)
		require.NotZero(t, tot.Received.Msgs)
	})
}

func TestCloseStopsPendingDeliveries(t *testing.T) {
	cfg := DefaultConfig()
	cfg.Latency = Fixed(time.Hour) // real clock: Close must stop the timer or goleak/timer would linger
	nw := New(cfg)
	eps := join(t, nw, 2)
	require.NoError(t, eps[0].Send(comm.Peer{ID: pid(1)}, env(1)))
	nw.Close()
	nw.Close()
	require.ErrorIs(t, eps[0].Send(comm.Peer{ID: pid(1)}, env(1)), comm.ErrClosed)
	_, err := nw.Join(pid(5), "", "", nil)
	require.ErrorIs(t, err, ErrNetClosed)
}

func TestConfigValidate(t *testing.T) {
	require.NoError(t, DefaultConfig().Validate())
	require.NoError(t, Config{}.Validate())
	require.Error(t, Config{Loss: 1.5}.Validate())
	require.Error(t, Config{Loss: -0.1}.Validate())
	require.Error(t, Config{QueueSize: -1}.Validate())
	require.Error(t, Config{EventQueue: -1}.Validate())
}

func TestJoinValidation(t *testing.T) {
	nw := New(DefaultConfig())
	defer nw.Close()
	_, err := nw.Join(identity.PKIID{}, "x", "", nil)
	require.ErrorIs(t, err, ErrZeroID)
	_, err = nw.Join(pid(1), "x", "", nil)
	require.NoError(t, err)
	_, err = nw.Join(pid(2), "x", "", nil)
	require.ErrorIs(t, err, ErrEndpointInUse)
}
