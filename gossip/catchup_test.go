package gossip

import (
	"testing"

	pb "github.com/blockgossip/blockgossip/protos"
	"google.golang.org/protobuf/proto"
)

// A restarted peer that knows from membership who holds the blocks it
// missed asks the range of two holders directly (pull.Config.CatchUpPeers)
// at its first tick: caught up in one round trip, even with one of the
// two answers lost.
func TestRestartedPeerCatchesUpInOneRoundTrip(t *testing.T) {
	const victim = 5
	run := func(cfg Config) (*simPeer, *simNet) {
		net := seededNet(t, 8, cfg, 71)
		net.peers[victim].down = true
		chain := makeChain(testOrderer, 20, 71)
		for _, b := range chain {
			net.inject(0, b)
		}
		net.ticks(2)
		// It comes back with an empty ledger and learns the members, with
		// their heights (a fresh alive each), from a membership response.
		for _, q := range net.peers {
			if !q.down {
				q.p.seq++
				q.p.signAlive()
			}
		}
		sp := net.add(victim, "org1", cfg, 2)
		net.seedMembership()
		lost := false
		net.filter = func(m simMsg) bool {
			msg := new(pb.GossipMessage)
			if m.to != sp.p.self.ID || proto.Unmarshal(m.env.GetPayload(), msg) != nil || msg.GetStateResponse() == nil || lost {
				return true
			}
			lost = true // the first answer is lost
			return false
		}
		net.tick()
		return sp, net
	}
	cfg := DefaultConfig()
	sp, _ := run(cfg)
	if h := sp.p.Height(); h != 20 {
		t.Fatalf("restarted peer at height %d after its first tick, want 20", h)
	}
	if st := sp.p.PullStats(); st.CatchUpRequests != 2 || st.StateBlocksReceived != 20 {
		t.Fatalf("catch-up requests %d, blocks by state %d; want 2 and 20", st.CatchUpRequests, st.StateBlocksReceived)
	}

	// Fabric's state transfer (more than 10 blocks behind) asks one batch
	// of 10 at a time of one peer: the lost answer waits out its timeout.
	fabric := FabricConfig()
	fabric.Pull.PullInterval = 10
	sp, _ = run(fabric)
	if st := sp.p.PullStats(); st.CatchUpRequests != 0 || st.StateRequestsSent != 1 || sp.p.Height() != 0 {
		t.Fatalf("Fabric: %d catch-up, %d state requests, height %d after the first tick; want 0, 1, 0",
			st.CatchUpRequests, st.StateRequestsSent, sp.p.Height())
	}
}
