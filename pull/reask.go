package pull

import "slices"

// Re-asking lost pull requests: a request or its answer lost costs a few
// ticks and one request to another responder, not a round.

// reaskTimer is how many sub-ticks (see SetSubTicks) a request may go
// unanswered before it is asked again elsewhere (a pull request re-asked, a
// state request hedged): ReaskAfter (ReaskAfterSub), raised at once to fit
// an answer that took longer (a slow link, a big response: asking again was
// needless), then back down by 1/16 of the excess with each answer, like
// gossip's graft timeout. A slow or lying responder can raise it to its
// limit (NonceTTL-1 ticks for pull, StateTimeout-1 for state) at most: the
// behaviour without it.
type reaskTimer struct {
	base, max int
	fp        int // sub-ticks x 16
}

// newReaskTimer starts at base sub-ticks (0: off) and never exceeds limit.
func newReaskTimer(base, limit int) reaskTimer {
	return reaskTimer{base: base, max: max(limit, base), fp: base * 16}
}

// ticks is the current deadline, in sub-ticks (whole ticks at resolution 1).
func (t *reaskTimer) ticks() int { return (t.fp + 15) / 16 }

// answered records an answer that needed a deadline of need sub-ticks.
func (t *reaskTimer) answered(need int) {
	if t.base == 0 {
		return // re-asking is off
	}
	need = min(max(need, 1), t.max) * 16
	if need > t.fp {
		t.fp = need
		return
	}
	if floor := max(need, t.base*16); t.fp > floor {
		t.fp -= max(1, (t.fp-floor)/16)
	}
}

// sentAt stamps a request sent now, on the fine clock: at resolution 1, a
// request sent between two ticks (from Step) counts from the next tick, so
// that every request gets at least ReaskAfter whole ticks to be answered;
// with sub-ticks the caller has Advanced the clock to the sub-tick it is in.
func (e *Engine) sentAt() int {
	if e.ticking || e.res > 1 {
		return e.sub
	}
	return e.sub + 1
}

// pullAgain starts the round that blocks freed while another request of
// the round was in flight wait for, once no round is under way: the
// answers in flight may not bring them (nobody but the lost request's
// responder offered them), and without it they waited for the next
// regular round (a restarted 100-peer simulator peer whose request for
// blocks 12-18 was lost got 12-15 by re-ask, and 16-18 438 ms after its
// restart).
func (e *Engine) pullAgain() {
	if e.again && !e.pulling() {
		e.again = false
		e.PullSoon()
	}
}

// reask handles round r's requests that went reaskT.ticks() without an
// answer (lost, or their answer was): each block they still lack is asked
// of one other responder of the round that offered it, once per round.
// That responder must have no request of ours in flight, a request left on
// its digest (requestsPerDigest) and be out of cooldown; consecutive
// blocks go to the same one, up to MaxBlocksPerResponse. A block nobody
// else can serve, or already re-asked, is freed, and a new round (fresh
// digests: responders may have crashed) starts at once unless one is under
// way: a block someone offered and we failed to get twice is worth a round
// trip, not PullInterval. A late answer is still taken: the caller drops
// whichever copy comes second.
func (e *Engine) reask(r *round) []Out {
	var lost []uint64
	for id, a := range r.assigned {
		if a.late || e.sub < a.sent+e.reaskT.ticks() {
			continue
		}
		a.late = true
		for n := range a.blocks {
			if prev, again := r.reasked[n]; !again || prev == id {
				lost = append(lost, n)
			}
		}
	}
	if len(lost) == 0 {
		return nil
	}
	freed := false
	slices.Sort(lost) // map order must not reach the rng or the wire
	asks := make([][]span, len(r.digests))
	load := make([]int, len(r.digests))
	prev := -1
	for _, n := range lost {
		if e.store.Have(n) {
			continue
		}
		if _, again := r.reasked[n]; again {
			delete(e.pending, n) // its second responder failed too
			freed = true
			continue
		}
		usable := func(i int) bool {
			d := r.digests[i]
			return r.assigned[d.from] == nil && r.requests[d.from] < requestsPerDigest && !e.Cooling(d.from) &&
				load[i] < e.cfg.MaxBlocksPerResponse && spansHave(d.spans, n)
		}
		best := -1
		if prev >= 0 && usable(prev) {
			best = prev // keep ranges contiguous
		} else {
			for i := range r.digests {
				if usable(i) && (best < 0 || load[i] < load[best]) {
					best = i
				}
			}
		}
		var ok bool
		if best >= 0 {
			asks[best], ok = addNum(asks[best], n, e.cfg.MaxRanges)
		}
		if !ok {
			delete(e.pending, n) // nobody else offered it: the next round asks again
			freed = true
			continue
		}
		prev = best
		load[best]++
		r.reasked[n] = r.digests[best].from
		e.pending[n] = e.now + e.cfg.NonceTTL
		e.stats.PullReasks++
	}
	for i, d := range r.digests {
		if len(asks[i]) > 0 {
			a := &ask{blocks: make(map[uint64]bool), sent: e.sentAt()}
			for _, s := range asks[i] {
				for n := s.start; n < s.end; n++ {
					a.blocks[n] = true
				}
			}
			r.assigned[d.from] = a
		}
	}
	if freed && !e.pulling() {
		e.nextPull = min(e.nextPull, e.now) // tickPull starts it this very tick ...
		e.soon = !e.ticking && e.res > 1    // ... or SubTick this very sub-tick
	} else if freed {
		e.again = true // once the other requests are answered or late (pullAgain)
	}
	return e.sendAsks(r, asks)
}
