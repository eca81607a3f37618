package pull

import (
	"testing"

	pb "github.com/blockgossip/blockgossip/protos"
	"google.golang.org/protobuf/proto"
)

// Three liars and two honest peers: the newcomer still catches up, and
// over 1,000 ticks of a growing chain each liar is asked only a handful of
// times, because its cooldown doubles with every strike (the CometBFT
// CVE-2025-24371 syncer chased such a peer forever).
func TestLiarsAreAskedRarely(t *testing.T) {
	s := newSim(t, 6, 2, DefaultConfig())
	s.chain.extend(1000)
	s.feed(0)
	s.feed(1)
	liars := []*simNode{s.addNode(DefaultConfig(), silent), s.addNode(DefaultConfig(), emptyish), s.addNode(DefaultConfig(), silent)}
	newcomer := s.addNode(DefaultConfig(), honest)
	asked := make(map[[2]int]int) // state requests delivered, by asker and liar
	s.onDeliver = func(from, to int, msg *pb.GossipMessage) {
		if msg.GetStateRequest() != nil && s.nodes[to].kind != honest {
			asked[[2]int{from, to}]++
		}
	}
	ticks := s.runUntilConverged(400)
	s.report("catch-up 1000 blocks from 2 honest peers beside 3 liars", ticks)
	for range 1000 { // then a block every tick, fed to the honest peers
		s.chain.extend(len(s.chain.blocks) + 1)
		s.feed(0)
		s.feed(1)
		s.step()
	}
	s.runUntilConverged(50)
	for pair, n := range asked {
		if n > 8 {
			t.Errorf("peer %d asked liar %d %d times in %d ticks; doubling cooldowns should keep it under 8",
				pair[0], pair[1], n, s.tick)
		}
	}
	for _, l := range liars {
		i := s.index[l.id]
		t.Logf("liar %d (kind %d): asked %d times by the newcomer in %d ticks",
			i, l.kind, asked[[2]int{s.index[newcomer.id], i}], s.tick)
	}
	if st := newcomer.eng.Stats(); st.StateBlocksReceived < 900 {
		t.Errorf("newcomer got %d blocks by state transfer", st.StateBlocksReceived)
	}
}

// A peer that serves tampered blocks is reported by the caller's
// verification (ReportInvalid), put in cooldown, and the blocks are fetched
// again from honest peers.
func TestCorruptPeerIsRoutedAround(t *testing.T) {
	s := newSim(t, 7, 3, DefaultConfig())
	s.chain.extend(600)
	for i := range 3 {
		s.feed(i)
	}
	bad := s.nodes[2]
	for n, b := range bad.store.blocks { // same headers, other transactions
		c := proto.Clone(b).(*pb.Block)
		c.Data.Transactions = [][]byte{[]byte("forged")}
		bad.store.blocks[n] = c
	}
	bad.kind = corrupt
	newcomer := s.addNode(DefaultConfig(), honest)
	ticks := s.runUntilConverged(400)
	s.report("catch-up 600 blocks beside a peer serving forged blocks", ticks)
	if s.invalid == 0 {
		t.Fatal("the forged blocks were never served; the test proves nothing")
	}
	if !newcomer.eng.Cooling(bad.id) && newcomer.eng.peers[bad.id].strikes == 0 {
		t.Error("corrupt peer not penalised")
	}
	t.Logf("%d forged blocks rejected", s.invalid)
}

// A height that goes down within one incarnation is a lie; a restart (new
// incarnation) or a return after dropping out is not.
func TestHeightDecrease(t *testing.T) {
	e, _ := newTestEngine(t, DefaultConfig(), 0)
	p := pid(9)
	tick := func(h, inc uint64) { e.Tick([]PeerInfo{{ID: p, Height: h, Incarnation: inc}}) }
	tick(100, 1)
	tick(120, 1)
	if e.Cooling(p) {
		t.Fatal("growing height penalised")
	}
	tick(110, 2) // restarted
	if e.Cooling(p) {
		t.Fatal("new incarnation penalised")
	}
	tick(100, 1) // stale news from the old incarnation: ignored
	if e.Cooling(p) || e.peers[p].height != 110 {
		t.Fatalf("stale incarnation: cooling %v height %d", e.Cooling(p), e.peers[p].height)
	}
	e.Tick(nil) // dropped out for a tick
	tick(50, 2)
	if e.Cooling(p) {
		t.Fatal("return after dropping out penalised")
	}
	tick(40, 2)
	if !e.Cooling(p) {
		t.Fatal("height decrease within an incarnation not penalised")
	}
}
