package gossip

import (
	"testing"

	pb "github.com/blockgossip/blockgossip/protos"
)

// A peer that joins a formed tree picks eager neighbours from the
// membership it was told and asks each to push to it (an empty Graft).
// When such a neighbour has not heard of the joiner yet, the request must
// not be lost: once the joiner's alive arrives, the link takes effect (as
// a lazy link: the joiner hears IHaves and grafts), so the joiner gets
// blocks by push (pull is off here) instead of being nobody's child.
func TestLinkRequestFromAnUnknownJoinerTakesEffectOnceItIsKnown(t *testing.T) {
	cfg := DefaultConfig()
	cfg.PullEnabled = false
	const n = 20
	net := seededNet(t, n, cfg, 7)
	chain := makeChain(testOrderer, 12, 7)
	for _, b := range chain[:4] {
		net.inject(0, b)
		net.ticks(cfg.GraftTimeout + 1)
	}

	// The joiner learns everybody from one membership response; nobody
	// has heard of it yet.
	jc := cfg
	jc.AliveInterval, jc.Expiration = 200, 1000 // as seededNet's peers
	joiner := net.add(n, "org1", jc, 1)
	resp := &pb.MembershipResponse{}
	for _, sp := range net.peers[:n] {
		resp.Alive = append(resp.Alive, sp.p.aliveEnvelope())
	}
	joiner.p.Step(net.peers[0].p.self.ID, "", envelope(&pb.GossipMessage{Content: &pb.GossipMessage_MembershipResponse{MembershipResponse: resp}}), 0)
	net.collect(joiner)
	net.deliver()
	net.tick() // its first tick picks neighbours and sends the link requests
	linked := 0
	for _, sp := range net.peers[:n] {
		if _, ok := sp.p.eager.pos[joiner.p.self.ID]; ok {
			linked++
		}
	}
	if linked != 0 {
		t.Fatalf("setup: %d peers took the joiner as eager neighbour before knowing it", linked)
	}

	// Now everybody hears the joiner's alive.
	alive := &pb.MembershipResponse{Alive: []*pb.Envelope{joiner.p.aliveEnvelope()}}
	for _, sp := range net.peers[:n] {
		sp.p.Step(joiner.p.self.ID, "org1", envelope(&pb.GossipMessage{Content: &pb.GossipMessage_MembershipResponse{MembershipResponse: alive}}), 0)
		net.collect(sp)
	}
	net.deliver()
	net.ticks(2)

	// The joiner's ledger starts empty and pull is off, so give it the
	// blocks cut before it joined, then cut the rest.
	for _, b := range chain[:4] {
		_ = joiner.p.InjectBlock(b)
		net.collect(joiner)
	}
	net.deliver()
	pushed := len(joiner.commits)
	for _, b := range chain[4:] {
		net.inject(0, b)
		net.ticks(cfg.GraftTimeout + 1)
	}
	if got := len(joiner.commits) - pushed; got != len(chain)-4 {
		t.Fatalf("the joiner got %d of %d blocks by push: its link requests to peers that did not know it yet were lost", got, len(chain)-4)
	}
}
