package comm_test

import (
	"context"
	"net"
	"sync/atomic"
	"testing"
	"time"

	"github.com/blockgossip/blockgossip/comm"
	"github.com/blockgossip/blockgossip/identity"
	pb "github.com/blockgossip/blockgossip/protos"
	"google.golang.org/grpc"
	"google.golang.org/grpc/credentials"
)

// fakeAdmin answers LedgerInfo with a chain's height.
type fakeAdmin struct {
	pb.UnimplementedAdminServer
	c     *chain
	calls atomic.Int64
}

func (a *fakeAdmin) LedgerInfo(context.Context, *pb.LedgerInfoRequest) (*pb.LedgerInfoResponse, error) {
	a.calls.Add(1)
	a.c.mu.Lock()
	defer a.c.mu.Unlock()
	return &pb.LedgerInfoResponse{Height: uint64(len(a.c.blocks))}, nil
}

// countingListener counts the connections it accepts.
type countingListener struct {
	net.Listener
	accepted atomic.Int64
}

func (l *countingListener) Accept() (net.Conn, error) {
	c, err := l.Listener.Accept()
	if err == nil {
		l.accepted.Add(1)
	}
	return c, err
}

// serveAdmin serves a's LedgerInfo (and no Deliver) over mutual TLS.
func (x *tlsFixture) serveAdmin(t *testing.T, a *fakeAdmin) (string, *countingListener) {
	t.Helper()
	inner, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	lis := &countingListener{Listener: inner}
	s := grpc.NewServer(grpc.Creds(credentials.NewTLS(identity.ServerTLSConfig(x.b.Orderer, x.msp))))
	pb.RegisterAdminServer(s, a)
	done := make(chan struct{})
	go func() { defer close(done); s.Serve(lis) }()
	t.Cleanup(func() { s.Stop(); <-done })
	return inner.Addr().String(), lis
}

// watch runs dc.WatchHeight with a 1 ms wait and returns the reports; it
// stops at the end of the test and checks WatchHeight returned nil.
func watch(t *testing.T, dc *comm.DeliverClient) <-chan uint64 {
	t.Helper()
	got := make(chan uint64, 1000)
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() {
		done <- dc.WatchHeight(ctx, func() time.Duration { return time.Millisecond }, func(h uint64) {
			select {
			case got <- h:
			default:
			}
		})
	}()
	t.Cleanup(func() {
		cancel()
		if err := <-done; err != nil {
			t.Errorf("WatchHeight returned %v after cancel, want nil", err)
		}
	})
	return got
}

func waitHeight(t *testing.T, got <-chan uint64, want uint64) {
	t.Helper()
	deadline := time.After(10 * time.Second)
	for {
		select {
		case h := <-got:
			if h == want {
				return
			}
			if h > want {
				t.Fatalf("probe reported %d, want %d", h, want)
			}
		case <-deadline:
			t.Fatalf("no probe reported height %d within 10 s", want)
		}
	}
}

func TestWatchHeightReportsTheOrderersHeightOverOneConnection(t *testing.T) {
	noLeaks(t)
	x := newTLSFixture(t)
	c := newChain(3)
	a := &fakeAdmin{c: c}
	addr, lis := x.serveAdmin(t, a)
	dc := comm.NewDeliverClient(fastConfig(), []string{addr}, x.dial(x.b.Peers[0]), nil)
	got := watch(t, dc)
	waitHeight(t, got, 3)
	c.add()
	waitHeight(t, got, 4)
	for a.calls.Load() < 20 {
		<-got
	}
	if n := lis.accepted.Load(); n != 1 {
		t.Fatalf("%d probes took %d connections, want 1 kept open", a.calls.Load(), n)
	}
	if s := dc.Stats(); s.Probes < 20 || s.ProbeFails != 0 || s.Streams != 0 || s.Blocks != 0 {
		t.Fatalf("stats %+v: want only answered probes, no Deliver stream", s)
	}
}

func TestWatchHeightFailsOverToTheNextOrderer(t *testing.T) {
	noLeaks(t)
	x := newTLSFixture(t)
	dead := deadAddr(t)
	addr, _ := x.serveAdmin(t, &fakeAdmin{c: newChain(5)})
	dc := comm.NewDeliverClient(fastConfig(), []string{dead, addr}, x.dial(x.b.Peers[0]), nil)
	waitHeight(t, watch(t, dc), 5)
	if s := dc.Stats(); s.ProbeFails == 0 {
		t.Fatalf("stats %+v: the dead endpoint's failure was not counted", s)
	}
}

func TestWatchHeightStopsWhileWaiting(t *testing.T) {
	noLeaks(t)
	dc := comm.NewDeliverClient(fastConfig(), []string{"127.0.0.1:1"}, nil, nil)
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() {
		done <- dc.WatchHeight(ctx, func() time.Duration { return time.Hour }, func(uint64) { t.Error("reported a height") })
	}()
	cancel()
	select {
	case err := <-done:
		if err != nil {
			t.Fatalf("WatchHeight: %v", err)
		}
	case <-time.After(10 * time.Second):
		t.Fatal("WatchHeight did not return on cancel")
	}
	if err := comm.NewDeliverClient(fastConfig(), nil, nil, nil).WatchHeight(context.Background(), nil, nil); err == nil {
		t.Fatal("WatchHeight without endpoints succeeded")
	}
}
