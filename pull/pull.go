package pull

import (
	"slices"

	"github.com/blockgossip/blockgossip/identity"
	"github.com/blockgossip/blockgossip/ledger"
	pb "github.com/blockgossip/blockgossip/protos"
)

// round is one pull round we started: hello sent, digests collected, then
// each missing block asked from one responder, and asked once more of
// another if the first does not answer within the re-ask deadline
// (reaskTimer).
type round struct {
	nonce     uint64
	started   int
	asked     map[identity.PKIID]bool // hello sent, digest not yet in
	digests   []digest                // in arrival order, shuffled when requesting
	firstAt   int                     // sub-tick the first digest came in (-1: none yet)
	helloAt   int                     // sub-tick the hellos went out
	rehellos  int                     // times no digest came in time and hellos went to other peers
	behind    bool                    // PullSoon was called while the round waited for its first digest
	requested bool
	assigned  map[identity.PKIID]*ask   // requests sent, answer not yet in
	requests  map[identity.PKIID]int    // requests sent per responder
	reasked   map[uint64]identity.PKIID // blocks re-asked, and of whom
}

// ask is a request in flight: the blocks asked of one responder.
type ask struct {
	blocks map[uint64]bool // asked, not yet in
	sent   int             // sub-tick it was out (sentAt)
	late   bool            // ReaskAfter passed: its blocks were re-asked or freed
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
		default:
			out = append(out, e.roundTimers(r)...)
		}
	}
	for n, exp := range e.pending {
		if e.now >= exp {
			delete(e.pending, n)
		}
	}
	e.pullAgain()
	if e.now >= e.nextPull || e.startup {
		e.soon = false
		e.nextPull = e.now + e.cfg.PullInterval
		hellos := e.startRound()
		if e.startup && len(hellos) > 0 { // keep peers' regular rounds spread over the interval
			e.nextPull = e.now + 1 + e.rng.IntN(e.cfg.PullInterval)
		}
		e.startup = e.startup && len(hellos) == 0 // no live peer yet: try again next tick
		out = append(out, hellos...)
	}
	return out
}

// roundTimers runs round r's fine timers (those SubTick runs between
// ticks too): the request once the digest grace is over, the hellos of a
// silent round sent again, the re-asks of late requests.
func (e *Engine) roundTimers(r *round) []Out {
	switch {
	case !r.requested && e.graceOver(r):
		return e.request(r)
	case e.helloLate(r):
		return e.helloAgain(r)
	case r.requested && e.cfg.ReaskAfter > 0:
		return e.reask(r)
	}
	return nil
}

// graceOver reports whether round r's DigestGrace (DigestGraceSub) after
// its first digest is over.
func (e *Engine) graceOver(r *round) bool {
	return e.grace > 0 && r.firstAt >= 0 && e.sub >= r.firstAt+e.grace
}

func (e *Engine) startRound() []Out {
	peers := e.roundPeers()
	if len(peers) == 0 {
		return nil
	}
	r := &round{nonce: e.newNonce(), started: e.now, firstAt: -1, helloAt: e.sentAt(), asked: make(map[identity.PKIID]bool),
		assigned: make(map[identity.PKIID]*ask), requests: make(map[identity.PKIID]int),
		reasked: make(map[uint64]identity.PKIID)}
	e.rounds[r.nonce] = r
	return e.sayHello(r, peers)
}

// sayHello sends round r's hello to peers.
func (e *Engine) sayHello(r *round, peers []identity.PKIID) []Out {
	out := make([]Out, 0, len(peers))
	for _, id := range peers {
		r.asked[id] = true
		out = append(out, Out{id, &pb.GossipMessage{Content: &pb.GossipMessage_PullHello{
			PullHello: &pb.PullHello{Nonce: r.nonce}}}})
	}
	e.stats.HellosSent += uint64(len(out))
	return out
}

// helloLate reports whether round r got no digest at all within the
// answers' deadline (reaskTimer): its hellos or digests were lost, or went
// to peers that are down (a restarted peer's view still lists them). Only
// with sub-ticks: at one per tick, DigestWait is about as short.
func (e *Engine) helloLate(r *round) bool {
	return e.silent(r) && e.sub >= r.helloAt+e.reaskT.ticks()
}

// silent reports whether round r, which has no digest yet, may say hello
// to other peers when its answers' deadline passes: once, or up to
// maxRehellos times when we know we are behind (r.behind).
func (e *Engine) silent(r *round) bool {
	limit := 1
	if r.behind {
		limit = maxRehellos
	}
	return e.res > 1 && e.cfg.ReaskAfter > 0 && !r.requested && r.firstAt < 0 && r.rehellos < limit
}

// maxRehellos bounds the hellos again of a silent round of a peer that
// knows it is behind. A restarted peer whose first hellos and the hellos
// again all failed (to peers down, or lost: four of six messages in one
// 10,000-peer run) otherwise waited out DigestWait and its next round: the
// blocks cut while it was down reached it 430 ms after its restart.
const maxRehellos = 3

// helloAgain sends round r's hellos to PullPeers other usable peers
// at random, near ones first, and gives the round a fresh DigestWait: a
// restarted peer whose first hellos all failed asks again within a round
// trip or two, not at its next round. Near first, because on a busy host
// digests are merely late and this fires in many rounds: at 100 peers
// over gRPC, picking among all peers opened ~240 streams in 6 s (each a
// TLS handshake at both ends), more load and later digests still.
func (e *Engine) helloAgain(r *round) []Out {
	r.rehellos++
	r.helloAt = e.sentAt()
	var ids []identity.PKIID
	for _, id := range e.usable(0) {
		if _, asked := r.asked[id]; !asked {
			ids = append(ids, id)
		}
	}
	out := e.sayHello(r, e.nearFirst(ids, e.cfg.PullPeers, e.cfg.PullPeers))
	r.started = e.now
	e.stats.Rehellos += uint64(len(out))
	return out
}

func (e *Engine) onDigest(from identity.PKIID, d *pb.PullDigest) []Out {
	r := e.rounds[d.GetNonce()]
	if r == nil || !r.asked[from] {
		e.stats.Dropped++
		return nil
	}
	delete(r.asked, from)
	h := e.store.Height()
	ss := readSpans(d.GetRanges(), e.cfg.MaxRanges, h, h+e.cfg.Lookahead)
	if len(ss) > 0 {
		r.digests = append(r.digests, digest{from, ss}) // after the request: a re-ask candidate
	}
	if r.firstAt < 0 {
		r.firstAt = e.sub
	}
	switch {
	case r.requested && len(ss) > 0 && e.cfg.ReaskAfter > 0:
		return e.askLate(r)
	case len(r.asked) > 0 || r.requested:
		return nil
	}
	return e.request(r)
}

// askLate asks the digest that just came in after round r's request (the
// last of r.digests) for the blocks it offers that nobody was asked for:
// the first digests, within DigestGrace, may have offered only part of
// the gap (a responder that is itself catching up), and the rest would
// otherwise wait for the next round. Nothing is asked twice.
func (e *Engine) askLate(r *round) []Out {
	i := len(r.digests) - 1
	d := r.digests[i]
	if r.assigned[d.from] != nil || r.requests[d.from] >= requestsPerDigest || e.Cooling(d.from) {
		return nil
	}
	asks := make([][]span, len(r.digests))
	a := &ask{blocks: make(map[uint64]bool), sent: e.sentAt()}
	h := e.store.Height()
	for n := h; n < h+e.cfg.Lookahead && len(a.blocks) < e.cfg.MaxBlocksPerResponse; n++ {
		if !spansHave(d.spans, n) || e.covered(n) {
			continue
		}
		var ok bool
		if asks[i], ok = addNum(asks[i], n, e.cfg.MaxRanges); !ok {
			break
		}
		a.blocks[n] = true
		e.pending[n] = e.now + e.cfg.NonceTTL // until answered, re-asked or freed by reask
	}
	if len(a.blocks) == 0 {
		return nil
	}
	r.assigned[d.from] = a
	e.stats.LateAsks += uint64(len(a.blocks))
	return e.sendAsks(r, asks)
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
// costs one round, not NonceTTL; with ReaskAfter set, until reask asks
// it elsewhere or frees it.
func (e *Engine) request(r *round) []Out {
	r.requested = true
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
			if load := r.load(d.from); load < e.cfg.MaxBlocksPerResponse && spansHave(d.spans, n) &&
				(best < 0 || load < r.load(r.digests[best].from)) {
				best = i
			}
		}
		if best < 0 {
			continue
		}
		if prev >= 0 && prev != best && spansHave(r.digests[prev].spans, n) {
			load := r.load(r.digests[prev].from)
			if load < e.cfg.MaxBlocksPerResponse && load < r.load(r.digests[best].from)+stripe {
				best = prev // keep ranges contiguous: few ranges on the wire
			}
		}
		prev = best
		d := r.digests[best]
		var ok bool
		if asks[best], ok = addNum(asks[best], n, e.cfg.MaxRanges); !ok {
			continue
		}
		a := r.assigned[d.from]
		if a == nil {
			a = &ask{blocks: make(map[uint64]bool), sent: e.sentAt()}
			r.assigned[d.from] = a
		}
		a.blocks[n] = true
		if e.cfg.ReaskAfter > 0 {
			e.pending[n] = e.now + e.cfg.NonceTTL // until answered, re-asked or freed by reask
		} else {
			e.pending[n] = e.nextPull
		}
		if len(a.blocks) == e.cfg.MaxBlocksPerResponse {
			full++
		}
	}
	return e.sendAsks(r, asks)
}

// sendAsks sends the requests of round r, asks[i] to r.digests[i].from.
func (e *Engine) sendAsks(r *round, asks [][]span) []Out {
	var out []Out
	for i, d := range r.digests {
		if len(asks[i]) > 0 {
			r.requests[d.from]++
			out = append(out, Out{d.from, &pb.GossipMessage{Content: &pb.GossipMessage_PullRequest{
				PullRequest: &pb.PullRequest{Nonce: r.nonce, Ranges: writeSpans(asks[i])}}}})
		}
	}
	e.stats.PullRequestsSent += uint64(len(out))
	return out
}

// load is how many blocks of round r responder id has yet to send.
func (r *round) load(id identity.PKIID) int {
	if a := r.assigned[id]; a != nil {
		return len(a.blocks)
	}
	return 0
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
	a := r.assignedTo(from)
	if a == nil {
		e.stats.Dropped++
		return nil
	}
	delete(r.assigned, from)
	e.reaskT.answered(e.sub - a.sent + 1)
	asked := a.blocks
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
	for n := range asked { // not served: free to ask again at once, unless re-asked elsewhere
		if of, again := r.reasked[n]; !again || of == from {
			delete(e.pending, n)
		}
	}
	if len(got) > 0 {
		e.clear(from)
	}
	e.stats.PullBlocksReceived += uint64(len(got))
	e.pullAgain()
	return got
}

func (r *round) assignedTo(id identity.PKIID) *ask {
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
