package pull

import (
	"slices"

	"github.com/blockgossip/blockgossip/identity"
	"github.com/blockgossip/blockgossip/ledger"
	pb "github.com/blockgossip/blockgossip/protos"
)

// round is one pull round we started: hello sent, digests collected, then
// each missing block asked from one responder.
type round struct {
	nonce     uint64
	started   int
	asked     map[identity.PKIID]bool // hello sent, digest not yet in
	digests   []digest                // in arrival order
	requested bool
	assigned  map[identity.PKIID]map[uint64]bool // blocks asked, not yet in
}

type digest struct {
	from  identity.PKIID
	spans []span
}

// tickPull starts a round when one is due, sends the requests of rounds
// whose digest wait is over, and forgets expired rounds.
func (e *Engine) tickPull() []Out {
	var out []Out
	for _, nonce := range sortedKeys(e.rounds) {
		r := e.rounds[nonce]
		switch {
		case e.now >= r.started+e.cfg.NonceTTL || (r.requested && len(r.assigned) == 0):
			delete(e.rounds, nonce)
		case !r.requested && e.now >= r.started+e.cfg.DigestWait:
			out = append(out, e.request(r)...)
		}
	}
	for n, exp := range e.pending {
		if e.now >= exp {
			delete(e.pending, n)
		}
	}
	if e.now >= e.nextPull {
		e.nextPull = e.now + e.cfg.PullInterval
		out = append(out, e.startRound()...)
	}
	return out
}

func (e *Engine) startRound() []Out {
	peers := e.sample(e.usable(0), e.cfg.PullPeers)
	if len(peers) == 0 {
		return nil
	}
	r := &round{nonce: e.newNonce(), started: e.now, asked: make(map[identity.PKIID]bool)}
	e.rounds[r.nonce] = r
	out := make([]Out, 0, len(peers))
	for _, id := range peers {
		r.asked[id] = true
		out = append(out, Out{id, &pb.GossipMessage{Content: &pb.GossipMessage_PullHello{
			PullHello: &pb.PullHello{Nonce: r.nonce}}}})
	}
	e.stats.HellosSent += uint64(len(out))
	return out
}

func (e *Engine) onDigest(from identity.PKIID, d *pb.PullDigest) []Out {
	r := e.rounds[d.GetNonce()]
	if r == nil || r.requested || !r.asked[from] {
		e.stats.Dropped++
		return nil
	}
	delete(r.asked, from)
	h := e.store.Height()
	if ss := readSpans(d.GetRanges(), e.cfg.MaxRanges, h, h+e.cfg.Lookahead); len(ss) > 0 {
		r.digests = append(r.digests, digest{from, ss})
	}
	if len(r.asked) > 0 {
		return nil
	}
	return e.request(r)
}

// stripe is how far a responder's load may exceed the least loaded one's
// while it keeps receiving consecutive blocks.
const stripe = 16

// request asks each block we lack from one of the responders that offered
// it: the least loaded so far, ties going to a random order, at most
// MaxBlocksPerResponse blocks and MaxRanges ranges per responder. Blocks
// go in stripes of up to `stripe` consecutive numbers per responder, so a
// request is a few ranges, not one per block. A block stays reserved (not
// asked again) until the next round starts, so a lost request or response
// costs one round, not NonceTTL.
func (e *Engine) request(r *round) []Out {
	r.requested = true
	r.assigned = make(map[identity.PKIID]map[uint64]bool)
	e.rng.Shuffle(len(r.digests), func(i, j int) { r.digests[i], r.digests[j] = r.digests[j], r.digests[i] })
	asks := make([][]span, len(r.digests))
	full, prev := 0, -1
	h := e.store.Height()
	for n := h; n < h+e.cfg.Lookahead && full < len(r.digests); n++ {
		if e.covered(n) {
			continue
		}
		best := -1
		for i, d := range r.digests {
			if load := len(r.assigned[d.from]); load < e.cfg.MaxBlocksPerResponse && spansHave(d.spans, n) &&
				(best < 0 || load < len(r.assigned[r.digests[best].from])) {
				best = i
			}
		}
		if best < 0 {
			continue
		}
		if prev >= 0 && prev != best && spansHave(r.digests[prev].spans, n) {
			load := len(r.assigned[r.digests[prev].from])
			if load < e.cfg.MaxBlocksPerResponse && load < len(r.assigned[r.digests[best].from])+stripe {
				best = prev // keep ranges contiguous: few ranges on the wire
			}
		}
		prev = best
		d := r.digests[best]
		var ok bool
		if asks[best], ok = addNum(asks[best], n, e.cfg.MaxRanges); !ok {
			continue
		}
		if r.assigned[d.from] == nil {
			r.assigned[d.from] = make(map[uint64]bool)
		}
		r.assigned[d.from][n] = true
		e.pending[n] = e.nextPull
		if len(r.assigned[d.from]) == e.cfg.MaxBlocksPerResponse {
			full++
		}
	}
	var out []Out
	for i, d := range r.digests {
		if len(asks[i]) > 0 {
			out = append(out, Out{d.from, &pb.GossipMessage{Content: &pb.GossipMessage_PullRequest{
				PullRequest: &pb.PullRequest{Nonce: r.nonce, Ranges: writeSpans(asks[i])}}}})
		}
	}
	e.stats.PullRequestsSent += uint64(len(out))
	return out
}

// covered reports whether block n is already here or already asked for
// (by pull or by state transfer).
func (e *Engine) covered(n uint64) bool {
	if _, asked := e.pending[n]; asked || e.store.Have(n) {
		return true
	}
	for _, s := range e.states {
		if s.start <= n && n < s.end {
			return true
		}
	}
	return false
}

func (e *Engine) onPullResponse(from identity.PKIID, resp *pb.PullResponse) []Received {
	r := e.rounds[resp.GetNonce()]
	asked := r.assignedTo(from)
	if asked == nil {
		e.stats.Dropped++
		return nil
	}
	delete(r.assigned, from)
	var got []Received
	for _, b := range resp.GetBlocks() {
		hdr, err := ledger.ParseHeader(b)
		if err != nil || !asked[hdr.GetNumber()] {
			e.strike(from) // malformed, unasked or repeated: not an honest answer
			break
		}
		n := hdr.GetNumber()
		delete(asked, n)
		delete(e.pending, n)
		if !e.store.Have(n) {
			got = append(got, Received{from, b, ViaPull})
		}
	}
	for n := range asked { // not served: free to ask again at once
		delete(e.pending, n)
	}
	if len(got) > 0 {
		e.clear(from)
	}
	e.stats.PullBlocksReceived += uint64(len(got))
	return got
}

func (r *round) assignedTo(id identity.PKIID) map[uint64]bool {
	if r == nil {
		return nil
	}
	return r.assigned[id]
}

// sortedKeys returns m's keys in ascending order, so that iteration (and
// the rng draws that follow it) is deterministic.
func sortedKeys[V any](m map[uint64]V) []uint64 {
	keys := make([]uint64, 0, len(m))
	for k := range m {
		keys = append(keys, k)
	}
	slices.Sort(keys)
	return keys
}
