package orderer

import (
	"context"
	"net"
	"testing"

	"github.com/blockgossip/blockgossip/comm"
	"github.com/blockgossip/blockgossip/identity"
	"github.com/blockgossip/blockgossip/ledger"
	"go.uber.org/goleak"
	"google.golang.org/grpc"
)

// goleveldb's mpoolDrain goroutine outlives DB.Close by up to a second (it
// waits on time.After before exiting); every other goroutine must be gone.
func TestMain(m *testing.M) {
	goleak.VerifyTestMain(m, goleak.IgnoreTopFunction("github.com/syndtr/goleveldb/leveldb.(*DB).mpoolDrain"))
}

// fixture is a network's crypto material in memory: two peer orgs and the
// orderer org.
type fixture struct {
	b        *identity.Bundle
	msp      *identity.MSP
	verifier identity.OrdererVerifier
}

func newFixture(t testing.TB) *fixture {
	t.Helper()
	b, err := identity.NewBundle(identity.GenerateSpec{Orgs: 2, PeersPerOrg: 1})
	if err != nil {
		t.Fatal(err)
	}
	msp, err := b.MSP()
	if err != nil {
		t.Fatal(err)
	}
	v, err := b.Network.OrdererVerifier()
	if err != nil {
		t.Fatal(err)
	}
	return &fixture{b: b, msp: msp, verifier: v}
}

func (f *fixture) client() *identity.Identity { return f.b.Clients["org1"] }

// openStore opens a LevelDB ledger in dir, closed at the end of the test
// (closing twice is harmless).
func (f *fixture) openStore(t testing.TB, dir string) *ledger.Store {
	t.Helper()
	s, err := ledger.Open(dir, f.verifier)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { s.Close() })
	return s
}

// newOrderer makes an orderer on a fresh LevelDB ledger.
func (f *fixture) newOrderer(t *testing.T, cfg Config) *Orderer {
	t.Helper()
	o, err := New(cfg, f.b.Orderer, f.b.Network, f.openStore(t, t.TempDir()), nil)
	if err != nil {
		t.Fatal(err)
	}
	return o
}

// serve serves o with comm's mutual-TLS server (as `blockgossip orderer
// start` does) on a free 127.0.0.1 port until the test
// ends or stop is called.
func (f *fixture) serve(t *testing.T, o *Orderer) (addr string, stop func()) {
	t.Helper()
	lis, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	s := comm.NewServer(comm.DefaultConfig(), f.b.Orderer, f.msp)
	o.Register(s)
	done := make(chan struct{})
	go func() { defer close(done); s.Serve(lis) }()
	stop = func() { s.Stop(); <-done }
	t.Cleanup(stop)
	return lis.Addr().String(), stop
}

// dialOpts are the client side of mutual TLS for id, as every blockgossip
// client dials.
func (f *fixture) dialOpts(id *identity.Identity, m *identity.MSP) []grpc.DialOption {
	return comm.DialOptions(comm.DefaultConfig(), id, m)
}

func (f *fixture) dial(t *testing.T, id *identity.Identity, addr string) *grpc.ClientConn {
	t.Helper()
	conn, err := grpc.NewClient(addr, f.dialOpts(id, f.msp)...)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { conn.Close() })
	return conn
}

// run runs o's cutter until the test ends or stop is called; stop returns
// Run's error.
func run(t *testing.T, o *Orderer) (stop func() error) {
	t.Helper()
	ctx, cancel := context.WithCancel(context.Background())
	errc := make(chan error, 1)
	go func() { errc <- o.Run(ctx) }()
	var err error
	stopped := false
	stop = func() error {
		if !stopped {
			cancel()
			err, stopped = <-errc, true
		}
		return err
	}
	t.Cleanup(func() { stop() })
	return stop
}
