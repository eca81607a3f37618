package pull

import (
	"slices"
	"testing"

	pb "github.com/blockgossip/blockgossip/protos"
	"google.golang.org/protobuf/proto"
)

// Catch-up after a restart, and re-asking lost pull requests (issue 11):
// a restarted peer asks at its first tick, and a request or answer lost
// costs ReaskAfter ticks and one request to one other responder, not a
// round.

// restarted builds 3 peers holding blocks [0, 60) and a fourth that comes
// back with [0, 40): a restart with its ledger, 20 blocks cut while down.
func restarted(t *testing.T, cfg Config) (*sim, *simNode) {
	s := newSim(t, 7, 3, cfg)
	s.chain.extend(60)
	for i := range 3 {
		s.feed(i)
	}
	nd := s.addNode(cfg, honest)
	for n := range 40 {
		s.accept(nd, Received{Block: s.chain.blocks[n]})
	}
	return s, nd
}

// hellosFrom counts the hellos queued by node i.
func (s *sim) hellosFrom(i int) int {
	n := 0
	for _, env := range s.queue {
		msg := new(pb.GossipMessage)
		if env.from == i && decode(s.t, env.wire, msg).GetPullHello() != nil {
			n++
		}
	}
	return n
}

func decode(t testing.TB, wire []byte, msg *pb.GossipMessage) *pb.GossipMessage {
	if err := proto.Unmarshal(wire, msg); err != nil {
		t.Fatal(err)
	}
	return msg
}

func TestRestartPullsAtFirstTick(t *testing.T) {
	cfg := DefaultConfig()
	cfg.PullInterval = 40 // the random first round would be ~2 s away on average
	s, nd := restarted(t, cfg)
	s.step()
	if n := s.hellosFrom(3); n != cfg.PullPeers {
		t.Fatalf("restarted peer sent %d hellos at its first tick, want %d", n, cfg.PullPeers)
	}
	// hello, digest, request, response: four one-tick hops.
	if ticks := 1 + s.runUntilConverged(100); ticks > 5 {
		t.Errorf("restarted peer caught up in %d ticks, want 5", ticks)
	}
	if st := nd.eng.Stats(); st.PullBlocksReceived != 20 || st.PullReasks != 0 {
		t.Errorf("received %d blocks by pull, %d re-asked; want the 20 missing, none re-asked (nothing lost)",
			st.PullBlocksReceived, st.PullReasks)
	}

	// Without PullOnStart (Fabric), the first round is the scheduled one.
	cfg.PullOnStart = false
	s, nd = restarted(t, cfg)
	first := nd.eng.nextPull
	for s.tick < first-1 {
		if s.step(); s.hellosFrom(3) != 0 {
			t.Fatalf("hello at tick %d, before the scheduled round at %d", s.tick, first)
		}
	}
	if s.step(); s.hellosFrom(3) != cfg.PullPeers {
		t.Fatalf("no hellos at the scheduled round (tick %d)", first)
	}
}

// A restarted engine that sees no live peer at its first tick asks at the
// first tick that lists one; an empty store is not a restart.
func TestStartupPullWaitsForLivePeers(t *testing.T) {
	e, _ := newTestEngine(t, DefaultConfig(), 40)
	if outs := e.Tick(nil); len(outs) != 0 {
		t.Fatalf("%d messages with no live peer", len(outs))
	}
	live := []PeerInfo{{ID: pid(1), Height: 60}, {ID: pid(2), Height: 60}, {ID: pid(3), Height: 60}}
	if outs := e.Tick(live); len(outs) != 3 || outs[0].Msg.GetPullHello() == nil {
		t.Fatalf("second tick, peers live: %d messages, want 3 hellos", len(outs))
	}
	if e.startup {
		t.Fatal("still in start-up after a round started")
	}
	e, _ = newTestEngine(t, DefaultConfig(), 0)
	e.Tick(live)
	if e.startup {
		t.Fatal("an empty store counted as a restart")
	}
}

// requests records every pull request node i sends (dropped or not), and
// drops those for which lose returns true.
type requests struct {
	sent []sentReq
}

type sentReq struct {
	to, tick int
	nonce    uint64
	blocks   []uint64
	dropped  bool
}

func (r *requests) watch(s *sim, i int, lose func(sentReq, []sentReq) bool) {
	s.drop = func(env envelope, msg *pb.GossipMessage) bool {
		req := msg.GetPullRequest()
		if env.from != i || req == nil {
			return false
		}
		sr := sentReq{to: env.to, tick: s.tick, nonce: req.GetNonce()}
		for _, rg := range req.GetRanges() {
			for n := rg.GetStart(); n < rg.GetEnd(); n++ {
				sr.blocks = append(sr.blocks, n)
			}
		}
		sr.dropped = lose(sr, r.sent)
		r.sent = append(r.sent, sr)
		return sr.dropped
	}
}

// A lost pull request is re-asked, once, of one other responder of the
// round, ReaskAfter ticks later, for exactly the blocks it carried; without
// re-asking the peer waits for the next round.
func TestLostRequestIsReaskedOfAnotherResponder(t *testing.T) {
	cfg := DefaultConfig()
	s, nd := restarted(t, cfg)
	var reqs requests
	reqs.watch(s, 3, func(r sentReq, before []sentReq) bool { return len(before) == 0 })
	ticks := s.runUntilConverged(100)
	if len(reqs.sent) < 2 {
		t.Fatalf("%d requests; the first was lost, want a re-ask", len(reqs.sent))
	}
	lost := reqs.sent[0]
	var reasks []sentReq
	for _, r := range reqs.sent[1:] {
		if r.tick > lost.tick {
			reasks = append(reasks, r)
		}
	}
	if len(reasks) != 1 {
		t.Fatalf("requests after the lost one: %+v, want exactly one re-ask", reasks)
	}
	re := reasks[0]
	switch {
	case re.to == lost.to:
		t.Errorf("re-asked the responder that lost it (%d)", re.to)
	case re.nonce != lost.nonce:
		t.Errorf("re-ask in another round (nonce %d, lost %d)", re.nonce, lost.nonce)
	case !slices.Equal(re.blocks, lost.blocks):
		t.Errorf("re-asked %v, lost %v", re.blocks, lost.blocks)
	case re.tick-lost.tick > cfg.ReaskAfter+1:
		t.Errorf("re-ask %d ticks after the loss, want within ReaskAfter+1 = %d", re.tick-lost.tick, cfg.ReaskAfter+1)
	}
	st := nd.eng.Stats()
	if st.PullReasks != uint64(len(lost.blocks)) || st.Strikes != 0 {
		t.Errorf("%d blocks re-asked, %d strikes; want %d and 0", st.PullReasks, st.Strikes, len(lost.blocks))
	}

	cfg.ReaskAfter = 0
	s, _ = restarted(t, cfg)
	reqs = requests{}
	reqs.watch(s, 3, func(r sentReq, before []sentReq) bool { return len(before) == 0 })
	without := s.runUntilConverged(100)
	t.Logf("caught up in %d ticks with re-ask, %d without", ticks, without)
	if without < cfg.PullInterval || ticks > 8 {
		t.Errorf("caught up in %d ticks with re-ask, %d without: want <= 8 and >= PullInterval", ticks, without)
	}
}

// When the re-ask is lost too, the round asks no more (no storm): the
// blocks are freed, PullSoon is no longer held back by the round, and the
// next round fetches them.
func TestFailedReaskFreesTheBlocks(t *testing.T) {
	cfg := DefaultConfig()
	cfg.PullInterval = 40
	s, nd := restarted(t, cfg)
	var reqs requests
	var victim uint64
	reqs.watch(s, 3, func(r sentReq, before []sentReq) bool {
		if len(before) == 0 {
			victim = r.blocks[0]
			return true
		}
		return r.nonce == before[0].nonce && slices.Contains(r.blocks, victim)
	})
	for range 1 + 3 + 2*cfg.ReaskAfter + 1 {
		s.step()
	}
	round := reqs.sent[0].nonce
	asks := 0
	for _, r := range reqs.sent {
		if r.nonce == round && slices.Contains(r.blocks, victim) {
			asks++
		}
	}
	if asks != 2 {
		t.Fatalf("block %d asked %d times in its round, want 2 (ask, re-ask)", victim, asks)
	}
	if nd.eng.covered(victim) {
		t.Fatalf("block %d still reserved after its re-ask was lost", victim)
	}
	nd.eng.PullSoon()
	s.step()
	if n := s.hellosFrom(3); n == 0 {
		t.Fatal("PullSoon held back by a round whose requests are all late")
	}
	s.runUntilConverged(10)
	if st := nd.eng.Stats(); st.Strikes != 0 {
		t.Errorf("%d strikes for lost messages", st.Strikes)
	}
}

// An answer that arrives after its blocks were re-asked elsewhere is
// still an answer we asked for: taken (the caller dedupes), no strike.
func TestLateAnswerIsNoStrike(t *testing.T) {
	cfg := DefaultConfig()
	s, nd := restarted(t, cfg)
	var held []envelope
	s.drop = func(env envelope, msg *pb.GossipMessage) bool {
		if env.to == 3 && msg.GetPullResponse() != nil && len(held) == 0 {
			held = append(held, env)
			return true
		}
		return false
	}
	s.runUntilConverged(100)
	if len(held) != 1 {
		t.Fatal("no response held back")
	}
	s.queue = append(s.queue, held...)
	s.drop = nil
	s.step()
	st := nd.eng.Stats()
	if st.PullReasks == 0 || st.Strikes != 0 || nd.eng.Cooling(s.nodes[held[0].from].id) {
		t.Errorf("re-asks %d, strikes %d, late responder cooling %v: want >0, 0, false",
			st.PullReasks, st.Strikes, nd.eng.Cooling(s.nodes[held[0].from].id))
	}
}
