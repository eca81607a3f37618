package gossip

import (
	"testing"
	"testing/synctest"
	"time"

	"github.com/blockgossip/blockgossip/comm"
	"github.com/blockgossip/blockgossip/identity"
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

// A running Node wakes for the pull engine's timers between ticks, as for
// the tree's: PullSoon between ticks starts the round at the next 20 ms
// sub-tick, not at the tick 100 ms in, and a re-hello follows a round
// trip later, again between ticks. Virtual time (synctest: runTestNode);
// the malformed envelope at 10 ms is only there to wake the Node's loop.
func TestNodeRunsPullTimersBetweenTicks(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		cfg := DefaultConfig()
		_, p, _ := graftPeer(t, cfg, 65, 2)
		if p.pull.PullSoon(); !p.pull.Soon() {
			t.Fatal("PullSoon did not bring the round forward (a round under way, or due at the next tick)")
		}
		tr := &lockedTransport{queueTransport: queueTransport{self: p.self.ID, in: make(chan comm.Message, 8)}}
		start := runTestNode(t, cfg, p, tr, 60*time.Millisecond,
			timedInput{10 * time.Millisecond, comm.Message{From: fakeID(1), Org: "org1", Env: &pb.Envelope{Payload: []byte{0xff}}, Size: 1}})
		want := cfg.TickInterval / time.Duration(cfg.TreeResolution)
		at := tr.sentSince(start, func(_ identity.PKIID, msg *pb.GossipMessage) bool { return msg.GetPullHello() != nil })
		// Nobody answers: the round says hello to the one other member a
		// round trip (ReaskAfterSub sub-ticks) later.
		again := want + time.Duration(cfg.Pull.ReaskAfterSub)*want
		if len(at) != 4 || at[0] != want || at[2] != want || at[3] != again {
			t.Fatalf("hellos at %v after the start, want 3 at %v and one at %v", at, want, again)
		}
	})
}
