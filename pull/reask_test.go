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

// harnessConfig is DefaultConfig for the harness, which delivers a message
// a tick after it is sent: an answer takes two ticks, where a LAN takes
// milliseconds, so re-asking after one whole tick would re-ask everything.
// Catch-up is off: these tests are about pull rounds (subtick_test.go has
// the direct asks, which would fetch the range first).
func harnessConfig() Config {
	cfg := pullOnly()
	cfg.ReaskAfter = 2
	return cfg
}

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
	cfg := harnessConfig()
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
// first tick that lists one, even with an empty ledger (a peer that
// crashed before its first commit).
func TestStartupPullWaitsForLivePeers(t *testing.T) {
	cfg := pullOnly()
	e, _ := newTestEngine(t, cfg, 40)
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
	e, _ = newTestEngine(t, cfg, 0)
	if outs := e.Tick(live); len(outs) != 3 {
		t.Fatalf("empty ledger: %d messages at the first tick, want 3 hellos", len(outs))
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
	cfg := harnessConfig()
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
// blocks are freed and a new round, with fresh digests, starts at once
// instead of PullInterval later.
func TestFailedReaskStartsANewRound(t *testing.T) {
	cfg := harnessConfig()
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
	s.runUntilConverged(cfg.PullInterval - 10)
	var asks []sentReq
	for _, r := range reqs.sent {
		if slices.Contains(r.blocks, victim) {
			asks = append(asks, r)
		}
	}
	if len(asks) != 3 || asks[1].nonce != asks[0].nonce || asks[2].nonce == asks[0].nonce {
		t.Fatalf("block %d asked %+v; want twice in its round (ask, re-ask), then in a new round", victim, asks)
	}
	// The re-ask's answer is late after ReaskAfter whole ticks; then
	// hello, digest and request take three hops.
	if gap := asks[2].tick - asks[1].tick; gap > cfg.ReaskAfter+1+3 {
		t.Errorf("new round asked %d ticks after the lost re-ask, want <= %d", gap, cfg.ReaskAfter+4)
	}
	if st := nd.eng.Stats(); st.Strikes != 0 {
		t.Errorf("%d strikes for lost messages", st.Strikes)
	}
}

// An answer that arrives after its blocks were re-asked elsewhere is
// still an answer we asked for: taken (the caller dedupes), no strike.
func TestLateAnswerIsNoStrike(t *testing.T) {
	cfg := harnessConfig()
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

// The re-ask deadline rises at once to fit an answer that came late, comes
// back down to ReaskAfter as answers come in time, never reaches
// NonceTTL, and stays off without ReaskAfter.
func TestReaskTimerAdapts(t *testing.T) {
	cfg := DefaultConfig()
	cfg.ReaskAfter, cfg.NonceTTL = 1, 20
	rt := newReaskTimer(cfg.ReaskAfter, cfg.NonceTTL-1)
	if rt.ticks() != 1 {
		t.Fatalf("starts at %d, want ReaskAfter 1", rt.ticks())
	}
	rt.answered(4)
	if rt.ticks() != 4 {
		t.Fatalf("after a 4-tick answer: %d, want 4", rt.ticks())
	}
	steps := 0
	for ; rt.ticks() > 1; steps++ {
		rt.answered(1)
	}
	if steps < 16 || steps > 64 {
		t.Errorf("back to 1 tick after %d answers in time, want a gradual decay (16-64)", steps)
	}
	rt.answered(1000)
	if rt.ticks() != cfg.NonceTTL-1 {
		t.Errorf("capped at %d, want NonceTTL-1 = %d", rt.ticks(), cfg.NonceTTL-1)
	}
	cfg.ReaskAfter = 0
	rt = newReaskTimer(cfg.ReaskAfter, cfg.NonceTTL-1)
	if rt.answered(5); rt.ticks() != 0 {
		t.Errorf("re-asking off, yet the timer moved to %d", rt.ticks())
	}
}

// On slow links (the harness takes two ticks per answer) the default
// one-tick re-ask adapts after the first needless re-ask, so a loss-free
// run costs about what it did without re-asking.
func TestNeedlessReasksStop(t *testing.T) {
	s := newSim(t, 2, 20, DefaultConfig())
	for range 60 {
		s.chain.extend(len(s.chain.blocks) + 1)
		s.feed(0)
		s.step()
	}
	s.runUntilConverged(100)
	var reasks uint64
	for _, nd := range s.nodes {
		reasks += nd.eng.Stats().PullReasks
		if got := nd.eng.reaskT.ticks(); got != 2 && nd.eng.Stats().PullRequestsSent > 0 {
			t.Errorf("re-ask deadline %d ticks, want 2 (the harness round trip)", got)
		}
	}
	// Each engine re-asks needlessly at most once: one request's blocks.
	if limit := uint64(19 * DefaultConfig().MaxBlocksPerResponse); reasks > limit {
		t.Errorf("%d blocks re-asked without loss, want at most %d", reasks, limit)
	}
	t.Logf("%d blocks re-asked needlessly by 19 engines", reasks)
}

// A lost digest costs DigestGrace ticks, not DigestWait, and a digest that
// comes after the request still serves a re-ask.
func TestLostDigestDoesNotHoldTheRound(t *testing.T) {
	cfg := pullOnly()
	cfg.DigestWait = 5
	e, _ := newTestEngine(t, cfg, 100)
	live := []PeerInfo{{ID: pid(1), Height: 160}, {ID: pid(2), Height: 160}, {ID: pid(3), Height: 160}}
	hellos := e.Tick(live) // PullOnStart: a round at the first tick
	if len(hellos) != 3 {
		t.Fatalf("%d hellos at the first tick, want 3", len(hellos))
	}
	digest := func(h Out) *pb.GossipMessage {
		return &pb.GossipMessage{Content: &pb.GossipMessage_PullDigest{PullDigest: &pb.PullDigest{
			Nonce: h.Msg.GetPullHello().GetNonce(), Ranges: writeSpans([]span{{40, 160}})}}}
	}
	for _, h := range hellos[:2] {
		if outs, _ := e.Step(h.To, digest(h)); len(outs) != 0 {
			t.Fatalf("requested with a digest missing: %v", outs)
		}
	}
	reqs := e.Tick(live)
	asked := map[uint64]bool{}
	for _, r := range reqs {
		if r.Msg.GetPullHello() != nil {
			continue // the next regular round may start at any tick
		}
		if r.To == hellos[2].To || r.Msg.GetPullRequest() == nil {
			t.Fatalf("unexpected %v to %v", r.Msg, r.To)
		}
		for _, rg := range r.Msg.GetPullRequest().GetRanges() {
			for n := rg.GetStart(); n < rg.GetEnd(); n++ {
				asked[n] = true
			}
		}
	}
	if len(asked) != 60 {
		t.Fatalf("tick after the first digests: %d blocks asked, want the 60 missing", len(asked))
	}
	// The third digest comes late; the first two responders never answer.
	if outs, _ := e.Step(hellos[2].To, digest(hellos[2])); len(outs) != 0 {
		t.Fatalf("a late digest started a second request: %v", outs)
	}
	var reask []Out
	for range cfg.ReaskAfter { // asked at a tick: due ReaskAfter ticks later
		reask = append(reask, e.Tick(live)...)
	}
	n := 0
	for _, r := range reask {
		if r.Msg.GetPullHello() != nil {
			continue
		}
		if r.To != hellos[2].To || r.Msg.GetPullRequest() == nil {
			t.Fatalf("re-ask %v to %v, want a request to the late digest's sender", r.Msg, r.To)
		}
		for _, rg := range r.Msg.GetPullRequest().GetRanges() {
			n += int(rg.GetEnd() - rg.GetStart())
		}
	}
	if n != 60 || e.Stats().PullReasks != 60 {
		t.Errorf("re-asked %d blocks (stats %d), want all 60 of the late digest's sender", n, e.Stats().PullReasks)
	}
}

// A lost state response is hedged once the state answers' deadline passes
// (a few ticks), not after half of StateTimeout with a free slot (which a
// full pipeline never has: the range then waited out StateTimeout).
func TestLostStateResponseIsHedged(t *testing.T) {
	run := func(cfg Config) (ticks int, st Stats) {
		s := newSim(t, 4, 4, cfg)
		s.chain.extend(1000)
		for i := range 4 {
			s.feed(i)
		}
		nd := s.addNode(cfg, honest)
		lost := false
		s.drop = func(env envelope, msg *pb.GossipMessage) bool {
			if env.to == 4 && msg.GetStateResponse() != nil && !lost {
				lost = true
				return true
			}
			return false
		}
		ticks = s.runUntilConverged(400)
		return ticks, nd.eng.Stats()
	}
	fast, st := run(harnessConfig())
	cfg := harnessConfig()
	cfg.ReaskAfter = 0
	slow, st0 := run(cfg)
	t.Logf("1,000 blocks, first state response lost: %d ticks (%d hedges), %d without adaptive hedging (%d hedges, %d timeouts)",
		fast, st.StateHedges, slow, st0.StateHedges, st0.StateTimeouts)
	// The hedge goes ReaskAfter (2) ticks after the request instead of
	// StateTimeout/2 (5): three ticks saved.
	if st.StateHedges == 0 || fast+3 > slow {
		t.Errorf("caught up in %d ticks with %d hedges, %d without: want a hedge and 3 ticks saved",
			fast, st.StateHedges, slow)
	}
	if st.StateHedges > 3 {
		t.Errorf("%d hedges for one lost response", st.StateHedges)
	}
}

// A lost request whose blocks nobody else in the round offered frees
// them; while the round's other requests are in flight no new round may
// start, and once they are answered one does, at once, rather than at the
// next regular round. Here peer 0 alone holds [50, 60), peers 1 and 2
// hold [0, 50), and the restarted peer 3 holds [0, 40): its request to
// peer 0 is lost, and the answer of its other request comes late (held
// past the re-ask deadline, so that [40, 50) is re-asked and in flight
// when [50, 60) is freed).
func TestBlocksFreedWhileRequestsInFlightStartARoundOnceAnswered(t *testing.T) {
	cfg := harnessConfig()
	cfg.PullInterval = 40
	s := newSim(t, 11, 3, cfg)
	s.chain.extend(60)
	s.feed(0)
	for i := 1; i < 3; i++ {
		for n := range 50 {
			s.accept(s.nodes[i], Received{Block: s.chain.blocks[n]})
		}
	}
	nd := s.addNode(cfg, honest)
	for n := range 40 {
		s.accept(nd, Received{Block: s.chain.blocks[n]})
	}
	var reqs requests
	reqs.watch(s, 3, func(r sentReq, before []sentReq) bool {
		return len(before) < 2 && r.to == 0 && slices.Contains(r.blocks, 50) // the first round's request to peer 0
	})
	watch := s.drop
	var held []envelope
	s.drop = func(env envelope, msg *pb.GossipMessage) bool {
		if env.to == 3 && env.from != 0 && msg.GetPullResponse() != nil && len(held) == 0 {
			held = append(held, env)
			return true
		}
		return watch(env, msg)
	}
	for s.tick < 10 && len(held) == 0 {
		s.step()
	}
	if len(held) == 0 || len(reqs.sent) < 2 || !slices.ContainsFunc(reqs.sent[:2], func(r sentReq) bool { return r.dropped }) {
		t.Fatalf("requests %+v, %d answers held: the test needs the first round's request to peer 0 lost, and the other's answer held", reqs.sent, len(held))
	}
	for range cfg.ReaskAfter + 1 {
		s.step() // past the re-ask deadline: [50, 60) is freed while a re-ask of [40, 50) is in flight
	}
	s.queue = append(s.queue, held...) // the late answer, taken
	s.runUntilConverged(cfg.PullInterval - 10)
	last := reqs.sent[len(reqs.sent)-1]
	if last.nonce == reqs.sent[0].nonce || !slices.Contains(last.blocks, 50) {
		t.Fatalf("requests %+v: want [50, 60) asked in a new round", reqs.sent)
	}
	for _, r := range reqs.sent[:len(reqs.sent)-1] {
		if r.nonce != reqs.sent[0].nonce {
			t.Fatalf("requests %+v: a second new round", reqs.sent)
		}
	}
	// The lost request's re-ask deadline (ReaskAfter), the re-ask of
	// [40, 50) answered (two hops), then hello, digest and request.
	lost := reqs.sent[0].tick
	if gap := last.tick - lost; gap > cfg.ReaskAfter+1+2+3 {
		t.Errorf("[50, 60) asked again %d ticks after the lost request, want <= %d (PullInterval is %d)", gap, cfg.ReaskAfter+6, cfg.PullInterval)
	}
}
