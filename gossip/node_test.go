package gossip

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"sync"
	"sync/atomic"
	"testing"
	"testing/synctest"
	"time"

	"github.com/blockgossip/blockgossip/comm"
	"github.com/blockgossip/blockgossip/comm/memnet"
	"github.com/blockgossip/blockgossip/ledger"
	pb "github.com/blockgossip/blockgossip/protos"
	"github.com/prometheus/client_golang/prometheus"
)

// chainSource is a fake orderer deliver client: it serves chain from the
// requested height, one block per interval, then waits for cancellation.
type chainSource struct {
	chain    []*pb.Block
	interval time.Duration
	starts   atomic.Int32
	started  atomic.Int64 // time of the latest start (virtual under synctest), unix nanoseconds
}

func (s *chainSource) Run(ctx context.Context, from uint64, deliver func(*pb.Block)) error {
	s.starts.Add(1)
	s.started.Store(time.Now().UnixNano())
	t := time.NewTicker(s.interval)
	defer t.Stop()
	for n := from; n < uint64(len(s.chain)); n++ {
		select {
		case <-t.C:
		case <-ctx.Done():
			return ctx.Err()
		}
		deliver(s.chain[n])
	}
	<-ctx.Done()
	return ctx.Err()
}

type testNode struct {
	*Node
	transport comm.Transport
	reg       *prometheus.Registry
}

// startNodes runs n Nodes of one org on net, all with the same orderer
// source (only the elected leader runs it) and bootstrapping from node 0;
// each edit, if any, changes node i's Deps first.
func startNodes(t *testing.T, ctx context.Context, wg *sync.WaitGroup, n int, cfg Config, transports []comm.Transport, src BlockSource, edit ...func(i int, d *Deps)) []testNode {
	t.Helper()
	nodes := make([]testNode, n)
	for i := range n {
		reg := prometheus.NewRegistry()
		met, err := NewMetrics(reg)
		if err != nil {
			t.Fatal(err)
		}
		var boot []string
		if i > 0 {
			boot = []string{"peer0"}
		}
		deps := Deps{
			Transport: transports[i], Ledger: ledger.OpenMemory(testOrderer), Verifier: testOrderer,
			Crypto: NopCrypto{}, Self: Self{ID: transports[i].Self(), Endpoint: fmt.Sprintf("peer%d", i), Org: "org1"},
			Incarnations: &MemoryIncarnationStore{}, Bootstrap: boot, Orderer: src, Metrics: met, Seed: uint64(i + 1),
		}
		for _, e := range edit {
			e(i, &deps)
		}
		node, err := NewNode(cfg, deps)
		if err != nil {
			t.Fatal(err)
		}
		nodes[i] = testNode{Node: node, transport: transports[i], reg: reg}
		wg.Add(1)
		go func() {
			defer wg.Done()
			if err := node.Run(ctx); err != nil {
				t.Errorf("node %d: Run: %v", i, err)
			}
		}()
	}
	return nodes
}

// waitCommits reads the commit events for blocks [from, to) from node and
// checks them against chain, failing if they do not all arrive within limit
// (virtual time).
func waitCommits(t *testing.T, i int, node *Node, chain []*pb.Block, from, to int, limit time.Duration) {
	t.Helper()
	deadline := time.After(limit)
	for k := from; k < to; k++ {
		select {
		case ev, ok := <-node.Commits():
			if !ok {
				t.Fatalf("node %d: commits closed after %d", i, k)
			}
			if ev.Number != uint64(k) || !bytes.Equal(ev.Hash, ledger.HeaderHash(chain[k])) {
				t.Fatalf("node %d: commit #%d is block %d hash %x: out of order or forked", i, k, ev.Number, ev.Hash)
			}
		case <-deadline:
			t.Fatalf("node %d: only %d of %d blocks committed within %v", i, k, len(chain), limit)
		}
	}
}

// Ten Nodes on the in-memory network: membership forms, one leader is
// elected and runs the orderer client, and every Node commits all 50 blocks
// in order. Runs in virtual time.
func TestNodesOnMemnetCommitEverything(t *testing.T) {
	random := DefaultConfig()
	random.Tree = false // the default is tree push since issue 11
	for name, cfg := range map[string]Config{"random push": random, "tree push": DefaultConfig()} {
		t.Run(name, func(t *testing.T) { testNodesOnMemnet(t, cfg) })
	}
}

func testNodesOnMemnet(t *testing.T, cfg Config) {
	synctest.Test(t, func(t *testing.T) {
		net := memnet.New(memnet.Config{Seed: 1, Latency: memnet.Fixed(2 * time.Millisecond)})
		defer net.Close()
		const n = 10
		transports := joinMemnet(t, net, n)
		chain := makeChain(testOrderer, 50, 12)
		src := &chainSource{chain: chain, interval: 50 * time.Millisecond}
		ctx, cancel := context.WithCancel(t.Context())
		var wg sync.WaitGroup
		nodes := startNodes(t, ctx, &wg, n, cfg, transports, src)
		for i, node := range nodes {
			waitCommits(t, i, node.Node, chain, 0, len(chain), time.Minute)
		}
		synctest.Wait() // every loop idle: statuses are final
		leaders := 0
		for i, node := range nodes {
			st := node.Status()
			if st.Height != 50 || !bytes.Equal(st.TipHash, ledger.HeaderHash(chain[49])) || st.LivePeers != n-1 {
				t.Errorf("node %d: status %+v", i, st)
			}
			if st.IsLeader {
				leaders++
			}
			if got := gauge(t, node.reg, "blockgossip_gossip_ledger_height"); got != 50 {
				t.Errorf("node %d: height gauge %v", i, got)
			}
		}
		if leaders != 1 || src.starts.Load() < 1 {
			t.Fatalf("%d leaders, orderer client started %d times", leaders, src.starts.Load())
		}
		cancel()
		wg.Wait()
		for i, node := range nodes {
			if _, ok := <-node.Commits(); ok {
				t.Errorf("node %d: commits not closed after Run returned", i)
			}
			if err := node.InjectBlock(context.Background(), chain[0]); !errors.Is(err, ErrNotRunning) {
				t.Errorf("node %d: InjectBlock after stop: %v", i, err)
			}
		}
	})
}

// joinMemnet joins n peers of org1 to net and returns their transports.
func joinMemnet(t *testing.T, net *memnet.Network, n int) []comm.Transport {
	t.Helper()
	transports := make([]comm.Transport, n)
	for i := range n {
		ep, err := net.Join(fakeID(i), fmt.Sprintf("peer%d", i), "org1", nil)
		if err != nil {
			t.Fatal(err)
		}
		transports[i] = ep
	}
	return transports
}

// When the leader crashes, another Node is elected, starts the orderer
// client from its own height, and the survivors commit the whole chain.
// The survivors see their streams to it break, and elect the next leader
// at once (Peer.StreamBroken): its orderer client starts within an
// election round of the crash, not after the 1.2 s a silent leader is
// waited for (plus 0.8 s while membership still lists it).
func TestLeaderCrashHandsOverOrdererClient(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		net := memnet.New(memnet.Config{Seed: 2, Latency: memnet.Fixed(2 * time.Millisecond)})
		defer net.Close()
		const n = 5
		transports := joinMemnet(t, net, n)
		chain := makeChain(testOrderer, 60, 14)
		src := &chainSource{chain: chain, interval: 50 * time.Millisecond}
		ctx, cancel := context.WithCancel(t.Context())
		var wg sync.WaitGroup
		defer wg.Wait() // runs after cancel
		defer cancel()
		nodes := startNodes(t, ctx, &wg, n, DefaultConfig(), transports, src)
		for i, node := range nodes {
			waitCommits(t, i, node.Node, chain, 0, 20, time.Minute)
		}
		leader := -1
		for i, node := range nodes {
			if node.Status().IsLeader {
				leader = i
			}
		}
		if leader < 0 {
			t.Fatal("no leader while blocks flow")
		}
		net.Crash(fakeID(leader))
		crashed := time.Now()
		for i, node := range nodes {
			if i != leader {
				waitCommits(t, i, node.Node, chain, 20, len(chain), time.Minute)
			}
		}
		if src.starts.Load() < 2 {
			t.Fatalf("orderer client started %d times, want a restart at the new leader", src.starts.Load())
		}
		cfg := DefaultConfig()
		handover := time.Unix(0, src.started.Load()).Sub(crashed)
		if limit := time.Duration(cfg.Election.LeaderAliveThreshold) * cfg.TickInterval; handover > limit {
			t.Fatalf("the new leader's orderer client started %v after the crash, want within %v (an election round)", handover, limit)
		}
		t.Logf("new leader's orderer client %v after the crash", handover)
		for i, node := range nodes {
			if st := node.Status(); i != leader && st.HasLeader && st.Leader == fakeID(leader) {
				t.Fatalf("node %d still follows the crashed leader", i)
			}
		}
	})
}

func TestNodeRunTwiceAndValidation(t *testing.T) {
	if _, err := NewNode(DefaultConfig(), Deps{}); !errors.Is(err, ErrMissingDep) {
		t.Fatalf("NewNode without deps: %v", err)
	}
	bad := DefaultConfig()
	bad.Fanout = 0
	if _, err := NewNode(bad, Deps{}); !errors.Is(err, ErrInvalidConfig) {
		t.Fatalf("NewNode with Fanout 0: %v", err)
	}
	synctest.Test(t, func(t *testing.T) {
		net := memnet.New(memnet.DefaultConfig())
		defer net.Close()
		ep, err := net.Join(fakeID(0), "peer0", "org1", nil)
		if err != nil {
			t.Fatal(err)
		}
		node, err := NewNode(DefaultConfig(), Deps{Transport: ep, Ledger: ledger.OpenMemory(testOrderer), Verifier: testOrderer,
			Crypto: NopCrypto{}, Self: Self{Org: "org1"}, Incarnations: &MemoryIncarnationStore{}})
		if err != nil {
			t.Fatal(err)
		}
		ctx, cancel := context.WithCancel(t.Context())
		done := make(chan error)
		go func() { done <- node.Run(ctx) }()
		chain := makeChain(testOrderer, 2, 13)
		if err := node.InjectBlock(ctx, chain[1]); err != nil {
			t.Fatalf("inject block 1 (buffered): %v", err)
		}
		if err := node.InjectBlock(ctx, chain[0]); err != nil {
			t.Fatalf("inject block 0: %v", err)
		}
		if err := node.InjectBlock(ctx, chain[0]); !errors.Is(err, ErrDuplicateBlock) {
			t.Fatalf("inject duplicate: %v", err)
		}
		if err := node.Run(ctx); !errors.Is(err, ErrAlreadyRunning) {
			t.Fatalf("second Run: %v", err)
		}
		synctest.Wait()
		if st := node.Status(); st.Height != 2 || st.Incarnation == 0 {
			t.Fatalf("status %+v", st)
		}
		cancel()
		if err := <-done; err != nil {
			t.Fatal(err)
		}
	})
}

// gauge reads a gauge from a registry.
func gauge(t *testing.T, reg *prometheus.Registry, name string) float64 {
	t.Helper()
	mfs, err := reg.Gather()
	if err != nil {
		t.Fatal(err)
	}
	for _, mf := range mfs {
		if mf.GetName() == name && len(mf.GetMetric()) == 1 {
			return mf.GetMetric()[0].GetGauge().GetValue()
		}
	}
	t.Fatalf("metric %s not found", name)
	return 0
}
