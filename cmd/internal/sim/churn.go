package sim

import (
	"slices"

	"github.com/blockgossip/blockgossip/cmd/internal/bench"
	"github.com/blockgossip/blockgossip/gossip"
)

// The churn measures. time_to_last_ms counts every peer, so under churn it
// includes the downtime of a crashed peer: a peer down when a block is cut
// commits it only after it restarts. Two measures split that apart:
//
//   - Live time to last (time_to_last_live_ms): per block, cut to commit at
//     the last peer that was up during the whole window from the cut until
//     it committed the block. A peer down at any moment of that window (at
//     the cut, or crashed before it committed) is left out of that block's
//     figure and counted in live_excluded_pairs instead. A peer that
//     restarted before the cut is live for the block: if it is still
//     catching up, its in-order commit of the new block waits, and that
//     wait shows here.
//   - Catch-up time (catch_up_ms): per restart, restart to the moment the
//     peer has committed every block cut before the restart (0 if it
//     already had them all).
//
// delivery_ratio is unchanged and still counts every (peer, block) pair:
// every block must reach every peer, restarted ones included.

// downSpan is one crash of a peer: down from from until to (virtual ns;
// to is -1 while the peer is still down). churn also uses it for a
// restarted peer's catch-up: catching up from its restart until to.
type downSpan struct {
	peer     int32
	from, to int64
}

// restart is one restart of a peer, with how many blocks had been cut
// before it: the blocks it must have to be caught up.
type restart struct {
	peer int32
	at   int64
	need int
}

// LiveTail is the commit that set a block's live time to last: which peer
// was last, how it got the block, and how that peer stood with churn.
type LiveTail struct {
	Block uint64  `json:"block"`
	Peer  int     `json:"peer"`
	Ms    float64 `json:"ms"`
	Via   string  `json:"via"`
	// RestartedMsBeforeCut and CaughtUpMsAfterCut: when the peer was
	// still catching up at the cut, it had restarted this long before the
	// cut and finished catching up this long after it (-1 and -1: it was
	// not catching up).
	RestartedMsBeforeCut float64 `json:"restarted_ms_before_cut"`
	CaughtUpMsAfterCut   float64 `json:"caught_up_ms_after_cut"`
}

// liveTailBlocks is how many of the slowest blocks Result.LiveTail lists.
const liveTailBlocks = 3

// churnFigures are the figures computed from the crash and restart record.
type churnFigures struct {
	live       bench.Percentiles
	samples    []float64
	incomplete int
	excluded   int
	// steady: as live, without the peers still catching up at the cut.
	steady        bench.Percentiles
	catchingPairs int
	tail          []LiveTail
	restarts      int
	catchUpInc    int
	catchUp       bench.Percentiles
}

// churn computes the live time to last and the catch-up times from the
// cuts, the deliveries, the down spans and the restarts.
func (w *world) churn() churnFigures {
	var f churnFigures
	peers, blocks := len(w.nodes), len(w.cuts)
	const never = -1
	commit := make([]int64, peers*blocks) // peer*blocks+number -> commit time, or never
	via := make([]gossip.Via, peers*blocks)
	for i := range commit {
		commit[i] = never
	}
	for _, d := range w.deliveries {
		if int(d.Number) >= blocks {
			continue
		}
		if k := d.Peer*blocks + int(d.Number); commit[k] == never {
			commit[k], via[k] = d.At.UnixNano(), d.Via
		}
	}
	spans := make(map[int32][]downSpan, len(w.downs))
	for _, s := range w.downs {
		if s.to < 0 {
			s.to = w.now + 1 // still down at the end of the run
		}
		spans[s.peer] = append(spans[s.peer], s)
	}
	end := w.now + 1
	// down reports whether peer p was down at any moment of [from, to].
	down := func(p int32, from, to int64) bool {
		for _, s := range spans[p] {
			if s.from <= to && s.to > from {
				return true
			}
		}
		return false
	}

	// Catch-up first: the live tail and the steady figure refer to it.
	// A restarted peer is catching up from its restart until it has every
	// block cut before it (until the end of the run if it never has).
	catching := make(map[int32][]downSpan, len(w.restarts))
	var cu []float64
	for _, r := range w.restarts {
		f.restarts++
		done := r.at
		if r.need > 0 {
			// Commits are in order: the last block cut before the restart
			// is the last one the peer needs.
			t := commit[int(r.peer)*blocks+r.need-1]
			if t == never || down(r.peer, r.at, t) {
				f.catchUpInc++
				catching[r.peer] = append(catching[r.peer], downSpan{r.peer, r.at, end})
				continue
			}
			done = max(t, r.at)
		}
		catching[r.peer] = append(catching[r.peer], downSpan{r.peer, r.at, done})
		cu = append(cu, ms(done-r.at))
	}
	slices.Sort(cu)
	f.catchUp = percentiles(cu)
	// catchingAt returns the catch-up span peer p was in at time t.
	catchingAt := func(p int32, t int64) (downSpan, bool) {
		for _, s := range catching[p] {
			if s.from <= t && t < s.to {
				return s, true
			}
		}
		return downSpan{}, false
	}

	var steady []float64
	for b := range blocks {
		cut := w.cuts[b].At.UnixNano()
		last, lastSteady, lastPeer, complete := int64(-1), int64(-1), -1, true
		for p := range peers {
			t := commit[p*blocks+b]
			if down(int32(p), cut, tOr(t, end)) {
				f.excluded++
				continue
			}
			if t == never {
				complete = false
				continue
			}
			if t-cut > last {
				last, lastPeer = t-cut, p
			}
			if _, c := catchingAt(int32(p), cut); c {
				f.catchingPairs++
			} else {
				lastSteady = max(lastSteady, t-cut)
			}
		}
		if !complete {
			f.incomplete++
			continue
		}
		f.samples = append(f.samples, ms(last))
		steady = append(steady, ms(lastSteady))
		tail := LiveTail{Block: uint64(b), Peer: lastPeer, Ms: ms(last), Via: via[lastPeer*blocks+b].String(),
			RestartedMsBeforeCut: -1, CaughtUpMsAfterCut: -1}
		if s, c := catchingAt(int32(lastPeer), cut); c {
			tail.RestartedMsBeforeCut, tail.CaughtUpMsAfterCut = ms(cut-s.from), ms(s.to-cut)
		}
		f.tail = append(f.tail, tail)
	}
	slices.Sort(steady)
	f.steady = percentiles(steady)
	f.samples = append([]float64{}, f.samples...)
	slices.Sort(f.samples)
	f.live = percentiles(f.samples)
	// The slowest blocks first; ties by block number, so the order is fixed.
	slices.SortStableFunc(f.tail, func(a, b LiveTail) int {
		switch {
		case a.Ms > b.Ms:
			return -1
		case a.Ms < b.Ms:
			return 1
		}
		return 0
	})
	f.tail = append([]LiveTail{}, f.tail[:min(len(f.tail), liveTailBlocks)]...) // [] rather than null in the JSON
	return f
}

func tOr(t, otherwise int64) int64 {
	if t < 0 {
		return otherwise
	}
	return t
}

func ms(ns int64) float64 { return float64(ns) / 1e6 }

func percentiles(sorted []float64) bench.Percentiles {
	return bench.Percentiles{
		P50: bench.NearestRank(sorted, 50), P90: bench.NearestRank(sorted, 90),
		P99: bench.NearestRank(sorted, 99), Max: bench.NearestRank(sorted, 100),
	}
}
