package pull

import (
	"slices"
	"testing"

	"github.com/blockgossip/blockgossip/identity"
	"github.com/blockgossip/blockgossip/ledger"
	pb "github.com/blockgossip/blockgossip/protos"
)

// Issue 11: pull's timers on the caller's sub-tick clock (SetSubTicks),
// and catch-up of the range right above our height without a digest
// round trip. Every test drives one engine by hand at 5 sub-ticks per
// tick (gossip's default TreeResolution: 20 ms sub-ticks).

const res = 5

// subEngine is an engine at height h over a chain of 200 blocks, on a
// 5-sub-tick clock.
func subEngine(t *testing.T, cfg Config, h int) (*Engine, *memStore, *chain) {
	t.Helper()
	e, st := newTestEngine(t, cfg, h)
	c := newChain(1) // the same blocks newTestEngine stored
	c.extend(200)
	e.SetSubTicks(res)
	return e, st, c
}

func holders(h uint64, ids ...byte) []PeerInfo {
	var live []PeerInfo
	for _, i := range ids {
		live = append(live, PeerInfo{ID: pid(i), Height: h})
	}
	return live
}

func digestFor(h Out, from, to uint64) *pb.GossipMessage {
	return &pb.GossipMessage{Content: &pb.GossipMessage_PullDigest{PullDigest: &pb.PullDigest{
		Nonce: h.Msg.GetPullHello().GetNonce(), Ranges: writeSpans([]span{{from, to}})}}}
}

func only[T any](outs []Out, get func(*pb.GossipMessage) *T) []Out {
	var got []Out
	for _, o := range outs {
		if get(o.Msg) != nil {
			got = append(got, o)
		}
	}
	return got
}

func pullRequests(outs []Out) []Out {
	return only(outs, (*pb.GossipMessage).GetPullRequest)
}

func stateRequests(outs []Out) []Out {
	return only(outs, (*pb.GossipMessage).GetStateRequest)
}

func numbers(ranges []*pb.BlockRange) []uint64 {
	var ns []uint64
	for _, rg := range ranges {
		for n := rg.GetStart(); n < rg.GetEnd(); n++ {
			ns = append(ns, n)
		}
	}
	return ns
}

func num(t *testing.T, b *pb.Block) uint64 {
	hdr, err := ledger.ParseHeader(b)
	if err != nil {
		t.Fatal(err)
	}
	return hdr.GetNumber()
}

// With one digest lost, the request goes out DigestGraceSub (one) sub-tick
// after the first digest, within the tick: NextDeadline says when, and
// SubTick sends it. On whole ticks it waited for the next tick.
func TestRequestWithinASubTickOfTheDigests(t *testing.T) {
	e, _, _ := subEngine(t, pullOnly(), 100)
	live := holders(160, 1, 2, 3)
	hellos := e.Tick(live)
	if len(hellos) != 3 {
		t.Fatalf("%d hellos at start-up, want 3", len(hellos))
	}
	if k, ok := e.NextDeadline(); !ok || k != e.reaskT.ticks() {
		t.Fatalf("before any digest: deadline %d, %v; want the hello's answer deadline %d", k, ok, e.reaskT.ticks())
	}
	e.Advance(1)
	for _, h := range hellos[:2] { // the third digest is lost
		if outs, _ := e.Step(h.To, digestFor(h, 40, 160)); len(outs) != 0 {
			t.Fatalf("requested with a digest missing: %v", outs)
		}
	}
	k, ok := e.NextDeadline()
	if !ok || k != 2 {
		t.Fatalf("NextDeadline = %d, %v after the digests at sub-tick 1; want 2, true", k, ok)
	}
	reqs := pullRequests(e.SubTick(k))
	var asked []uint64
	for _, r := range reqs {
		asked = append(asked, numbers(r.Msg.GetPullRequest().GetRanges())...)
	}
	if len(reqs) != 2 || len(asked) != 60 {
		t.Fatalf("sub-tick 2: %d requests for %d blocks, want 2 for the 60 missing", len(reqs), len(asked))
	}
}

// A lost request or response is re-asked after the measured round trip
// (plus a sub-tick of rounding), within the tick, of another responder of
// the round: here the answers take two sub-ticks, so the re-ask goes two
// sub-ticks after the request, 40 ms where whole ticks took 100-200 ms.
func TestLostResponseReaskedAfterARoundTrip(t *testing.T) {
	e, st, c := subEngine(t, pullOnly(), 100)
	live := holders(160, 1, 2, 3)
	hellos := e.Tick(live)
	e.Advance(1)
	var reqs []Out
	for _, h := range hellos {
		outs, _ := e.Step(h.To, digestFor(h, 40, 160))
		reqs = append(reqs, outs...)
	}
	if len(reqs) != 3 {
		t.Fatalf("%d requests once every digest is in, want 3", len(reqs))
	}
	// The first responder answers at sub-tick 2: a round trip of 2 sub-ticks.
	e.Advance(2)
	first := reqs[0]
	var blocks []*pb.Block
	for _, n := range numbers(first.Msg.GetPullRequest().GetRanges()) {
		blocks = append(blocks, c.blocks[n])
	}
	_, got := e.Step(first.To, &pb.GossipMessage{Content: &pb.GossipMessage_PullResponse{PullResponse: &pb.PullResponse{
		Nonce: first.Msg.GetPullRequest().GetNonce(), Blocks: blocks}}})
	for _, r := range got {
		st.blocks[num(t, r.Block)] = r.Block
	}
	k, ok := e.NextDeadline()
	if !ok || k != 1+e.reaskT.ticks() || k >= res {
		t.Fatalf("re-ask deadline %d, %v; want sub-tick %d of this tick (request at 1, answers in 2)", k, ok, 1+e.reaskT.ticks())
	}
	if outs := e.SubTick(k - 1); len(pullRequests(outs)) != 0 {
		t.Fatalf("re-asked before the deadline: %v", outs)
	}
	var reasked []uint64
	for _, r := range pullRequests(e.SubTick(k)) {
		if r.To == reqs[1].To || r.To == reqs[2].To {
			t.Fatalf("re-asked of a responder whose answer is missing (%v)", r.To)
		}
		reasked = append(reasked, numbers(r.Msg.GetPullRequest().GetRanges())...)
	}
	want := len(numbers(reqs[1].Msg.GetPullRequest().GetRanges())) + len(numbers(reqs[2].Msg.GetPullRequest().GetRanges()))
	if len(reasked) == 0 || len(reasked) > want || e.Stats().PullReasks != uint64(len(reasked)) {
		t.Fatalf("re-asked %d blocks (stats %d); want the missing ones (%d) that the first responder may take",
			len(reasked), e.Stats().PullReasks, want)
	}
}

// A round whose hellos all went unanswered (lost, or to peers that are
// down) says hello to other peers after a round trip, once, instead of
// waiting out DigestWait and the next round.
func TestSilentRoundSaysHelloToOthers(t *testing.T) {
	e, _, _ := subEngine(t, pullOnly(), 100)
	live := holders(160, 1, 2, 3, 4, 5, 6)
	hellos := e.Tick(live)
	k, ok := e.NextDeadline()
	if !ok || k != e.reaskT.ticks() {
		t.Fatalf("NextDeadline %d, %v; want the answers' deadline %d", k, ok, e.reaskT.ticks())
	}
	again := only(e.SubTick(k), (*pb.GossipMessage).GetPullHello)
	if len(again) != 3 {
		t.Fatalf("%d hellos again at sub-tick %d, want 3", len(again), k)
	}
	first := map[identity.PKIID]bool{}
	for _, h := range hellos {
		first[h.To] = true
	}
	for _, h := range again {
		if first[h.To] || h.Msg.GetPullHello().GetNonce() != hellos[0].Msg.GetPullHello().GetNonce() {
			t.Fatalf("hello again to %v (nonce %x): want another peer, same round", h.To, h.Msg.GetPullHello().GetNonce())
		}
	}
	if _, ok := e.NextDeadline(); ok {
		t.Fatal("a third hello is pending; want once per round")
	}
	// A digest from the second set starts the request as usual.
	e.Advance(k + 1)
	e.Step(again[0].To, digestFor(again[0], 40, 160))
	if k2, ok := e.NextDeadline(); !ok || k2 != k+2 {
		t.Fatalf("after a digest at sub-tick %d: deadline %d, %v, want %d", k+1, k2, ok, k+2)
	}
}

// A silent round of a peer that knows it is behind (PullSoon: a block far
// past its height came in meanwhile) says hello to others again at each
// answers' deadline, up to maxRehellos times, each time to peers not yet
// asked: a restarted peer whose first hellos and hellos again all failed
// waited out DigestWait and its next round.
func TestSilentRoundOfAPeerBehindSaysHelloAgainAndAgain(t *testing.T) {
	for _, behind := range []bool{true, false} {
		e, _, _ := subEngine(t, pullOnly(), 100)
		live := holders(160, 1, 2, 3, 4, 5, 6, 7, 8, 9, 10, 11, 12, 13, 14)
		first := e.Tick(live)
		nonce := first[0].Msg.GetPullHello().GetNonce()
		last := res // the first hellos went out at tick 1
		asked := map[identity.PKIID]bool{}
		for _, h := range first {
			asked[h.To] = true
		}
		if behind {
			e.PullSoon()
		}
		var batches []int     // hellos again of the round, per sub-tick that sent any
		for tick := range 3 { // three ticks: well past three answers' deadlines
			for k := 1; k <= res; k++ {
				var outs []Out
				if k < res {
					outs = e.SubTick(k)
				} else {
					outs = e.Tick(live) // the next tick's first sub-tick
				}
				n := 0
				for _, h := range only(outs, (*pb.GossipMessage).GetPullHello) {
					if h.Msg.GetPullHello().GetNonce() != nonce {
						continue
					}
					if asked[h.To] {
						t.Fatalf("behind %v: hello again to %v, asked before", behind, h.To)
					}
					asked[h.To] = true
					n++
				}
				if at := (tick+1)*res + k; n > 0 {
					if at-last < e.reaskT.ticks() {
						t.Fatalf("behind %v: hellos again at sub-tick %d, %d after the last: want the answers' deadline (%d) between", behind, at, at-last, e.reaskT.ticks())
					}
					batches, last = append(batches, n), at
				}
			}
		}
		want := []int{3}
		if behind {
			want = slices.Repeat(want, maxRehellos)
		}
		if !slices.Equal(batches, want) {
			t.Fatalf("behind %v: hellos again in batches %v, want %v", behind, batches, want)
		}
	}
}

// The second hellos of a silent round go to near peers not yet asked
// while there are enough of them: on a busy host digests are merely late
// and this fires in many rounds, and a hello to a far peer opens a stream
// (a TLS handshake at both ends) that stays open.
func TestSilentRoundSaysHelloToNearPeersFirst(t *testing.T) {
	e, _, _ := subEngine(t, pullOnly(), 100)
	live := holders(160, 1, 2, 3, 4, 5, 6, 7, 8, 9, 10, 11, 12, 13, 14, 15, 16, 17, 18, 19, 20)
	near := map[identity.PKIID]bool{}
	for i := range 6 { // peers 1..6: at least 3 left after the round's
		live[i].Near = true
		near[live[i].ID] = true
	}
	e.Tick(live) // the first round is a far round: one hello may go anywhere
	k, _ := e.NextDeadline()
	again := only(e.SubTick(k), (*pb.GossipMessage).GetPullHello)
	if len(again) != 3 {
		t.Fatalf("%d hellos again, want 3", len(again))
	}
	for _, h := range again {
		if !near[h.To] {
			t.Errorf("hello again to far peer %v while near peers were left unasked", h.To)
		}
	}
}

// A peer behind asks the range right above its height of two holders at
// once, without hellos' round trip; when both answers are late it asks two
// others, once; a range one block ahead (the newest may be on its way by
// push) is left alone.
func TestCatchUpAsksTwoHoldersDirectly(t *testing.T) {
	e, st, c := subEngine(t, DefaultConfig(), 40)
	if outs := stateRequests(e.Tick(holders(41, 1, 2, 3, 4))); len(outs) != 0 {
		t.Fatalf("one block behind: %d state requests, want none", len(outs))
	}
	live := holders(60, 1, 2, 3, 4)
	asks := stateRequests(e.Tick(live))
	if len(asks) != 2 || asks[0].To == asks[1].To {
		t.Fatalf("%d state requests, want 2 to two holders", len(asks))
	}
	for _, a := range asks {
		if rg := a.Msg.GetStateRequest().GetRange(); rg.GetStart() != 40 || rg.GetEnd() != 60 {
			t.Fatalf("asked [%d, %d), want [40, 60)", rg.GetStart(), rg.GetEnd())
		}
	}
	// Both lost: asked again of the two others at the answers' deadline.
	k, ok := e.NextDeadline()
	if !ok || k != e.stateT.ticks() {
		t.Fatalf("NextDeadline %d, %v; want the state answers' deadline %d", k, ok, e.stateT.ticks())
	}
	if outs := stateRequests(e.SubTick(k - 1)); len(outs) != 0 {
		t.Fatalf("asked again before the deadline: %d", len(outs))
	}
	again := stateRequests(e.SubTick(k))
	if len(again) != 2 {
		t.Fatalf("%d requests at the deadline, want 2", len(again))
	}
	for _, a := range again {
		if a.To == asks[0].To || a.To == asks[1].To {
			t.Fatalf("asked %v again; want the other holders", a.To)
		}
	}
	if outs := stateRequests(e.SubTick(res - 1)); len(outs) != 0 {
		t.Fatalf("a third ask within the tick: %d", len(outs))
	}
	// One answer serves the range; no ask follows, and the late twins
	// time out without a strike (their messages were lost, not refused).
	e.Advance(res - 1)
	var blocks []*pb.Block
	for n := 40; n < 60; n++ {
		blocks = append(blocks, c.blocks[n])
	}
	outs, got := e.Step(again[0].To, &pb.GossipMessage{Content: &pb.GossipMessage_StateResponse{StateResponse: &pb.StateResponse{
		Nonce: again[0].Msg.GetStateRequest().GetNonce(), Blocks: blocks, Height: 60}}})
	if len(got) != 20 || len(stateRequests(outs)) != 0 {
		t.Fatalf("got %d blocks and %d requests, want 20 and none", len(got), len(stateRequests(outs)))
	}
	for _, r := range got {
		st.blocks[num(t, r.Block)] = r.Block
	}
	st.height = 60
	e.OnCommitted(60)
	if k, ok := e.NextDeadline(); ok { // the unanswered twins ask for nothing we lack
		t.Fatalf("caught up, yet a deadline at sub-tick %d", k)
	}
	for range e.cfg.StateTimeout + 1 {
		if outs := stateRequests(e.Tick(live)); len(outs) != 0 {
			t.Fatalf("caught up, yet %d state requests", len(outs))
		}
	}
	if s := e.Stats(); s.Strikes != 0 || s.CatchUpRequests != 4 || len(e.states) != 0 {
		t.Fatalf("strikes %d, catch-up requests %d, in flight %d; want 0, 4, 0", s.Strikes, s.CatchUpRequests, len(e.states))
	}
}

// Fabric's profile keeps whole ticks and no catch-up: nothing is due
// between ticks, and a peer behind asks nothing before its pull round.
func TestFabricHasNoSubTickTimers(t *testing.T) {
	cfg := FabricConfig()
	e, _, _ := subEngine(t, cfg, 40)
	for range 3 { // 5 blocks behind: below Fabric's state-transfer threshold (10)
		if outs := e.Tick(holders(45, 1, 2, 3)); len(stateRequests(outs)) != 0 {
			t.Fatal("Fabric asked the range directly")
		}
		if k, ok := e.NextDeadline(); ok {
			t.Fatalf("Fabric: a sub-tick deadline (%d)", k)
		}
	}
}

// A digest that comes in after the round's request (the first digests
// offered only part of the gap: a responder catching up itself) is asked
// at once for the blocks nobody was asked for, not left to the next round.
func TestLateDigestAskedForWhatNobodyWas(t *testing.T) {
	e, _, _ := subEngine(t, pullOnly(), 100)
	hellos := e.Tick(holders(160, 1, 2, 3))
	e.Advance(1)
	e.Step(hellos[0].To, digestFor(hellos[0], 150, 160))
	reqs := pullRequests(e.SubTick(2)) // DigestGraceSub after the first digest
	if len(reqs) != 1 || len(numbers(reqs[0].Msg.GetPullRequest().GetRanges())) != 10 {
		t.Fatalf("%d requests at the grace's end, want one for [150, 160)", len(reqs))
	}
	e.Advance(3)
	outs, _ := e.Step(hellos[1].To, digestFor(hellos[1], 40, 160))
	late := pullRequests(outs)
	if len(late) != 1 || late[0].To != hellos[1].To {
		t.Fatalf("late digest: %d requests, want one to its sender", len(late))
	}
	if got := numbers(late[0].Msg.GetPullRequest().GetRanges()); len(got) != 50 || got[0] != 100 || got[49] != 149 {
		t.Fatalf("late digest asked %v, want [100, 150): only what nobody was asked for", got)
	}
	// A third digest finds nothing left to ask.
	if outs, _ := e.Step(hellos[2].To, digestFor(hellos[2], 40, 160)); len(pullRequests(outs)) != 0 {
		t.Fatalf("third digest: %d requests, want none", len(pullRequests(outs)))
	}
}

// A timer the engine cannot act on (a hedge due with no other peer to ask)
// is not reported again at the sub-tick it just ran at: a caller that
// wakes at NextDeadline never spins.
func TestNextDeadlineNeverRepeatsASubTick(t *testing.T) {
	cfg := DefaultConfig()
	cfg.StateTransferThreshold = 5 // 20 blocks behind: state transfer
	e, _, _ := subEngine(t, cfg, 40)
	live := holders(60, 1) // one holder: nobody to hedge with
	if asks := stateRequests(e.Tick(live)); len(asks) == 0 {
		t.Fatal("no state request")
	}
	for k := 1; k < res; k++ {
		if d, ok := e.NextDeadline(); ok && d < k {
			t.Fatalf("after the timers ran at sub-tick %d: deadline %d", k-1, d)
		}
		e.SubTick(k)
	}
	if d, ok := e.NextDeadline(); ok {
		t.Fatalf("after the tick's last sub-tick: deadline %d", d)
	}
}
