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
	chain, nodes, alive0 := startGRPCNodes(t, n, 50, cfg, nil)

	// Generous deadline: the machine is shared.
	deadline := time.After(60 * time.Second)
	for range n - 1 { // node 0 learns every other member
		select {
		case <-alive0:
		case <-deadline:
			t.Fatalf("node 0 knows %d members after 60 s", nodes[0].Status().LivePeers)
		}
	}
	for _, b := range chain {
		if err := nodes[0].InjectBlock(t.Context(), b); err != nil {
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

// A peer stopped gracefully (its Node's Run ends, then its transport
// closes, as a peer process does on SIGTERM: a restart, an upgrade) ends
// its streams as failures, not as retirements, so each of its children in
// the tree sees the link to its parent break and takes another parent at
// once (LinkDown); they all commit the blocks cut after the stop. The
// stopping side's writers used to half-close first, and a child then read
// a clean end (a stream retired for another, which it waited for), a Down
// without Broken HandshakeTimeout (3 s) later, and took its silent parent
// for late for ParentSilence (1.5 s): the next blocks came by pull.
func TestGracefullyStoppedParentIsABrokenLink(t *testing.T) {
	if testing.Short() {
		t.Skip("real sockets and TLS: a few seconds")
	}
	cfg := DefaultConfig()
	cfg.TickInterval = 20 * time.Millisecond // faster alive rounds: a shorter test
	const n, before, after = 8, 20, 10
	// Each peer bootstraps from the one before it, not all from node 0:
	// every peer's first eager link would be node 0 (the only member it
	// knows at first), and the tree a star with no child to watch.
	var addrs []string
	chain, nodes, alive0 := startGRPCNodes(t, n, before+after, cfg, func(i int, d *Deps) {
		if i > 0 {
			d.Bootstrap = []string{addrs[i-1]}
		}
		addrs = append(addrs, d.Self.Endpoint)
	})
	deadline := time.After(60 * time.Second) // generous: the machine is shared
	for range n - 1 {
		select {
		case <-alive0:
		case <-deadline:
			t.Fatalf("node 0 knows %d members after 60 s", nodes[0].Status().LivePeers)
		}
	}
	for _, b := range chain[:before] {
		if err := nodes[0].InjectBlock(t.Context(), b); err != nil {
			t.Fatalf("inject block: %v", err)
		}
	}
	for i, node := range nodes {
		waitCommits(t, i, node.Node, chain, 0, before, time.Minute)
	}
	// The peer (not node 0, which injects) that pushed the last block to
	// the most others.
	victim, children := -1, []int(nil)
	for i := 1; i < n; i++ {
		var kids []int
		for j, node := range nodes {
			if a, ok := node.tracer.block(before - 1); ok && a.via == ViaPush && a.from == nodes[i].id {
				kids = append(kids, j)
			}
		}
		if len(kids) > len(children) {
			victim, children = i, kids
		}
	}
	if victim < 0 {
		t.Fatal("every peer got the last block from node 0: no child to watch")
	}
	nodes[victim].stop()
	for _, c := range children {
		for !nodes[c].tracer.brokenParent(nodes[victim].id) {
			select {
			case <-deadline:
				t.Fatalf("node %d never saw the stream to its parent, node %d, break after node %d stopped: a graceful stop reached it as a clean end", c, victim, victim)
			case <-time.After(10 * time.Millisecond):
			}
		}
	}
	for _, b := range chain[before:] {
		if err := nodes[0].InjectBlock(t.Context(), b); err != nil {
			t.Fatalf("inject block: %v", err)
		}
	}
	for i, node := range nodes {
		if i != victim {
			waitCommits(t, i, node.Node, chain, before, len(chain), time.Minute)
		}
	}
}

// grpcNode is a Node over the real gRPC transport, with its own stop.
type grpcNode struct {
	*Node
	id     identity.PKIID
	tracer *linkTracer
	stop   func() // graceful: the Node's Run ends, then the transport closes, as a peer process does on SIGTERM
}

// startGRPCNodes starts n Nodes of one org over gRPC with mutual TLS and
// real identities, node 0 the bootstrap of the others, and returns blocks
// orderer-signed blocks to feed them, the Nodes, and a channel that gets a
// value for each member node 0 admits. Everything stops with the test.
func startGRPCNodes(t *testing.T, n, blocks int, cfg Config, deps func(i int, d *Deps)) ([]*pb.Block, []*grpcNode, chan struct{}) {
	t.Helper()
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
	for i := range blocks {
		b := ledger.NewBlock(uint64(i), prev, [][]byte{{byte(i)}}, time.Now().UnixNano())
		ledger.SignBlock(b, bundle.Orderer.Sign)
		prev = ledger.HeaderHash(b)
		chain = append(chain, b)
	}
	ccfg := comm.DefaultConfig()
	nodes := make([]*grpcNode, n)
	alive0 := make(chan struct{}, n)
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
		lt := &linkTracer{}
		d := Deps{
			Transport: tr, Ledger: ledger.OpenMemory(verifier), Verifier: verifier,
			Crypto: NewMSPCrypto(id, msp), Self: SelfFromIdentity(id, lis.Addr().String()),
			Incarnations: &MemoryIncarnationStore{}, Seed: uint64(i + 1), Tracer: lt,
		}
		if i == 0 {
			addr0 = lis.Addr().String()
			lt.admitted = alive0
		} else {
			d.Bootstrap = []string{addr0}
		}
		if deps != nil {
			deps(i, &d)
		}
		node, err := NewNode(cfg, d)
		if err != nil {
			t.Fatal(err)
		}
		ctx, cancel := context.WithCancel(t.Context())
		ran := make(chan struct{})
		go func() {
			defer close(ran)
			if err := node.Run(ctx); err != nil {
				t.Errorf("node %d: %v", i, err)
			}
		}()
		var once sync.Once
		stop := func() {
			once.Do(func() {
				cancel()
				<-ran
				_ = tr.Close()
				srv.Stop()
				<-served
			})
		}
		t.Cleanup(stop)
		nodes[i] = &grpcNode{Node: node, id: id.ID, tracer: lt, stop: stop}
	}
	return chain, nodes, alive0
}

// linkTracer records who pushed each block first and the broken tree
// links, and signals each member admitted (when admitted is set).
type linkTracer struct {
	acceptTracer
	admitted chan struct{}
	mu       sync.Mutex
	broken   []brokenLink
}

type brokenLink struct {
	id     identity.PKIID
	parent bool
}

func (l *linkTracer) MemberAlive(identity.PKIID, uint64, bool) {
	if l.admitted == nil {
		return
	}
	select {
	case l.admitted <- struct{}{}:
	default:
	}
}

func (l *linkTracer) LinkBroken(id identity.PKIID, parent bool) {
	l.mu.Lock()
	defer l.mu.Unlock()
	l.broken = append(l.broken, brokenLink{id, parent})
}

// brokenParent reports whether the stream to our parent id broke.
func (l *linkTracer) brokenParent(id identity.PKIID) bool {
	l.mu.Lock()
	defer l.mu.Unlock()
	for _, b := range l.broken {
		if b.id == id && b.parent {
			return true
		}
	}
	return false
}
