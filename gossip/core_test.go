package gossip

import (
	"testing"

	"go.uber.org/goleak"
	"google.golang.org/protobuf/proto"

	pb "github.com/blockgossip/blockgossip/protos"
)

func TestMain(m *testing.M) { goleak.VerifyTestMain(m) }

// newNet builds n peers of one org with cfg and bootstraps them from peer 0.
func newNet(t testing.TB, n int, cfg Config, seed uint64) *simNet {
	net := newSimNet(t, seed)
	for i := range n {
		net.add(i, "org1", cfg, 1)
	}
	return net
}

func TestMembershipConverges(t *testing.T) {
	cfg := DefaultConfig()
	cfg.PullEnabled = false
	net := newNet(t, 100, cfg, 1)
	net.bootstrapAll()
	const limit = 3 * 20 // three alive rounds (AliveInterval = 20 ticks)
	for net.now < limit && !net.converged() {
		net.tick()
	}
	if !net.converged() {
		t.Fatalf("membership of 100 peers not converged after %d ticks", limit)
	}
	t.Logf("100 peers converged after %d ticks (%d messages)", net.now, net.sent)
}

// convergedNet returns a 100-peer network whose membership has converged.
func convergedNet(t testing.TB, n int, cfg Config, seed uint64) *simNet {
	net := newNet(t, n, cfg, seed)
	net.bootstrapAll()
	for net.now < 200 && !net.converged() {
		net.tick()
	}
	if !net.converged() {
		t.Fatalf("membership not converged after %d ticks", net.now)
	}
	return net
}

// seededNet returns n peers that know each other from the start (no
// convergence phase) and send few alives: for tests about blocks.
func seededNet(t testing.TB, n int, cfg Config, seed uint64) *simNet {
	cfg.AliveInterval, cfg.Expiration = 200, 1000 // quiet membership: nobody expires during the test
	net := newNet(t, n, cfg, seed)
	net.seedMembership()
	if !net.converged() {
		t.Fatal("seeded membership incomplete")
	}
	return net
}

func TestPushWithFullFanoutReachesEveryPeerInOrder(t *testing.T) {
	cfg := DefaultConfig()
	cfg.PullEnabled = false
	cfg.Fanout = 100 // >= N: the injector's push reaches everybody
	cfg.MaxHops = 1  // so nobody re-forwards: N messages a block, not N^2
	net := seededNet(t, 100, cfg, 2)
	chain := makeChain(testOrderer, 50, 2)
	for _, b := range chain {
		net.inject(0, b)
	}
	for _, sp := range net.peers {
		if len(sp.commits) != len(chain) {
			t.Fatalf("peer %d committed %d of %d blocks", sp.idx, len(sp.commits), len(chain))
		}
		checkPrefix(t, sp, chain)
	}
}

func TestFabricPushOnceNeverForksOrReorders(t *testing.T) {
	cfg := FabricConfig()
	cfg.PullEnabled = false
	net := seededNet(t, 100, cfg, 3)
	chain := makeChain(testOrderer, 50, 3)
	// Deliver the blocks in a shuffled order to the injector as well, so
	// that the reorder buffer is exercised on every peer.
	order := net.rng.Perm(len(chain))
	for _, i := range order {
		net.inject(0, chain[i])
	}
	if got := len(net.peers[0].commits); got != len(chain) {
		t.Fatalf("injector committed %d of %d", got, len(chain))
	}
	full := 0
	for _, sp := range net.peers {
		checkPrefix(t, sp, chain)
		if len(sp.commits) == len(chain) {
			full++
		}
	}
	t.Logf("push once to 3, no pull: %d of 100 peers have all 50 blocks", full)
}

// Peers started together do not sync their membership together: the
// first sync falls at a random tick of the second alive round, and the
// later ones every SyncInterval from there. (Before, all 40 peers below
// sent their requests in one tick every SyncInterval, and 40 responses
// of the whole membership were built and read in one tick.)
func TestPeersStartedTogetherSyncAtSpreadTicks(t *testing.T) {
	cfg := DefaultConfig()
	cfg.PullEnabled = false
	net := newNet(t, 40, cfg, 11)
	net.bootstrapAll()
	perTick := map[int]int{}
	net.filter = func(m simMsg) bool {
		msg := new(pb.GossipMessage)
		if proto.Unmarshal(m.env.GetPayload(), msg) == nil && msg.GetMembershipRequest() != nil && len(msg.GetMembershipRequest().GetWant()) == 0 {
			perTick[net.now]++
		}
		return true
	}
	net.ticks(cfg.AliveInterval + cfg.SyncInterval*2)
	if !net.converged() {
		t.Fatal("membership did not converge")
	}
	busiest := 0
	for tick, n := range perTick {
		if tick > 1 { // bootstrap requests go at once
			busiest = max(busiest, n)
		}
	}
	if busiest > 6 {
		t.Fatalf("up to %d of 40 peers synced in the same tick, want them spread (%v)", busiest, perTick)
	}
}
