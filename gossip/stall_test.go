package gossip

import (
	"bytes"
	"context"
	"fmt"
	"sync"
	"sync/atomic"
	"testing"
	"testing/synctest"
	"time"

	"github.com/blockgossip/blockgossip/comm/memnet"
	"github.com/blockgossip/blockgossip/ledger"
	pb "github.com/blockgossip/blockgossip/protos"
)

// cutSource is a fake orderer that cuts a block of chain every interval
// from start. Its deliver client streams blocks as they are cut (or, mute,
// nothing at all: a leader that never delivers), and its height watcher
// reports how many are cut.
type cutSource struct {
	chain    []*pb.Block
	start    time.Time
	interval time.Duration
	mute     bool
	streams  atomic.Int32
	probes   atomic.Int32
}

func (s *cutSource) cut() uint64 {
	return min(uint64(len(s.chain)), uint64(time.Since(s.start)/s.interval))
}

func (s *cutSource) Run(ctx context.Context, from uint64, deliver func(*pb.Block)) error {
	s.streams.Add(1)
	for n := from; n < uint64(len(s.chain)) && !s.mute; n++ {
		t := time.NewTimer(time.Until(s.start.Add(time.Duration(n+1) * s.interval)))
		select {
		case <-t.C:
		case <-ctx.Done():
			t.Stop()
			return ctx.Err()
		}
		deliver(s.chain[n])
	}
	<-ctx.Done()
	return ctx.Err()
}

func (s *cutSource) WatchHeight(ctx context.Context, wait func() time.Duration, report func(uint64)) error {
	for {
		t := time.NewTimer(wait())
		select {
		case <-t.C:
		case <-ctx.Done():
			t.Stop()
			return nil
		}
		s.probes.Add(1)
		report(s.cut())
	}
}

var _ HeightWatcher = (*cutSource)(nil)

// lowestOf returns the index of the lowest of n fake PKI-IDs.
func lowestOf(n int) int {
	low := 0
	for i := 1; i < n; i++ {
		if fakeID(i).Less(fakeID(low)) {
			low = i
		}
	}
	return low
}

// startOrg runs n Nodes of org1 on a fresh memnet; the node at index mute
// (if any) gets a deliver client that never delivers.
func startOrg(t *testing.T, ctx context.Context, wg *sync.WaitGroup, n, mute int, chain []*pb.Block) ([]testNode, *cutSource, *memnet.Network) {
	t.Helper()
	net := memnet.New(memnet.Config{Seed: 5, Latency: memnet.Fixed(2 * time.Millisecond)})
	transports := joinMemnet(t, net, n)
	now := time.Now()
	honest := &cutSource{chain: chain, start: now, interval: 200 * time.Millisecond}
	liar := &cutSource{chain: chain, start: now, interval: 200 * time.Millisecond, mute: true}
	nodes := make([]testNode, n)
	for i := range n {
		src := BlockSource(honest)
		if i == mute {
			src = liar
		}
		var boot []string
		if i > 0 {
			boot = []string{"peer0"}
		}
		node, err := NewNode(DefaultConfig(), Deps{
			Transport: transports[i], Ledger: ledger.OpenMemory(testOrderer), Verifier: testOrderer,
			Crypto: NopCrypto{}, Self: Self{ID: transports[i].Self(), Endpoint: fmt.Sprintf("peer%d", i), Org: "org1"},
			Incarnations: &MemoryIncarnationStore{}, Bootstrap: boot, Orderer: src, Seed: uint64(i + 1),
		})
		if err != nil {
			t.Fatal(err)
		}
		nodes[i] = testNode{Node: node, transport: transports[i]}
		wg.Add(1)
		go func() {
			defer wg.Done()
			if err := node.Run(ctx); err != nil {
				t.Errorf("node %d: Run: %v", i, err)
			}
		}()
	}
	return nodes, honest, net
}

// A member with the lowest PKI-ID leads but never delivers: the others
// notice the orderer's height growing without them, stop trusting it, elect
// one of themselves and commit the whole chain. Virtual time.
func TestNodesReplaceALeaderThatNeverDelivers(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		const n = 5
		chain := makeChain(testOrderer, 100, 21)
		ctx, cancel := context.WithCancel(t.Context())
		var wg sync.WaitGroup
		defer wg.Wait()
		defer cancel()
		liar := lowestOf(n)
		nodes, honest, net := startOrg(t, ctx, &wg, n, liar, chain)
		defer net.Close()
		start := time.Now()
		for i, node := range nodes {
			if i != liar {
				waitCommits(t, i, node.Node, chain, 0, len(chain), 2*time.Minute)
			}
		}
		// The chain is cut over 20 s; the stall (election, timeout,
		// takeover) costs a few seconds more, not minutes.
		if took := time.Since(start); took > 30*time.Second {
			t.Fatalf("honest nodes took %v to commit a chain cut in 20 s", took)
		}
		synctest.Wait()
		for i, node := range nodes {
			if st := node.Status(); i != liar && (!st.HasLeader || st.Leader == fakeID(liar)) {
				t.Fatalf("node %d: status %+v: it should follow an honest leader, not the silent %d", i, st, liar)
			}
		}
		if honest.streams.Load() != 1 || honest.probes.Load() == 0 {
			t.Fatalf("honest deliver streams %d (want one, at the new leader), probes %d", honest.streams.Load(), honest.probes.Load())
		}
	})
}

// In a healthy org the probes never depose the leader: one deliver stream
// for the whole run, and every follower probes while it follows.
func TestHealthyOrgKeepsItsLeaderWhileProbing(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		const n = 5
		chain := makeChain(testOrderer, 300, 22)
		ctx, cancel := context.WithCancel(t.Context())
		var wg sync.WaitGroup
		defer wg.Wait()
		defer cancel()
		nodes, honest, net := startOrg(t, ctx, &wg, n, -1, chain)
		defer net.Close()
		for i, node := range nodes {
			waitCommits(t, i, node.Node, chain, 0, len(chain), 2*time.Minute)
		}
		synctest.Wait()
		leaders := 0
		for i, node := range nodes {
			st := node.Status()
			if st.Height != uint64(len(chain)) || !bytes.Equal(st.TipHash, ledger.HeaderHash(chain[len(chain)-1])) {
				t.Fatalf("node %d: status %+v", i, st)
			}
			if st.IsLeader {
				leaders++
			}
		}
		// 60 s of blocks: each of 4 followers probes every 2 s or so.
		if leaders != 1 || honest.streams.Load() != 1 || honest.probes.Load() < 4*20 {
			t.Fatalf("%d leaders, %d deliver streams, %d probes: want one leader and one stream all along, followers probing",
				leaders, honest.streams.Load(), honest.probes.Load())
		}
	})
}
