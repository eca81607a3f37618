package gossip

import (
	"bytes"
	"context"
	"net"
	"sync"
	"testing"
	"time"

	"github.com/blockgossip/blockgossip/comm"
	"github.com/blockgossip/blockgossip/identity"
	"github.com/blockgossip/blockgossip/ledger"
	pb "github.com/blockgossip/blockgossip/protos"
)

// aliveCounter signals each member admitted.
type aliveCounter struct {
	NopTracer
	ch chan struct{}
}

func (a aliveCounter) MemberAlive(identity.PKIID, uint64, bool) {
	select {
	case a.ch <- struct{}{}:
	default:
	}
}

// Ten Nodes over the real gRPC transport with mutual TLS and real
// identities: node 0 injects 50 orderer-signed blocks; every node commits
// all of them in order with identical hashes, with random and tree push.
func TestNodesOverGRPC(t *testing.T) {
	if testing.Short() {
		t.Skip("real sockets and TLS: a few seconds")
	}
	for _, tree := range []bool{false, true} {
		cfg := DefaultConfig()
		cfg.Tree = tree
		cfg.TickInterval = 20 * time.Millisecond // faster alive and pull rounds: a shorter test
		t.Run(map[bool]string{false: "random push", true: "tree push"}[tree], func(t *testing.T) { testNodesOverGRPC(t, cfg) })
	}
}

func testNodesOverGRPC(t *testing.T, cfg Config) {
	const n = 10
	bundle, err := identity.NewBundle(identity.GenerateSpec{Orgs: 1, PeersPerOrg: n})
	if err != nil {
		t.Fatal(err)
	}
	verifier, err := bundle.Network.OrdererVerifier()
	if err != nil {
		t.Fatal(err)
	}
	var chain []*pb.Block
	var prev []byte
	for i := range 50 {
		b := ledger.NewBlock(uint64(i), prev, [][]byte{{byte(i)}}, time.Now().UnixNano())
		ledger.SignBlock(b, bundle.Orderer.Sign)
		prev = ledger.HeaderHash(b)
		chain = append(chain, b)
	}

	ccfg := comm.DefaultConfig()
	ctx, cancel := context.WithCancel(t.Context())
	var wg sync.WaitGroup
	nodes := make([]*Node, n)
	alive0 := aliveCounter{ch: make(chan struct{}, n)}
	var addr0 string
	for i := range n {
		id := bundle.Peers[i]
		msp, err := bundle.MSP()
		if err != nil {
			t.Fatal(err)
		}
		tr, err := comm.NewGRPC(ccfg, id, msp, nil)
		if err != nil {
			t.Fatal(err)
		}
		lis, err := net.Listen("tcp", "127.0.0.1:0")
		if err != nil {
			t.Fatal(err)
		}
		srv := comm.NewServer(ccfg, id, msp)
		tr.Register(srv)
		served := make(chan struct{})
		go func() { defer close(served); _ = srv.Serve(lis) }()
		t.Cleanup(func() { _ = tr.Close(); srv.Stop(); <-served })
		deps := Deps{
			Transport: tr, Ledger: ledger.OpenMemory(verifier), Verifier: verifier,
			Crypto: NewMSPCrypto(id, msp), Self: SelfFromIdentity(id, lis.Addr().String()),
			Incarnations: &MemoryIncarnationStore{}, Seed: uint64(i + 1),
		}
		if i == 0 {
			addr0 = lis.Addr().String()
			deps.Tracer = alive0
		} else {
			deps.Bootstrap = []string{addr0}
		}
		node, err := NewNode(cfg, deps)
		if err != nil {
			t.Fatal(err)
		}
		nodes[i] = node
		wg.Add(1)
		go func() {
			defer wg.Done()
			if err := node.Run(ctx); err != nil {
				t.Errorf("node %d: %v", i, err)
			}
		}()
	}
	defer wg.Wait()
	defer cancel()

	// Generous deadline: the machine is shared.
	deadline := time.After(60 * time.Second)
	for range n - 1 { // node 0 learns every other member
		select {
		case <-alive0.ch:
		case <-deadline:
			t.Fatalf("node 0 knows %d members after 60 s", nodes[0].Status().LivePeers)
		}
	}
	for _, b := range chain {
		if err := nodes[0].InjectBlock(ctx, b); err != nil {
			t.Fatalf("inject block: %v", err)
		}
	}
	for i, node := range nodes {
		for k := range chain {
			select {
			case ev := <-node.Commits():
				if ev.Number != uint64(k) || !bytes.Equal(ev.Hash, ledger.HeaderHash(chain[k])) {
					t.Fatalf("node %d: commit #%d is block %d: out of order or forked", i, k, ev.Number)
				}
			case <-deadline:
				t.Fatalf("node %d: %d of %d blocks within 60 s", i, k, len(chain))
			}
		}
	}
}
