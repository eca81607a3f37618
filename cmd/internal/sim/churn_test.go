package sim

import (
	"bytes"
	"slices"
	"testing"
	"time"

	"github.com/blockgossip/blockgossip/cmd/internal/bench"
	"github.com/blockgossip/blockgossip/gossip"
)

// A hand-made record of four peers and three blocks, times in ms:
//
//	cuts:   b0 at 100, b1 at 300, b2 at 500
//	peer 0: never crashes; commits b0 110, b1 310, b2 520
//	peer 1: commits b0 120; down 150-350 (b1 cut while down); catches up
//	        slowly: b1 and b2 at 700 (still catching up when b2 is cut)
//	peer 2: down 50-200 (b0 cut while down); b0 210, b1 320, b2 530
//	peer 3: up at b0's cut but down 105-250 before committing it;
//	        b0 260, b1 310, b2 510
func churnRecord() *world {
	at := func(ms int64) time.Time { return time.Unix(0, ms*int64(time.Millisecond)) }
	ns := func(ms int64) int64 { return ms * int64(time.Millisecond) }
	w := &world{nodes: make([]*node, 4), now: ns(800)}
	for k, c := range []int64{100, 300, 500} {
		w.cuts = append(w.cuts, bench.Cut{Number: uint64(k), At: at(c), Bytes: 1000})
	}
	for p, commits := range [][3]int64{{110, 310, 520}, {120, 700, 700}, {210, 320, 530}, {260, 310, 510}} {
		for k, c := range commits {
			w.deliveries = append(w.deliveries, bench.Delivery{Peer: p, Number: uint64(k), At: at(c), Via: gossip.ViaPush})
		}
	}
	w.downs = []downSpan{{2, ns(50), ns(200)}, {3, ns(105), ns(250)}, {1, ns(150), ns(350)}}
	w.restarts = []restart{{2, ns(200), 1}, {3, ns(250), 1}, {1, ns(350), 2}}
	return w
}

// A peer down at any moment between a block's cut and its commit is left
// out of that block's live time to last (down at the cut, or crashed
// before committing), but its commit still counts in the delivery ratio;
// catch-up is restart to committed everything cut before the restart.
func TestLiveMeasureExcludesDownPeers(t *testing.T) {
	w := churnRecord()
	f := w.churn()
	all := bench.Compute(bench.Record{Peers: 4, Planned: 3, Cuts: w.cuts, Deliveries: w.deliveries})
	if all.DeliveryRatio != 1 || all.TimeToLast.Max != 400 {
		t.Fatalf("all peers: delivery %v, time to last max %v; want 1 and 400 ms (peer 1's b1 at 700)", all.DeliveryRatio, all.TimeToLast.Max)
	}
	// b0: peers 0 and 1 (10, 20 ms); b1: peers 0, 2, 3 (10, 20, 10); b2:
	// all four (20, 200, 30, 10).
	if want := []float64{20, 20, 200}; !slices.Equal(f.samples, want) {
		t.Errorf("live samples %v, want %v", f.samples, want)
	}
	if want := (bench.Percentiles{P50: 20, P90: 200, P99: 200, Max: 200}); f.live != want {
		t.Errorf("live %+v, want %+v", f.live, want)
	}
	if f.excluded != 3 || f.incomplete != 0 {
		t.Errorf("%d pairs excluded, %d blocks incomplete; want 3 ((2,b0), (3,b0), (1,b1)) and 0", f.excluded, f.incomplete)
	}
	// Peer 2 caught up at 210 (10 ms), peer 3 at 260 (10 ms), peer 1 at 700 (350 ms).
	if want := (bench.Percentiles{P50: 10, P90: 350, P99: 350, Max: 350}); f.catchUp != want || f.restarts != 3 || f.catchUpInc != 0 {
		t.Errorf("catch-up %+v over %d restarts (%d incomplete), want %+v over 3", f.catchUp, f.restarts, f.catchUpInc, want)
	}
	// Peer 1 was catching up at b2's cut: steady leaves it out (b2: 30 ms).
	if want := (bench.Percentiles{P50: 20, P90: 30, P99: 30, Max: 30}); f.steady != want || f.catchingPairs != 1 {
		t.Errorf("steady %+v with %d catching-up pairs, want %+v and 1", f.steady, f.catchingPairs, want)
	}
	if len(f.tail) != 3 {
		t.Fatalf("tail %+v, want 3 blocks", f.tail)
	}
	if want := (LiveTail{Block: 2, Peer: 1, Ms: 200, Via: "push", RestartedMsBeforeCut: 150, CaughtUpMsAfterCut: 200}); f.tail[0] != want {
		t.Errorf("slowest block %+v, want %+v", f.tail[0], want)
	}
	if want := (LiveTail{Block: 0, Peer: 1, Ms: 20, Via: "push", RestartedMsBeforeCut: -1, CaughtUpMsAfterCut: -1}); f.tail[1] != want {
		t.Errorf("second slowest %+v, want %+v (ties by block number)", f.tail[1], want)
	}
}

// A restarted peer that never gets what was cut before its restart is an
// incomplete catch-up, and a live peer that never commits a block makes
// the block live-incomplete.
func TestLiveMeasureIncomplete(t *testing.T) {
	w := churnRecord()
	// Drop peer 1's commits of b1 and b2 (it is up from 350 to the end)
	// and peer 0's of b2.
	var kept []bench.Delivery
	for _, d := range w.deliveries {
		if !(d.Peer == 1 && d.Number > 0) && !(d.Peer == 0 && d.Number == 2) {
			kept = append(kept, d)
		}
	}
	w.deliveries = kept
	f := w.churn()
	if f.catchUpInc != 1 || f.restarts != 3 {
		t.Errorf("%d incomplete catch-ups of %d, want 1 of 3", f.catchUpInc, f.restarts)
	}
	if f.incomplete != 1 || len(f.samples) != 2 {
		t.Errorf("%d live-incomplete blocks, samples %v; want b2 incomplete", f.incomplete, f.samples)
	}
}

// In a real run with churn: every crashed peer's restart is measured and
// catches up, crashed peers' pairs are left out of the live figure (so it
// is at most time_to_last) yet every block reaches every peer; without
// churn the live figure is time_to_last and nothing is left out.
func TestChurnRunReportsLiveAndCatchUp(t *testing.T) {
	o := small()
	o.Churn = 0.2
	r := runAll(t, o, ProfileDefault)[0]
	if r.DeliveryRatio != 1 || r.LiveIncompleteBlocks != 0 {
		t.Fatalf("delivery %v, %d live-incomplete blocks", r.DeliveryRatio, r.LiveIncompleteBlocks)
	}
	if r.CatchUpRestarts != r.Crashes || r.CatchUpIncomplete != 0 || r.CatchUp.Max <= 0 {
		t.Errorf("catch-up %+v over %d restarts (%d incomplete) for %d crashes", r.CatchUp, r.CatchUpRestarts, r.CatchUpIncomplete, r.Crashes)
	}
	if r.LiveExcludedPairs == 0 || r.LiveExcludedPairs >= r.Crashes*o.Blocks {
		t.Errorf("%d pairs excluded for %d crashes over %d blocks", r.LiveExcludedPairs, r.Crashes, o.Blocks)
	}
	if r.TimeToLastLive.Max > r.TimeToLast.Max || r.TimeToLastSteady.Max > r.TimeToLastLive.Max {
		t.Errorf("live %v, steady %v, all %v: leaving peers out cannot make a block later", r.TimeToLastLive, r.TimeToLastSteady, r.TimeToLast)
	}
	if len(r.LiveTail) == 0 || r.LiveTail[0].Ms != r.TimeToLastLive.Max {
		t.Errorf("tail %+v does not start at the live max %v", r.LiveTail, r.TimeToLastLive.Max)
	}

	o.Churn = 0
	h := runAll(t, o, ProfileDefault)[0]
	if h.TimeToLastLive != h.TimeToLast || h.TimeToLastSteady != h.TimeToLast || h.LiveExcludedPairs != 0 || h.CatchUpRestarts != 0 {
		t.Errorf("without churn: live %v, steady %v, all %v, %d excluded, %d restarts", h.TimeToLastLive, h.TimeToLastSteady, h.TimeToLast, h.LiveExcludedPairs, h.CatchUpRestarts)
	}
	b := marshal(t, []Result{r})
	for _, key := range []string{`"time_to_last_live_ms"`, `"time_to_last_live_samples_ms"`, `"live_incomplete_blocks"`,
		`"live_excluded_pairs"`, `"time_to_last_steady_ms"`, `"live_catching_up_pairs"`, `"live_tail"`,
		`"catch_up_ms"`, `"catch_up_restarts"`, `"catch_up_incomplete"`, `"time_to_last_ms"`} {
		if !bytes.Contains(b, []byte(key)) {
			t.Errorf("JSON lacks %s", key)
		}
	}
}

// With CrashNotice, each crashed peer's tree neighbours are told its
// stream broke (a process killed, not a host lost), and the run still
// delivers every block everywhere; without it nobody is told.
func TestCrashNoticeTellsTheCrashedPeersNeighbours(t *testing.T) {
	o := small()
	o.Churn, o.Loss = 0.2, 0.05
	silent := runAll(t, o, ProfileDefault)[0]
	o.CrashNotice = true
	r := runAll(t, o, ProfileDefault)[0]
	if r.DeliveryRatio != 1 || r.LiveIncompleteBlocks != 0 {
		t.Fatalf("delivery %v, %d live-incomplete blocks", r.DeliveryRatio, r.LiveIncompleteBlocks)
	}
	if r.Crashes == 0 || r.CrashNotices < r.Crashes {
		t.Fatalf("%d notices for %d crashes: every crashed peer has tree neighbours", r.CrashNotices, r.Crashes)
	}
	if silent.CrashNotices != 0 || silent.CrashNotice {
		t.Fatalf("without CrashNotice: %d notices (crash_notice %v)", silent.CrashNotices, silent.CrashNotice)
	}
	b := marshal(t, []Result{r})
	for _, key := range []string{`"crash_notice": true`, `"crash_notices": `} {
		if !bytes.Contains(b, []byte(key)) {
			t.Errorf("JSON lacks %s", key)
		}
	}
}
