package gossip

import "testing"

// With pull on, push-once-to-3 (or tree push) plus 20% message loss still
// delivers every block to every peer: pull repairs what push missed. Tree
// push with pull also holds at 30% loss on every link.
func TestPullRepairsWhatPushMissed(t *testing.T) {
	fabric := FabricConfig()
	fabric.Pull.PullInterval = 10 // 1 s: keep the test short
	tree := DefaultConfig()
	tree.Tree = true
	t.Run("fabric", func(t *testing.T) { testPullRepairs(t, fabric, 0.2) })
	t.Run("tree", func(t *testing.T) { testPullRepairs(t, tree, 0.2) })
	t.Run("tree-30%-loss", func(t *testing.T) { testPullRepairs(t, tree, 0.3) })
}

func testPullRepairs(t *testing.T, cfg Config, loss float64) {
	cfg.PullEnabled = true
	net := convergedNet(t, 50, cfg, 9)
	net.loss = loss
	chain := makeChain(testOrderer, 50, 9)
	for _, b := range chain {
		net.inject(0, b)
		net.tick()
	}
	const limit = 300
	done := func() bool {
		for _, sp := range net.peers {
			if len(sp.commits) != len(chain) {
				return false
			}
		}
		return true
	}
	start := net.now
	for net.now < start+limit && !done() {
		net.tick()
	}
	var viaPush, viaPull, viaState int
	for _, sp := range net.peers {
		if len(sp.commits) != len(chain) {
			t.Fatalf("peer %d has %d of %d blocks %d ticks after the last injection", sp.idx, len(sp.commits), len(chain), limit)
		}
		checkPrefix(t, sp, chain)
		for _, c := range sp.commits {
			switch c.Via {
			case ViaPush:
				viaPush++
			case ViaPull:
				viaPull++
			case ViaState:
				viaState++
			}
		}
	}
	if viaPull+viaState == 0 {
		t.Fatal("no block came by pull: the loss should have forced some")
	}
	t.Logf("%.0f%% loss: all 50 peers have all 50 blocks %d ticks after the last injection; commits: %d by push, %d by pull, %d by state transfer",
		loss*100, net.now-start, viaPush, viaPull, viaState)
}

// A peer that joins late (empty ledger) catches up by state transfer.
func TestLateJoinerCatchesUp(t *testing.T) {
	cfg := DefaultConfig()
	net := convergedNet(t, 10, cfg, 10)
	chain := makeChain(testOrderer, 200, 10)
	for _, b := range chain {
		net.inject(0, b)
	}
	late := net.add(10, "org1", cfg, 1)
	late.p.AddBootstrap(peerOf(net.peers[0]))
	net.collect(late)
	net.deliver()
	for range 200 {
		if late.p.Height() == uint64(len(chain)) {
			break
		}
		net.tick()
	}
	if late.p.Height() != uint64(len(chain)) {
		t.Fatalf("late joiner at height %d of %d", late.p.Height(), len(chain))
	}
	checkPrefix(t, late, chain)
}

// One leader per org emerges and every peer agrees on it.
func TestOneLeaderPerOrg(t *testing.T) {
	cfg := DefaultConfig()
	net := newSimNet(t, 11)
	for i := range 20 {
		org := "org1"
		if i%2 == 1 {
			org = "org2"
		}
		net.add(i, org, cfg, 1)
	}
	net.bootstrapAll()
	net.ticks(cfg.Election.StartupGrace + cfg.Election.ElectionDuration + 20)
	leaders := map[string]map[[32]byte]bool{"org1": {}, "org2": {}}
	selfLeaders := map[string]int{}
	for _, sp := range net.peers {
		l, ok := sp.p.Leader()
		if !ok {
			t.Fatalf("peer %d knows no leader", sp.idx)
		}
		leaders[sp.p.self.Org][l] = true
		if sp.p.IsLeader() {
			selfLeaders[sp.p.self.Org]++
		}
	}
	for org, ls := range leaders {
		if len(ls) != 1 || selfLeaders[org] != 1 {
			t.Fatalf("%s: %d leaders seen, %d peers think they lead", org, len(ls), selfLeaders[org])
		}
	}
}

// A peer cut off for a while comes back: the next pushed block leaves a
// gap in its buffer, and with PullOnGap it pulls the missing blocks a
// graft timeout plus a pull round trip later instead of waiting for its
// next scheduled round (PullInterval).
func TestPullOnGapCatchesUpWithinARoundTrip(t *testing.T) {
	catchUp := func(onGap bool) int {
		cfg := DefaultConfig()
		cfg.PullOnGap = onGap
		cfg.IHaveDelay = 0         // announcements go out while the victim is down, and are lost
		cfg.Pull.PullInterval = 50 // far from the bound below either way
		net := seededNet(t, 20, cfg, 34)
		chain := makeChain(testOrderer, 16, 34)
		for _, b := range chain[:5] {
			net.inject(0, b)
			net.tick()
		}
		victim := net.peers[7]
		victim.down = true
		for _, b := range chain[5:15] {
			net.inject(0, b)
		}
		victim.down = false
		net.inject(0, chain[15])
		start := net.now
		for victim.p.Height() < uint64(len(chain)) && net.now < start+200 {
			net.tick()
		}
		if victim.p.Height() != uint64(len(chain)) {
			t.Fatalf("onGap %v: victim at height %d of %d after 200 ticks", onGap, victim.p.Height(), len(chain))
		}
		checkPrefix(t, victim, chain)
		return net.now - start
	}
	fast, slow := catchUp(true), catchUp(false)
	t.Logf("caught up %d ticks after the gap with PullOnGap, %d without", fast, slow)
	cfg := DefaultConfig()
	if bound := cfg.GraftTimeout + cfg.Pull.DigestWait + 4; fast > bound {
		t.Fatalf("PullOnGap: caught up after %d ticks, want <= %d", fast, bound)
	}
}
