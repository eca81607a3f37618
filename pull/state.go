package pull

import (
	"github.com/blockgossip/blockgossip/identity"
	"github.com/blockgossip/blockgossip/ledger"
	pb "github.com/blockgossip/blockgossip/protos"
)

// stateReq is a state request in flight: blocks [start, end) asked from
// peer, answer due before deadline.
type stateReq struct {
	peer       identity.PKIID
	start, end uint64
	sent       int  // sub-tick it was out (sentAt)
	deadline   int  // tick
	hedged     bool // asked again elsewhere (or is itself the second ask)
	catchUp    bool // one of catchUp's asks of the range right above our height
	reasked    bool // catchUp asked its range again after it went unanswered
}

// tickState times out overdue requests (a strike for the peer; the range
// is asked elsewhere at once), hedges the request that blocks our next
// commit, and tops the pipeline up.
func (e *Engine) tickState() []Out {
	h := e.store.Height()
	for _, nonce := range sortedKeys(e.states) {
		if s := e.states[nonce]; e.now >= s.deadline {
			delete(e.states, nonce)
			if s.catchUp && s.end <= h {
				continue // its twin served the range: a lost message, not a silent peer
			}
			e.stats.StateTimeouts++
			e.strike(s.peer)
		}
	}
	out := append(e.hedge(), e.planState(span{})...)
	return append(out, e.catchUp(span{})...)
}

// hedge asks a second peer for the range holding our next block to commit
// once its answer is late: with the pipeline bounded by Lookahead, a peer
// that is slow (or silent), or a lost message, on that one range would
// otherwise hold all of catch-up back. First answer wins; the caller drops
// the duplicates. With ReaskAfter set, "late" is the state answers' own
// adaptive deadline (see reaskTimer) and the hedge may exceed MaxInFlight
// by one; without it (Fabric), half StateTimeout and a free slot.
func (e *Engine) hedge() []Out {
	h := e.store.Height()
	late, slots := e.cfg.StateTimeout/2*e.res, e.cfg.MaxInFlight
	if e.cfg.ReaskAfter > 0 {
		late, slots = e.stateT.ticks(), e.cfg.MaxInFlight+1
	}
	for _, nonce := range sortedKeys(e.states) {
		s := e.states[nonce]
		if s.hedged || h < s.start || h >= s.end || e.sub < s.sent+late || len(e.states) >= slots {
			continue
		}
		peer, ok := e.pickStatePeer(h, s.peer)
		if !ok {
			return nil
		}
		s.hedged = true
		e.stats.StateHedges++
		return []Out{e.askState(peer, h, min(s.end, e.peers[peer].height), true)}
	}
	return nil
}

// askState records a state request for [start, end) to peer and returns it.
func (e *Engine) askState(peer identity.PKIID, start, end uint64, hedged bool) Out {
	nonce := e.newNonce()
	e.states[nonce] = &stateReq{peer: peer, start: start, end: end, sent: e.sentAt(),
		deadline: e.now + e.cfg.StateTimeout, hedged: hedged}
	e.stats.StateRequestsSent++
	return Out{peer, &pb.GossipMessage{Content: &pb.GossipMessage_StateRequest{
		StateRequest: &pb.StateRequest{Nonce: nonce, Range: &pb.BlockRange{Start: start, End: end}}}}}
}

// syncing reports whether a peer out of cooldown is more than
// StateTransferThreshold blocks ahead of us.
func (e *Engine) syncing(h uint64) bool {
	return len(e.usable(h+e.cfg.StateTransferThreshold+1)) > 0
}

// planState keeps up to MaxInFlight state requests in flight while we are
// far behind (requests in flight finish either way; once within the
// threshold, pull's digests cover the gap and push delivers the tip). Each
// asks the lowest blocks neither here, nor asked, nor in skip (blocks just
// handed to the caller), up to BatchSize of them and
// never beyond Height+Lookahead, from a random usable peer whose height
// covers the range start, preferring peers with fewer requests in flight.
func (e *Engine) planState(skip span) []Out {
	h := e.store.Height()
	if e.cfg.MaxInFlight == 0 || !e.syncing(h) {
		return nil
	}
	var out []Out
	limit := h + e.cfg.Lookahead
	for n := h; len(e.states) < e.cfg.MaxInFlight; {
		n = e.nextMissing(n, limit, skip)
		if n >= limit {
			break
		}
		peer, ok := e.pickStatePeer(n, e.self)
		if !ok {
			break
		}
		end := min(n+e.cfg.BatchSize, limit, e.peers[peer].height)
		for _, s := range e.states { // stop short of the next range in flight
			if s.start > n && s.start < end {
				end = s.start
			}
		}
		out = append(out, e.askState(peer, n, end, false))
		n = end
	}
	return out
}

// nextMissing returns the lowest block >= n and < limit that is not here,
// not asked for and not in skip, or limit.
func (e *Engine) nextMissing(n, limit uint64, skip span) uint64 {
next:
	for n < limit {
		if skip.start <= n && n < skip.end {
			n = skip.end
			continue
		}
		for _, s := range e.states {
			if s.start <= n && n < s.end {
				n = s.end
				continue next
			}
		}
		if _, asked := e.pending[n]; !asked && !e.store.Have(n) {
			return n
		}
		n++
	}
	return limit
}

// pickStatePeer picks, among usable peers (but not exclude) whose height is
// above n, one of those with the fewest state requests in flight, at
// random. A peer with strikes gets one request at a time until an answer
// clears them.
func (e *Engine) pickStatePeer(n uint64, exclude identity.PKIID) (identity.PKIID, bool) {
	load := make(map[identity.PKIID]int)
	for _, s := range e.states {
		load[s.peer]++
	}
	var best []identity.PKIID
	for _, id := range e.usable(n + 1) {
		if id == exclude || (e.peers[id].strikes > 0 && load[id] > 0) {
			continue // on probation: one request at a time until it serves
		}
		switch {
		case len(best) == 0 || load[id] < load[best[0]]:
			best = append(best[:0], id)
		case load[id] == load[best[0]]:
			best = append(best, id)
		}
	}
	if len(best) == 0 {
		return identity.PKIID{}, false
	}
	return best[e.rng.IntN(len(best))], true
}

// onStateRequest serves contiguous committed blocks from the requested
// range start, at most BatchSize blocks and MaxResponseBytes bytes.
func (e *Engine) onStateRequest(from identity.PKIID, req *pb.StateRequest) []Out {
	if req.GetNonce() == 0 {
		e.stats.Dropped++
		return nil
	}
	h := e.store.Height()
	start, end := req.GetRange().GetStart(), min(req.GetRange().GetEnd(), h)
	var blocks []*pb.Block
	if start < end {
		end = min(end, start+e.cfg.BatchSize)
		blocks = e.collect([]span{{start, end}}, int(e.cfg.BatchSize))
	}
	e.stats.StateBlocksServed += uint64(len(blocks))
	return []Out{{from, &pb.GossipMessage{Content: &pb.GossipMessage_StateResponse{
		StateResponse: &pb.StateResponse{Nonce: req.GetNonce(), Blocks: blocks, Height: h}}}}}
}

// onStateResponse takes the blocks that continue the asked range from its
// start, then plans the next requests so that catch-up streams. A peer
// that answers out of range, or empty while claiming the blocks, or with a
// height below what it advertised, gets a strike; a short but honest
// answer (the byte cap) just leaves the rest to be asked again.
func (e *Engine) onStateResponse(from identity.PKIID, resp *pb.StateResponse) ([]Out, []Received) {
	s := e.states[resp.GetNonce()]
	if s == nil || s.peer != from {
		e.stats.Dropped++
		return nil, nil
	}
	delete(e.states, resp.GetNonce())
	e.stateT.answered(e.sub - s.sent + 1)
	advertised := uint64(0)
	if p := e.peers[from]; p != nil {
		advertised = p.height
	}
	var got []Received
	next, lied := s.start, resp.GetHeight() < advertised
	for _, b := range resp.GetBlocks() {
		hdr, err := ledger.ParseHeader(b)
		if err != nil || hdr.GetNumber() != next || next >= s.end {
			lied = true
			break
		}
		if !e.store.Have(next) {
			got = append(got, Received{from, b, ViaState})
		}
		next++
	}
	claimed := max(advertised, resp.GetHeight())
	switch {
	case lied || (next == s.start && claimed > s.start):
		e.strike(from)
	case next > s.start:
		e.clear(from)
	}
	e.stats.StateBlocksReceived += uint64(len(got))
	skip := span{s.start, next}
	return append(e.planState(skip), e.catchUp(skip)...), got
}
