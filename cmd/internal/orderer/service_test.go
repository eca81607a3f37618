package orderer

import (
	"bytes"
	"context"
	"errors"
	"io"
	"math"
	"math/big"
	"testing"
	"time"

	"github.com/blockgossip/blockgossip/comm"
	"github.com/blockgossip/blockgossip/identity"
	"github.com/blockgossip/blockgossip/ledger"
	pb "github.com/blockgossip/blockgossip/protos"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/status"
)

func TestGenesisBlock(t *testing.T) {
	f := newFixture(t)
	o := f.newOrderer(t, DefaultConfig())
	if o.Height() != 1 {
		t.Fatalf("fresh network height %d, want 1", o.Height())
	}
	g, err := o.store.Block(0)
	if err != nil {
		t.Fatal(err)
	}
	h, err := ledger.VerifyBlock(g, f.verifier)
	if err != nil {
		t.Fatalf("genesis does not verify under the pinned orderer key: %v", err)
	}
	if h.GetNumber() != 0 || len(h.GetPreviousHash()) != 0 {
		t.Fatalf("genesis header %v", h)
	}
	txs := g.GetData().GetTransactions()
	if len(txs) != 1 {
		t.Fatalf("genesis has %d transactions, want 1", len(txs))
	}
	desc, err := identity.ParseNetworkDescription(txs[0])
	if err != nil {
		t.Fatalf("genesis transaction is not a network description: %v", err)
	}
	if desc.OrdererCertPEM != f.b.Network.OrdererCertPEM || len(desc.Orgs) != len(f.b.Network.Orgs) {
		t.Fatalf("genesis describes another network")
	}
}

func TestRefusesWrongIdentityAndForeignLedger(t *testing.T) {
	f := newFixture(t)
	_, err := New(DefaultConfig(), f.b.Peers[0], f.b.Network, f.openStore(t, t.TempDir()), nil)
	if !errors.Is(err, ErrWrongIdentity) {
		t.Fatalf("a peer identity as orderer: %v, want ErrWrongIdentity", err)
	}

	other := newFixture(t)
	dir := t.TempDir()
	s, err := ledger.Open(dir, other.verifier)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := New(DefaultConfig(), other.b.Orderer, other.b.Network, s, nil); err != nil {
		t.Fatal(err)
	}
	s.Close()
	// The same directory, reopened by this network's orderer. The store's
	// verifier is the other network's (it verifies what is on disk); the
	// genesis pins another orderer.
	s = other.openStore(t, dir)
	if _, err := New(DefaultConfig(), f.b.Orderer, f.b.Network, s, nil); !errors.Is(err, ErrForeignLedger) {
		t.Fatalf("foreign ledger: %v, want ErrForeignLedger", err)
	}
}

func TestRestartResumesWithoutFork(t *testing.T) {
	f := newFixture(t)
	dir := t.TempDir()
	cfg := DefaultConfig()
	cfg.BatchMaxTx = 2

	var tipBefore ledger.TipInfo
	for life := range 3 {
		s, err := ledger.Open(dir, f.verifier)
		if err != nil {
			t.Fatalf("life %d: %v", life, err)
		}
		o, err := New(cfg, f.b.Orderer, f.b.Network, s, nil)
		if err != nil {
			t.Fatal(err)
		}
		if life > 0 && !bytes.Equal(s.Tip().CurrentHash, tipBefore.CurrentHash) {
			t.Fatalf("life %d: restart changed the tip (genesis rewritten?)", life)
		}
		stop := run(t, o)
		addr, stopServer := f.serve(t, o)
		resp, err := pb.NewAtomicBroadcastClient(f.dial(t, f.client(), addr)).Broadcast(context.Background(),
			&pb.SubmitRequest{Transactions: txs(4, 16), WaitForBlocks: true})
		if err != nil {
			t.Fatal(err)
		}
		first := uint64(1 + 2*life)
		for i, p := range resp.GetPlacements() {
			if p.GetBlockNumber() != first+uint64(i/2) || p.GetIndex() != uint32(i%2) {
				t.Fatalf("life %d: placement %d = %v", life, i, p)
			}
		}
		stopServer()
		if err := stop(); err != nil {
			t.Fatal(err)
		}
		tipBefore = s.Tip()
		s.Close()
	}
	height, err := ledger.VerifyChain(dir, func(*pb.Block) (ledger.BlockVerifier, error) { return f.verifier, nil }, nil)
	if err != nil || height != 7 {
		t.Fatalf("VerifyChain: height %d, err %v; want 7 blocks that link", height, err)
	}
}

// recvAll reads n blocks from a Deliver stream, checking they are numbered
// from start and link to each other.
func recvBlocks(t *testing.T, st pb.AtomicBroadcast_DeliverClient, v ledger.BlockVerifier, start uint64, n int, prev []byte) []byte {
	t.Helper()
	for i := range n {
		resp, err := st.Recv()
		if err != nil {
			t.Fatalf("block %d: %v", start+uint64(i), err)
		}
		h, err := ledger.VerifyBlock(resp.GetBlock(), v)
		if err != nil {
			t.Fatal(err)
		}
		if h.GetNumber() != start+uint64(i) || (prev != nil && !bytes.Equal(h.GetPreviousHash(), prev)) {
			t.Fatalf("got block %d (links: %v), want %d", h.GetNumber(), bytes.Equal(h.GetPreviousHash(), prev), start+uint64(i))
		}
		prev = ledger.HeaderHash(resp.GetBlock())
	}
	return prev
}

func TestDeliverFromAnyHeightThenFollow(t *testing.T) {
	f := newFixture(t)
	for _, start := range []uint64{0, 3, 6, 8} { // 6 is the height: follow only; 8 is beyond it
		o := f.newOrderer(t, DefaultConfig())
		for range 5 {
			if _, err := o.CutBlock(txs(3, 32)); err != nil {
				t.Fatal(err)
			}
		}
		addr, _ := f.serve(t, o)
		ctx, cancel := context.WithCancel(context.Background())
		st, err := pb.NewAtomicBroadcastClient(f.dial(t, f.client(), addr)).Deliver(ctx, &pb.DeliverRequest{Start: start})
		if err != nil {
			t.Fatal(err)
		}
		next := start
		var prev []byte
		if start < 6 {
			prev = recvBlocks(t, st, f.verifier, start, int(6-start), nil)
			next = 6
		}
		// Follow: blocks cut after the stream opened arrive without asking.
		for o.Height() < 10 {
			if _, err := o.CutBlock(txs(1, 8)); err != nil {
				t.Fatal(err)
			}
			for next < o.Height() {
				prev = recvBlocks(t, st, f.verifier, next, 1, prev)
				next++
			}
		}
		cancel()
	}
}

func TestDeliverStopAfter(t *testing.T) {
	f := newFixture(t)
	o := f.newOrderer(t, DefaultConfig())
	for range 5 {
		o.CutBlock(txs(1, 8))
	}
	addr, _ := f.serve(t, o)
	st, err := pb.NewAtomicBroadcastClient(f.dial(t, f.client(), addr)).
		Deliver(context.Background(), &pb.DeliverRequest{Start: 1, StopAfter: 3, HasStop: true})
	if err != nil {
		t.Fatal(err)
	}
	recvBlocks(t, st, f.verifier, 1, 3, nil)
	if _, err := st.Recv(); err != io.EOF {
		t.Fatalf("after stop block: %v, want end of stream", err)
	}
	// The largest stop block must not overflow into "stop at once".
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	st, err = pb.NewAtomicBroadcastClient(f.dial(t, f.client(), addr)).
		Deliver(ctx, &pb.DeliverRequest{Start: 4, StopAfter: math.MaxUint64, HasStop: true})
	if err != nil {
		t.Fatal(err)
	}
	recvBlocks(t, st, f.verifier, 4, 2, nil)
}

func TestDeliverStreamsEndWhenOrdererStops(t *testing.T) {
	f := newFixture(t)
	o := f.newOrderer(t, DefaultConfig())
	stop := run(t, o)
	addr, _ := f.serve(t, o)
	st, err := pb.NewAtomicBroadcastClient(f.dial(t, f.client(), addr)).Deliver(context.Background(), &pb.DeliverRequest{Start: 1})
	if err != nil {
		t.Fatal(err)
	}
	stop()
	if _, err := st.Recv(); status.Code(err) != codes.Unavailable {
		t.Fatalf("following stream after Run returned: %v, want Unavailable", err)
	}
}

func TestBroadcastLimits(t *testing.T) {
	f := newFixture(t)
	cfg := DefaultConfig()
	cfg.MaxTxBytes, cfg.MaxTxsPerRequest = 64, 4
	o := f.newOrderer(t, cfg)
	addr, _ := f.serve(t, o)
	client := pb.NewAtomicBroadcastClient(f.dial(t, f.client(), addr))
	for name, req := range map[string]*pb.SubmitRequest{
		"oversized tx":     {Transactions: [][]byte{make([]byte, 65)}},
		"empty tx":         {Transactions: [][]byte{{}}},
		"too many per req": {Transactions: txs(5, 1)},
	} {
		if _, err := client.Broadcast(context.Background(), req); status.Code(err) != codes.InvalidArgument {
			t.Errorf("%s: %v, want InvalidArgument", name, err)
		}
	}
	resp, err := client.Broadcast(context.Background(), &pb.SubmitRequest{Transactions: txs(4, 64)})
	if err != nil || resp.GetAccepted() != 4 {
		t.Fatalf("a valid request: %v, %v", resp, err)
	}
}

func TestLedgerInfo(t *testing.T) {
	f := newFixture(t)
	o := f.newOrderer(t, DefaultConfig())
	b1, _ := o.CutBlock(txs(1, 8))
	b2, _ := o.CutBlock(txs(1, 8))
	addr, _ := f.serve(t, o)
	info, err := pb.NewAdminClient(f.dial(t, f.b.Admins["org2"], addr)).LedgerInfo(context.Background(), &pb.LedgerInfoRequest{})
	if err != nil {
		t.Fatal(err)
	}
	if info.GetHeight() != 3 || !bytes.Equal(info.GetCurrentBlockHash(), ledger.HeaderHash(b2)) ||
		!bytes.Equal(info.GetPreviousBlockHash(), ledger.HeaderHash(b1)) || info.GetOrg() != identity.OrdererOrg {
		t.Fatalf("LedgerInfo %v", info)
	}
}

func TestForeignAndRevokedClientsRefused(t *testing.T) {
	f := newFixture(t)
	o := f.newOrderer(t, DefaultConfig())
	addr, _ := f.serve(t, o)

	foreign := newFixture(t) // another network: its CA is unknown here
	conn := f.dial(t, foreign.client(), addr)
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	if _, err := pb.NewAdminClient(conn).LedgerInfo(ctx, &pb.LedgerInfoRequest{}); status.Code(err) != codes.Unavailable {
		t.Fatalf("foreign-CA LedgerInfo: %v, want Unavailable (TLS refused)", err)
	}
	if _, err := pb.NewAtomicBroadcastClient(conn).Broadcast(ctx, &pb.SubmitRequest{Transactions: txs(1, 1)}); err == nil {
		t.Fatal("foreign-CA Broadcast accepted")
	}
	if o.Height() != 1 {
		t.Fatal("a foreign client's transaction was cut")
	}

	// A member revoked after connecting is refused on its open connection.
	conn = f.dial(t, f.client(), addr)
	admin := pb.NewAdminClient(conn)
	if _, err := admin.LedgerInfo(ctx, &pb.LedgerInfoRequest{}); err != nil {
		t.Fatal(err)
	}
	o.msp.SetRevoked([]*big.Int{f.client().Cert.SerialNumber})
	if _, err := admin.LedgerInfo(ctx, &pb.LedgerInfoRequest{}); status.Code(err) != codes.PermissionDenied {
		t.Fatalf("revoked member: %v, want PermissionDenied", err)
	}
}

// The deliver client (comm) against two orderer servers sharing one chain:
// when the one it streams from dies, it resumes on the other at the next
// block, with no gap and no duplicate.
func TestDeliverClientFailsOverBetweenServers(t *testing.T) {
	f := newFixture(t)
	o := f.newOrderer(t, DefaultConfig())
	for range 3 {
		o.CutBlock(txs(1, 8))
	}
	addrA, stopA := f.serve(t, o)
	addrB, _ := f.serve(t, o)
	cfg := comm.DefaultDeliverConfig()
	cfg.BackoffMin = 10 * time.Millisecond
	dc := comm.NewDeliverClient(cfg, []string{addrA, addrB}, f.dialOpts(f.b.Peers[0], f.msp), nil)

	got := make(chan *pb.Block)
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() {
		done <- dc.Run(ctx, 1, func(b *pb.Block) {
			select {
			case got <- b:
			case <-ctx.Done():
			}
		})
	}()
	defer func() {
		cancel()
		if err := <-done; err != nil {
			t.Errorf("Run: %v", err)
		}
	}()
	expect := func(n uint64) {
		t.Helper()
		h, err := ledger.VerifyBlock(<-got, f.verifier)
		if err != nil || h.GetNumber() != n {
			t.Fatalf("got block %v (err %v), want %d", h.GetNumber(), err, n)
		}
	}
	for n := uint64(1); n <= 3; n++ {
		expect(n)
	}
	stopA()
	for n := uint64(4); n <= 6; n++ {
		o.CutBlock(txs(1, 8))
		expect(n)
	}
	if st := dc.Stats(); st.Failures < 1 || st.Streams < 2 || st.Blocks != 6 || st.Duplicates != 0 {
		t.Fatalf("stats %+v: want a failover, 2+ streams, 6 blocks, no duplicates", st)
	}
}
