package gossip

import (
	"testing"

	"github.com/blockgossip/blockgossip/identity"
	pb "github.com/blockgossip/blockgossip/protos"
)

// hellos counts the pull hellos in msgs.
func hellos(msgs []Out) int {
	return countOut(msgs, func(_ identity.PKIID, m *pb.GossipMessage) bool { return m.GetPullHello() != nil })
}

// A block that comes farGap or more past our height starts a pull round at
// the next sub-tick: we fell behind (in the simulator, a peer restarted
// while five blocks were cut, whose first round's hellos went to peers
// that were down or had restarted too, waited for the stall timer, a
// graft timeout and a tick, and the block cut after its restart took 321
// ms to reach it). A block one or two past our height may be a lost copy
// under repair, and waits for the stall timer as before.
func TestFarGapStartsAPullRoundAtOnce(t *testing.T) {
	for _, gap := range []int{farGap, farGap - 1} {
		cfg := lossyConfig()
		cfg.Pull.PullInterval = 50 // no regular round in the test's window
		net := seededNet(t, 5, cfg, 73)
		net.ticks(3) // the start-up rounds are over: nothing to pull yet
		p := net.peers[3].p
		net.collect(net.peers[3])
		chain := makeChain(testOrderer, farGap+1, 73)
		p.Step(fakeID(0), "org1", pushEnv(chain[gap], 1), 0)
		if h := p.Height(); h != 0 {
			t.Fatalf("height %d, want 0 (block %d buffered)", h, gap)
		}
		got := hellos(p.Ready().Messages)
		for k := 1; k < int(p.resolution()); k++ { // the sub-ticks before the next tick
			p.Wake(k)
			got += hellos(p.Ready().Messages)
		}
		if want := gap >= farGap; (got > 0) != want {
			t.Fatalf("block %d at height 0: %d pull hellos before the next tick, want some: %v", gap, got, want)
		}
	}
}
