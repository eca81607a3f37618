package comm_test

import (
	"context"
	"crypto/ed25519"
	"errors"
	"log/slog"
	"net"
	"sync"
	"testing"
	"time"

	"github.com/blockgossip/blockgossip/comm"
	"github.com/blockgossip/blockgossip/identity"
	"github.com/blockgossip/blockgossip/ledger"
	pb "github.com/blockgossip/blockgossip/protos"
	"go.uber.org/goleak"
	"google.golang.org/grpc"
	"google.golang.org/grpc/credentials"
)

// chain is a growing chain of signed blocks that several fake orderer
// servers share.
type chain struct {
	key    ed25519.PrivateKey
	mu     sync.Mutex
	blocks []*pb.Block
	notify chan struct{} // closed and replaced on every append
}

func newChain(n int) *chain {
	_, key, _ := ed25519.GenerateKey(nil)
	c := &chain{key: key, notify: make(chan struct{})}
	for range n {
		c.add()
	}
	return c
}

func (c *chain) add() {
	c.mu.Lock()
	defer c.mu.Unlock()
	var prev []byte
	if n := len(c.blocks); n > 0 {
		prev = ledger.HeaderHash(c.blocks[n-1])
	}
	b := ledger.NewBlock(uint64(len(c.blocks)), prev, [][]byte{{byte(len(c.blocks))}}, 0)
	ledger.SignBlock(b, func(h []byte) []byte { return ed25519.Sign(c.key, h) })
	c.blocks = append(c.blocks, b)
	close(c.notify)
	c.notify = make(chan struct{})
}

// fakeOrderer serves a chain's Deliver stream, following new blocks, and
// can misbehave.
type fakeOrderer struct {
	pb.UnimplementedAtomicBroadcastServer
	c *chain
	// resendPrevious sends the block before the start first (a duplicate).
	resendPrevious bool
	// gapAfter skips one block after sending this many (0: never).
	gapAfter int

	mu     sync.Mutex
	starts []uint64 // the start of every Deliver request seen
}

func (f *fakeOrderer) Deliver(req *pb.DeliverRequest, st pb.AtomicBroadcast_DeliverServer) error {
	f.mu.Lock()
	f.starts = append(f.starts, req.GetStart())
	f.mu.Unlock()
	next := req.GetStart()
	if f.resendPrevious && next > 0 {
		next--
	}
	sent := 0
	for {
		f.c.mu.Lock()
		notify, blocks := f.c.notify, f.c.blocks
		f.c.mu.Unlock()
		for ; next < uint64(len(blocks)); next++ {
			if f.gapAfter > 0 && sent == f.gapAfter {
				next++
				sent++
				continue
			}
			if err := st.Send(&pb.DeliverResponse{Block: blocks[next]}); err != nil {
				return err
			}
			sent++
		}
		select {
		case <-notify:
		case <-st.Context().Done():
			return st.Context().Err()
		}
	}
}

func (f *fakeOrderer) seen() []uint64 {
	f.mu.Lock()
	defer f.mu.Unlock()
	return append([]uint64(nil), f.starts...)
}

// noLeaks checks, after every other cleanup of the test has run, that the
// test left no goroutine behind. (comm's TestMain belongs to the transport's
// tests; this check is per test so it holds whatever that one does.)
func noLeaks(t *testing.T) {
	ignore := goleak.IgnoreCurrent()
	t.Cleanup(func() { goleak.VerifyNone(t, ignore) })
}

type tlsFixture struct {
	b   *identity.Bundle
	msp *identity.MSP
}

func newTLSFixture(t *testing.T) *tlsFixture {
	t.Helper()
	b, err := identity.NewBundle(identity.GenerateSpec{Orgs: 1, PeersPerOrg: 1})
	if err != nil {
		t.Fatal(err)
	}
	msp, err := b.MSP()
	if err != nil {
		t.Fatal(err)
	}
	return &tlsFixture{b: b, msp: msp}
}

// serve serves f on addr ("127.0.0.1:0" for a free port) over mutual TLS;
// stop is idempotent and also runs at the end of the test.
func (x *tlsFixture) serve(t *testing.T, addr string, f *fakeOrderer) (string, func()) {
	t.Helper()
	lis, err := net.Listen("tcp", addr)
	if err != nil {
		t.Fatal(err)
	}
	s := grpc.NewServer(grpc.Creds(credentials.NewTLS(identity.ServerTLSConfig(x.b.Orderer, x.msp))))
	pb.RegisterAtomicBroadcastServer(s, f)
	done := make(chan struct{})
	go func() { defer close(done); s.Serve(lis) }()
	var once sync.Once
	stop := func() { once.Do(func() { s.Stop(); <-done }) }
	t.Cleanup(stop)
	return lis.Addr().String(), stop
}

func (x *tlsFixture) dial(id *identity.Identity) []grpc.DialOption {
	return []grpc.DialOption{grpc.WithTransportCredentials(credentials.NewTLS(identity.ClientTLSConfig(id, x.msp)))}
}

// recordHandler passes warnings (one per failed stream) to a channel, so a
// test waits for failures without polling; it drops them if nobody reads.
type recordHandler chan slog.Record

func (h recordHandler) Enabled(_ context.Context, l slog.Level) bool { return l >= slog.LevelWarn }
func (h recordHandler) Handle(_ context.Context, r slog.Record) error {
	select {
	case h <- r:
	default:
	}
	return nil
}
func (h recordHandler) WithAttrs([]slog.Attr) slog.Handler { return h }
func (h recordHandler) WithGroup(string) slog.Handler      { return h }

// deadAddr returns a local address nobody listens on.
func deadAddr(t *testing.T) string {
	t.Helper()
	lis, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer lis.Close()
	return lis.Addr().String()
}

func fastConfig() comm.DeliverConfig {
	cfg := comm.DefaultDeliverConfig()
	cfg.BackoffMin, cfg.BackoffMax = 5*time.Millisecond, 20*time.Millisecond
	return cfg
}

// runClient runs c from height and returns a channel of the delivered
// blocks' numbers; the client stops at the end of the test.
func runClient(t *testing.T, c *comm.DeliverClient, from uint64) <-chan uint64 {
	t.Helper()
	got := make(chan uint64, 100)
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() {
		done <- c.Run(ctx, from, func(b *pb.Block) {
			h, err := ledger.ParseHeader(b)
			if err != nil {
				t.Errorf("delivered a bad block: %v", err)
				return
			}
			got <- h.GetNumber()
		})
	}()
	t.Cleanup(func() {
		cancel()
		if err := <-done; err != nil {
			t.Errorf("Run returned %v after cancel, want nil", err)
		}
	})
	return got
}

func expectBlocks(t *testing.T, got <-chan uint64, from, to uint64) {
	t.Helper()
	for want := from; want <= to; want++ {
		select {
		case n := <-got:
			if n != want {
				t.Fatalf("delivered block %d, want %d", n, want)
			}
		case <-time.After(10 * time.Second):
			t.Fatalf("block %d not delivered within 10 s", want)
		}
	}
}

func TestDeliverClientFromHeightThenFollows(t *testing.T) {
	noLeaks(t)
	x := newTLSFixture(t)
	c := newChain(5)
	f := &fakeOrderer{c: c}
	addr, _ := x.serve(t, "127.0.0.1:0", f)
	got := runClient(t, comm.NewDeliverClient(fastConfig(), []string{addr}, x.dial(x.b.Peers[0]), nil), 2)
	expectBlocks(t, got, 2, 4)
	c.add()
	c.add()
	expectBlocks(t, got, 5, 6)
	if s := f.seen(); len(s) != 1 || s[0] != 2 {
		t.Fatalf("requests %v, want one from 2", s)
	}
}

func TestDeliverClientResumesAfterOrdererRestart(t *testing.T) {
	noLeaks(t)
	x := newTLSFixture(t)
	c := newChain(4)
	f := &fakeOrderer{c: c}
	addr, stop := x.serve(t, "127.0.0.1:0", f)
	dc := comm.NewDeliverClient(fastConfig(), []string{addr}, x.dial(x.b.Peers[0]), nil)
	got := runClient(t, dc, 1)
	expectBlocks(t, got, 1, 3)
	stop()
	c.add() // block 4, cut while the orderer was away
	x.serve(t, addr, f)
	expectBlocks(t, got, 4, 4)
	if s := f.seen(); len(s) < 2 || s[0] != 1 || s[len(s)-1] != 4 {
		t.Fatalf("requests %v, want 1 first and 4 (last delivered + 1) after the restart", s)
	}
	if st := dc.Stats(); st.Failures < 1 || st.Blocks != 4 {
		t.Fatalf("stats %+v", st)
	}
}

func TestDeliverClientFailsOverOnMisbehaviour(t *testing.T) {
	noLeaks(t)
	x := newTLSFixture(t)
	c := newChain(10)
	// The first orderer re-sends a block (skipped) and later leaves a gap
	// (the stream is dropped); the second is honest.
	bad := &fakeOrderer{c: c, resendPrevious: true, gapAfter: 4}
	good := &fakeOrderer{c: c}
	addrBad, _ := x.serve(t, "127.0.0.1:0", bad)
	addrGood, _ := x.serve(t, "127.0.0.1:0", good)
	dc := comm.NewDeliverClient(fastConfig(), []string{addrBad, addrGood}, x.dial(x.b.Peers[0]), nil)
	got := runClient(t, dc, 3)
	expectBlocks(t, got, 3, 9)
	if s := good.seen(); len(s) == 0 || s[0] != 6 {
		t.Fatalf("the honest orderer was asked from %v, want 6 (after 3,4,5 from the other)", s)
	}
	if st := dc.Stats(); st.Duplicates < 1 || st.Failures < 1 {
		t.Fatalf("stats %+v: want the duplicate skipped and the gap counted as a failure", st)
	}
}

func TestDeliverClientSkipsDeadEndpoint(t *testing.T) {
	noLeaks(t)
	x := newTLSFixture(t)
	dead := deadAddr(t)
	addr, _ := x.serve(t, "127.0.0.1:0", &fakeOrderer{c: newChain(3)})
	got := runClient(t, comm.NewDeliverClient(fastConfig(), []string{dead, addr}, x.dial(x.b.Peers[0]), nil), 0)
	expectBlocks(t, got, 0, 2)
}

func TestDeliverClientForeignIdentityGetsNothing(t *testing.T) {
	noLeaks(t)
	x, foreign := newTLSFixture(t), newTLSFixture(t)
	addr, _ := x.serve(t, "127.0.0.1:0", &fakeOrderer{c: newChain(3)})
	// The foreign client trusts our network (so it would accept the
	// server) but its own certificate chains to an unknown CA.
	dial := []grpc.DialOption{grpc.WithTransportCredentials(credentials.NewTLS(identity.ClientTLSConfig(foreign.b.Peers[0], x.msp)))}
	failures := make(chan slog.Record, 100)
	dc := comm.NewDeliverClient(fastConfig(), []string{addr}, dial, slog.New(recordHandler(failures)))
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- dc.Run(ctx, 0, func(*pb.Block) { t.Error("a refused client got a block") }) }()
	for range 3 {
		<-failures
	}
	cancel()
	if err := <-done; err != nil {
		t.Fatalf("Run: %v", err)
	}
}

func TestDeliverClientStopsWhileBackingOff(t *testing.T) {
	noLeaks(t)
	cfg := comm.DefaultDeliverConfig()
	cfg.BackoffMin, cfg.BackoffMax = time.Hour, time.Hour
	failures := make(chan slog.Record, 100)
	dc := comm.NewDeliverClient(cfg, []string{"127.0.0.1:1"},
		[]grpc.DialOption{grpc.WithTransportCredentials(credentials.NewTLS(nil))}, slog.New(recordHandler(failures)))
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- dc.Run(ctx, 0, func(*pb.Block) {}) }()
	<-failures // the first failure: Run is now backing off for an hour
	cancel()
	select {
	case err := <-done:
		if err != nil {
			t.Fatalf("Run: %v", err)
		}
	case <-time.After(10 * time.Second):
		t.Fatal("Run did not return on cancel while backing off")
	}
}

func TestDeliverClientNeedsEndpoints(t *testing.T) {
	dc := comm.NewDeliverClient(comm.DefaultDeliverConfig(), nil, nil, nil)
	if err := dc.Run(context.Background(), 0, func(*pb.Block) {}); err == nil {
		t.Fatal("Run without endpoints succeeded")
	}
}

func TestDeliverConfigValidate(t *testing.T) {
	if err := comm.DefaultDeliverConfig().Validate(); err != nil {
		t.Fatal(err)
	}
	for _, cfg := range []comm.DeliverConfig{
		{BackoffMin: 0, BackoffMax: time.Second},
		{BackoffMin: time.Second, BackoffMax: time.Millisecond},
		{BackoffMin: time.Second, BackoffMax: time.Second, ProbeTimeout: -time.Second},
	} {
		if err := cfg.Validate(); !errors.Is(err, comm.ErrInvalidDeliverConfig) {
			t.Errorf("%+v: Validate() = %v, want ErrInvalidDeliverConfig", cfg, err)
		}
	}
}
