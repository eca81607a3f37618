package pull

import (
	"testing"

	"go.uber.org/goleak"
)

func TestMain(m *testing.M) { goleak.VerifyTestMain(m) }

// report logs a scenario's cost, for the record.
func (s *sim) report(name string, ticks int) {
	s.t.Logf("%s [%s]: converged in %d ticks; %d msgs, %d KiB; received via pull %d, via state %d",
		name, s.t.Name(), ticks, s.msgs, s.bytes>>10, s.received[ViaPull], s.received[ViaState])
}

// profiles runs a scenario under blockgossip's defaults and, unless -short,
// under Fabric's, so that the logs compare the two.
func profiles(t *testing.T, run func(t *testing.T, cfg Config)) {
	t.Run("default", func(t *testing.T) { run(t, DefaultConfig()) })
	if !testing.Short() {
		t.Run("fabric", func(t *testing.T) { run(t, FabricConfig()) })
	}
}

// A peer that joins after 1,000 blocks catches up to the same tip, while
// the others keep receiving a block per tick.
func TestLateJoinerCatchesUp(t *testing.T) { profiles(t, lateJoiner) }

func lateJoiner(t *testing.T, cfg Config) {
	s := newSim(t, 1, 4, cfg)
	s.chain.extend(1000)
	for i := range 4 {
		s.feed(i)
	}
	s.addNode(cfg, honest)
	for range 30 { // the tip keeps moving while the newcomer catches up
		s.chain.extend(len(s.chain.blocks) + 1)
		for i := range 4 {
			s.feed(i)
		}
		s.step()
	}
	ticks := 30 + s.runUntilConverged(400)
	s.report("late joiner, 1030 blocks", ticks)
	if s.received[ViaState] < 900 {
		t.Errorf("state transfer brought %d blocks; want the bulk of 1,000", s.received[ViaState])
	}
}

// With push disabled (only peer 0 is fed), pull alone converges 50 peers.
func TestPullAloneConverges50(t *testing.T) { profiles(t, pullAlone50) }

func pullAlone50(t *testing.T, cfg Config) {
	s := newSim(t, 2, 50, cfg)
	for range 100 { // one block every tick for 10 s
		s.chain.extend(len(s.chain.blocks) + 1)
		s.feed(0)
		s.step()
	}
	ticks := s.runUntilConverged(400)
	s.report("50 peers, 100 blocks, pull only, ticks after the last block", ticks)
	if got := s.received[ViaPull] + s.received[ViaState]; cfg == DefaultConfig() && got > 49*100*105/100 {
		t.Errorf("%d blocks fetched for 49 peers x 100 blocks: more than 5%% duplicates", got)
	}
}

// With 30% loss on every link, pull (and state transfer) deliver every
// block to every peer. Push is the gossip layer's: only peer 0 is fed.
func TestLossyLinksDeliverEverything(t *testing.T) { profiles(t, lossy) }

func lossy(t *testing.T, cfg Config) {
	s := newSim(t, 3, 20, cfg)
	s.loss = 0.3
	for range 100 {
		s.chain.extend(len(s.chain.blocks) + 1)
		s.feed(0)
		s.step()
	}
	ticks := s.runUntilConverged(1500)
	s.report("20 peers, 30% loss, pull only, ticks after the last block", ticks)
	var st Stats
	for _, nd := range s.nodes {
		x := nd.eng.Stats()
		st.PullReasks += x.PullReasks
		st.PullRequestsSent += x.PullRequestsSent
		st.PullBlocksReceived += x.PullBlocksReceived
		st.PullBlocksServed += x.PullBlocksServed
	}
	t.Logf("%d pull requests, %d blocks re-asked, %d served, %d received by pull for 19 x 100 missing",
		st.PullRequestsSent, st.PullReasks, st.PullBlocksServed, st.PullBlocksReceived)
	// 30% of answers are lost, so 1,900 blocks cost at least 1,900/0.7 =
	// 2,714 served; re-asks must not add a storm on top.
	if limit := uint64(1900 * 115 / 70); st.PullBlocksServed > limit {
		t.Errorf("%d blocks served for 1,900 missing at 30%% loss, want at most %d", st.PullBlocksServed, limit)
	}
}

// A peer advertising a huge height and serving nothing (or serving empty
// answers) does not stall catch-up: it is asked rarely, and a new peer
// catches up about as fast as without it.
func TestLyingPeerDoesNotStall(t *testing.T) {
	base := catchUpWith(t, -1)
	for _, k := range []kind{silent, emptyish} {
		if ticks := catchUpWith(t, k); ticks > 3*base+20 {
			t.Errorf("liar kind %d: catch-up took %d ticks, %d without a liar", k, ticks, base)
		}
	}
}

// catchUpWith has a newcomer fetch 1,000 blocks from 4 honest peers and,
// unless k < 0, a liar of kind k, and returns the ticks it took.
func catchUpWith(t *testing.T, k kind) int {
	s := newSim(t, 4, 4, DefaultConfig())
	s.chain.extend(1000)
	for i := range 4 {
		s.feed(i)
	}
	var liar *simNode
	if k >= 0 {
		liar = s.addNode(DefaultConfig(), k)
	}
	newcomer := s.addNode(DefaultConfig(), honest)
	ticks := s.runUntilConverged(400)
	s.report("catch-up 1000 blocks, liar kind "+map[kind]string{-1: "none", silent: "silent", emptyish: "empty"}[k], ticks)
	if liar != nil {
		st := newcomer.eng.Stats()
		t.Logf("newcomer: %d state requests (%d hedges), %d timeouts, %d strikes",
			st.StateRequestsSent, st.StateHedges, st.StateTimeouts, st.Strikes)
		if k == silent && st.StateHedges == 0 {
			t.Errorf("the silent liar's range was never hedged")
		}
		if !newcomer.eng.Cooling(liar.id) && st.Strikes == 0 {
			t.Errorf("liar never penalised")
		}
	}
	return ticks
}

// Partition into two halves, feed blocks to one half, heal: both halves
// converge to identical chains.
func TestPartitionHeals(t *testing.T) { profiles(t, partition) }

func partition(t *testing.T, cfg Config) {
	s := newSim(t, 5, 10, cfg)
	for i := 5; i < 10; i++ {
		s.nodes[i].cut = 1
	}
	for range 300 { // 300 blocks to the first half only, one fed peer
		s.chain.extend(len(s.chain.blocks) + 1)
		s.feed(0)
		s.step()
	}
	for i := 5; i < 10; i++ {
		if h := s.nodes[i].store.height; h != 0 {
			t.Fatalf("node %d got %d blocks across the partition", i, h)
		}
	}
	for i := 5; i < 10; i++ {
		s.nodes[i].cut = 0
	}
	ticks := s.runUntilConverged(1000)
	s.report("partition of 10, 300 blocks to one half, ticks after heal", ticks)
}
