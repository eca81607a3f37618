package pull

import (
	"github.com/blockgossip/blockgossip/identity"
	pb "github.com/blockgossip/blockgossip/protos"
	"google.golang.org/protobuf/proto"
)

// The responder side of pull, and the block collection state transfer
// shares with it.

// requestsPerDigest is how many requests one digest entitles its peer to:
// its request, and one re-ask of blocks another responder failed to send.
const requestsPerDigest = 2

// served is a digest we sent, which entitles its peer to requestsPerDigest
// requests until it expires.
type served struct {
	nonce   uint64
	expires int
	left    int // requests still allowed
}

// digestCache holds the digest built this tick: however many hellos
// arrive, the store is scanned at most once per tick and height.
type digestCache struct {
	valid  bool
	tick   int
	height uint64
	spans  []span
}

// onHello answers with our digest and remembers that from may now ask
// for what it lists.
func (e *Engine) onHello(from identity.PKIID, h *pb.PullHello) []Out {
	if h.GetNonce() == 0 || !e.remember(from, h.GetNonce()) {
		e.stats.Dropped++
		return nil
	}
	e.stats.DigestsSent++
	return []Out{{from, &pb.GossipMessage{Content: &pb.GossipMessage_PullDigest{
		PullDigest: &pb.PullDigest{Nonce: h.GetNonce(), Ranges: writeSpans(e.buildDigest())}}}}}
}

// remember records a digest sent to from, replacing its previous one. It
// reports false when the table is full of live entries.
func (e *Engine) remember(from identity.PKIID, nonce uint64) bool {
	if _, ok := e.served[from]; !ok && len(e.served) >= e.cfg.MaxServed {
		for id, s := range e.served {
			if e.now >= s.expires {
				delete(e.served, id)
			}
		}
		if len(e.served) >= e.cfg.MaxServed {
			return false
		}
	}
	e.served[from] = served{nonce, e.now + e.cfg.NonceTTL, requestsPerDigest}
	return true
}

// window is the block range our digest describes: DigestWindow blocks
// below our height and as many above it.
func (e *Engine) window() (lo, hi uint64) {
	h := e.store.Height()
	return h - min(h, e.cfg.DigestWindow), h + e.cfg.DigestWindow
}

// buildDigest lists the blocks we hold in our window, as at most MaxRanges
// ascending spans (the lowest, which unblock commits first, win).
func (e *Engine) buildDigest() []span {
	h := e.store.Height()
	if c := &e.digest; c.valid && c.tick == e.now && c.height == h {
		return c.spans
	}
	lo, hi := e.window()
	var ss []span
	if lo < h {
		ss = append(ss, span{lo, h})
	}
	for n := h; n < hi; n++ {
		if e.store.Have(n) {
			var ok bool
			if ss, ok = addNum(ss, n, e.cfg.MaxRanges); !ok {
				break
			}
		}
	}
	e.digest = digestCache{valid: true, tick: e.now, height: h, spans: ss}
	return ss
}

// onPullRequest serves a request whose nonce we answered with a digest to
// this same peer, within NonceTTL, at most requestsPerDigest times; only
// blocks inside our window.
func (e *Engine) onPullRequest(from identity.PKIID, req *pb.PullRequest) []Out {
	s, ok := e.served[from]
	if !ok || s.nonce != req.GetNonce() || e.now >= s.expires {
		e.stats.Dropped++
		return nil
	}
	if s.left--; s.left > 0 {
		e.served[from] = s
	} else {
		delete(e.served, from)
	}
	lo, hi := e.window()
	blocks := e.collect(readSpans(req.GetRanges(), e.cfg.MaxRanges, lo, hi), e.cfg.MaxBlocksPerResponse)
	e.stats.PullBlocksServed += uint64(len(blocks))
	return []Out{{from, &pb.GossipMessage{Content: &pb.GossipMessage_PullResponse{
		PullResponse: &pb.PullResponse{Nonce: req.GetNonce(), Blocks: blocks}}}}}
}

// collect gathers the blocks we hold in spans, at most limit blocks and
// MaxResponseBytes bytes (but always the first block found).
func (e *Engine) collect(ss []span, limit int) []*pb.Block {
	var blocks []*pb.Block
	size := 0
	for _, s := range ss {
		for n := s.start; n < s.end && len(blocks) < limit; n++ {
			b, ok := e.store.Block(n)
			if !ok {
				continue
			}
			sz := proto.Size(b)
			if len(blocks) > 0 && size+sz > e.cfg.MaxResponseBytes {
				return blocks
			}
			blocks = append(blocks, b)
			size += sz
		}
	}
	return blocks
}
