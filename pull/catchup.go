package pull

import (
	"slices"

	"github.com/blockgossip/blockgossip/identity"
)

// Catch-up of the range right above our height (Config.CatchUpPeers): a
// peer that is behind, and knows from membership who holds the blocks it
// lacks, asks them directly, skipping the hello/digest round trip. It asks
// two holders at once, so that one lost request or response costs nothing,
// and asks again (two other holders) only once both are late. Bytes stay
// bounded: one range (at most BatchSize blocks, up to the first block we
// already hold) at a time, only while a live peer advertises at least two
// blocks more than we have (the newest one may be on its way by push), and
// not while state transfer (far behind) is streaming, and within the
// state pipeline's bound (MaxInFlight, +1 as for a hedge).

// catchUp asks the range right above our height (or above skip, blocks
// just handed to the caller) of CatchUpPeers holders, unless it is here,
// asked by pull, or asked by a state request that is not yet late.
func (e *Engine) catchUp(skip span) []Out {
	h := e.store.Height()
	if e.cfg.CatchUpPeers == 0 || e.best < h+2 || e.syncing(h) {
		return nil
	}
	start := h
	if skip.start <= start && start < skip.end {
		start = skip.end
	}
	if e.covered(start) && !e.lateCatchUp(start) {
		return nil
	}
	holders := slices.DeleteFunc(e.usable(max(start+1, h+2)), func(id identity.PKIID) bool {
		return e.asking(id, start) // not a peer whose ask of this range is still out
	})
	k := min(e.cfg.CatchUpPeers, e.cfg.MaxInFlight+1-len(e.states)) // the pipeline's bound, +1 as for a hedge
	if len(holders) == 0 || k <= 0 {
		return nil
	}
	for _, s := range e.states { // the late asks are asked again only once
		if s.catchUp && s.start <= start && start < s.end {
			s.reasked = true
		}
	}
	end := start + 1 // up to a block here or asked by pull (the late asks' range is asked again)
	for limit := min(start+e.cfg.BatchSize, h+e.cfg.Lookahead); end < limit && !e.store.Have(end); end++ {
		if _, asked := e.pending[end]; asked {
			break
		}
	}
	var out []Out
	for _, id := range e.sample(holders, k) {
		o := e.askState(id, start, min(end, e.peers[id].height), true)
		e.states[o.Msg.GetStateRequest().GetNonce()].catchUp = true
		out = append(out, o)
	}
	e.stats.CatchUpRequests += uint64(len(out))
	return out
}

// lateCatchUp reports whether block n is covered only by catch-up asks
// that are all late (unanswered past the state answers' deadline) and not
// yet asked again: then catchUp asks once more.
func (e *Engine) lateCatchUp(n uint64) bool {
	if _, asked := e.pending[n]; asked || e.store.Have(n) || e.cfg.ReaskAfter == 0 {
		return false
	}
	late := false
	for _, s := range e.states {
		if s.start <= n && n < s.end {
			if !s.catchUp || s.reasked || e.sub < s.sent+e.stateT.ticks() {
				return false
			}
			late = true
		}
	}
	return late
}

// asking reports whether a state request of ours for block n is out to id.
func (e *Engine) asking(id identity.PKIID, n uint64) bool {
	for _, s := range e.states {
		if s.peer == id && s.start <= n && n < s.end {
			return true
		}
	}
	return false
}
