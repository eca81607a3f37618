package pull

import (
	"math/rand/v2"
	"sync"
	"testing"

	"github.com/blockgossip/blockgossip/identity"
	pb "github.com/blockgossip/blockgossip/protos"
	"pgregory.net/rapid"
)

var (
	fuzzChainOnce sync.Once
	fuzzChain     *chain
)

// sharedChain is a 200-block chain signed once for all rapid runs.
func sharedChain() *chain {
	fuzzChainOnce.Do(func() { fuzzChain = newChain(9); fuzzChain.extend(200) })
	return fuzzChain
}

// Step never panics, whatever fields a peer sends or omits, and every
// answer and every internal table stays within its configured bound.
func TestStepNeverPanicsAndStaysBounded(t *testing.T) {
	c := sharedChain()
	rapid.Check(t, func(rt *rapid.T) {
		cfg := DefaultConfig()
		cfg.MaxRanges, cfg.MaxBlocksPerResponse, cfg.BatchSize = 4, 8, 8
		cfg.Lookahead, cfg.DigestWindow, cfg.MaxServed, cfg.MaxInFlight = 32, 16, 3, 2
		cfg.PullInterval, cfg.DigestWait, cfg.NonceTTL = 3, 1, 5
		height := rapid.IntRange(0, 150).Draw(rt, "height")
		st := &memStore{blocks: make(map[uint64]*pb.Block), height: uint64(height)}
		for n := range height + rapid.IntRange(0, 30).Draw(rt, "buffered") {
			if n < height || rapid.Bool().Draw(rt, "hole") {
				st.blocks[uint64(n)] = c.blocks[n]
			}
		}
		e, err := New(cfg, pid(0), rand.New(rand.NewPCG(rapid.Uint64().Draw(rt, "seed"), 1)), st)
		if err != nil {
			rt.Fatal(err)
		}
		subTicks := rapid.SampledFrom([]int{1, 5}).Draw(rt, "subTicks")
		e.SetSubTicks(subTicks)
		peers := []identity.PKIID{pid(0), pid(1), pid(2), pid(3), pid(4), pid(5)}
		for range rapid.IntRange(20, 150).Draw(rt, "steps") {
			from := rapid.SampledFrom(peers).Draw(rt, "from")
			switch rapid.IntRange(0, 10).Draw(rt, "action") {
			case 10: // the caller's sub-tick clock: timers between ticks
				if k, ok := e.NextDeadline(); ok && (k < 0 || k >= subTicks) {
					rt.Fatalf("NextDeadline %d outside the tick's %d sub-ticks", k, subTicks)
				}
				checkOuts(rt, e, e.SubTick(rapid.IntRange(-1, 6).Draw(rt, "k")))
			case 0, 1:
				var live []PeerInfo
				for _, id := range peers {
					if rapid.Bool().Draw(rt, "live") {
						live = append(live, PeerInfo{ID: id, Height: rapid.Uint64Range(0, 300).Draw(rt, "h"), Incarnation: rapid.Uint64Range(0, 2).Draw(rt, "inc")})
					}
				}
				checkOuts(rt, e, e.Tick(live))
			case 2:
				e.ReportInvalid(from)
				e.PullSoon()
			case 3:
				if n := st.height; st.blocks[n] != nil {
					st.height++
					e.OnCommitted(st.height)
				}
			default:
				e.Advance(rapid.IntRange(-1, 6).Draw(rt, "at"))
				msg, to := drawMessage(rt, e, c)
				if to != nil {
					from = *to
				}
				outs, got := e.Step(from, msg)
				checkOuts(rt, e, outs)
				if len(got) > max(cfg.MaxBlocksPerResponse, int(cfg.BatchSize)) {
					rt.Fatalf("%d blocks received from one message", len(got))
				}
			}
			if len(e.served) > cfg.MaxServed || len(e.states) > cfg.MaxInFlight+1 || // +1: a hedge
				len(e.pending) > int(cfg.Lookahead) || len(e.rounds) > cfg.NonceTTL { // one round a tick at most
				rt.Fatalf("tables grew: served %d states %d pending %d rounds %d",
					len(e.served), len(e.states), len(e.pending), len(e.rounds))
			}
		}
	})
}

// checkOuts fails if any message we send exceeds its bound.
func checkOuts(rt *rapid.T, e *Engine, outs []Out) {
	cfg := e.cfg
	for _, o := range outs {
		m := o.Msg
		switch {
		case o.To == e.self:
			rt.Fatalf("message to self: %v", m)
		case len(m.GetPullDigest().GetRanges()) > cfg.MaxRanges, len(m.GetPullRequest().GetRanges()) > cfg.MaxRanges:
			rt.Fatalf("too many ranges: %v", m)
		case len(m.GetPullResponse().GetBlocks()) > cfg.MaxBlocksPerResponse:
			rt.Fatalf("pull response of %d blocks", len(m.GetPullResponse().GetBlocks()))
		case len(m.GetStateResponse().GetBlocks()) > int(cfg.BatchSize):
			rt.Fatalf("state response of %d blocks", len(m.GetStateResponse().GetBlocks()))
		}
		if r := m.GetStateRequest().GetRange(); r != nil {
			h := e.store.Height()
			if r.GetStart() < h || r.GetEnd() <= r.GetStart() || r.GetEnd()-r.GetStart() > cfg.BatchSize || r.GetEnd() > h+cfg.Lookahead {
				rt.Fatalf("state request %v at height %d", r, h)
			}
		}
		asked := uint64(0)
		for _, r := range m.GetPullRequest().GetRanges() {
			asked += r.GetEnd() - r.GetStart()
		}
		if asked > uint64(cfg.MaxBlocksPerResponse) {
			rt.Fatalf("pull request for %d blocks", asked)
		}
	}
}

// drawMessage draws a message of any kind, with fields missing, garbage,
// huge, or (often) matching a nonce the engine has open, so that deep
// paths are reached; for a response it may also name the peer the engine
// expects it from, and carry the blocks it asked for.
func drawMessage(rt *rapid.T, e *Engine, c *chain) (*pb.GossipMessage, *identity.PKIID) {
	if rapid.Bool().Draw(rt, "expected answer") {
		if m, from := drawAnswer(rt, e, c); m != nil {
			return m, &from
		}
	}
	var open []uint64
	for n := range e.rounds {
		open = append(open, n)
	}
	for n := range e.states {
		open = append(open, n)
	}
	for _, s := range e.served {
		open = append(open, s.nonce)
	}
	nonce := rapid.Uint64().Draw(rt, "nonce")
	if len(open) > 0 && rapid.Bool().Draw(rt, "open nonce") {
		nonce = rapid.SampledFrom(sortedU64(open)).Draw(rt, "which")
	}
	bound := rapid.OneOf(rapid.Uint64Range(0, 250), rapid.Uint64())
	ranges := func() []*pb.BlockRange {
		rs := make([]*pb.BlockRange, rapid.IntRange(0, 10).Draw(rt, "nranges"))
		for i := range rs {
			if rapid.IntRange(0, 9).Draw(rt, "nil range") > 0 {
				rs[i] = &pb.BlockRange{Start: bound.Draw(rt, "start"), End: bound.Draw(rt, "end")}
			}
		}
		return rs
	}
	blocks := func() []*pb.Block {
		bs := make([]*pb.Block, rapid.IntRange(0, 12).Draw(rt, "nblocks"))
		for i := range bs {
			switch rapid.IntRange(0, 4).Draw(rt, "block") {
			case 0: // nil
			case 1:
				bs[i] = &pb.Block{Header: rapid.SliceOfN(rapid.Byte(), 0, 12).Draw(rt, "junk")}
			default:
				bs[i] = c.blocks[rapid.IntRange(0, len(c.blocks)-1).Draw(rt, "n")]
			}
		}
		return bs
	}
	var content pb.GossipMessage
	switch rapid.IntRange(0, 9).Draw(rt, "kind") {
	case 0:
		return nil, nil
	case 1:
		content.Content = &pb.GossipMessage_PullHello{PullHello: &pb.PullHello{Nonce: nonce}}
	case 2:
		content.Content = &pb.GossipMessage_PullDigest{PullDigest: &pb.PullDigest{Nonce: nonce, Ranges: ranges()}}
	case 3:
		content.Content = &pb.GossipMessage_PullRequest{PullRequest: &pb.PullRequest{Nonce: nonce, Ranges: ranges()}}
	case 4:
		content.Content = &pb.GossipMessage_PullResponse{PullResponse: &pb.PullResponse{Nonce: nonce, Blocks: blocks()}}
	case 5:
		req := &pb.StateRequest{Nonce: nonce}
		if rs := ranges(); len(rs) > 0 {
			req.Range = rs[0]
		}
		content.Content = &pb.GossipMessage_StateRequest{StateRequest: req}
	case 6:
		content.Content = &pb.GossipMessage_StateResponse{StateResponse: &pb.StateResponse{
			Nonce: nonce, Blocks: blocks(), Height: bound.Draw(rt, "height")}}
	case 7: // a oneof case holding nil
		content.Content = &pb.GossipMessage_PullResponse{}
	case 8:
		content.Content = &pb.GossipMessage_StateResponse{}
	case 9:
		content.Content = &pb.GossipMessage_Prune{Prune: &pb.Prune{}}
	}
	return &content, nil
}

// drawAnswer draws a pull or state response to a request the engine has
// open, from the peer it asked, with the asked blocks in order, shuffled,
// cut short or mixed with others.
func drawAnswer(rt *rapid.T, e *Engine, c *chain) (*pb.GossipMessage, identity.PKIID) {
	pick := func(nums []uint64) []*pb.Block {
		var bs []*pb.Block
		for _, n := range nums {
			if n < uint64(len(c.blocks)) && rapid.IntRange(0, 5).Draw(rt, "keep") > 0 {
				bs = append(bs, c.blocks[n])
			}
		}
		if rapid.Bool().Draw(rt, "extra") {
			bs = append(bs, c.blocks[rapid.IntRange(0, len(c.blocks)-1).Draw(rt, "extra n")])
		}
		return bs
	}
	for _, nonce := range sortedKeys(e.rounds) {
		for from := range e.rounds[nonce].asked {
			h := e.store.Height()
			lo := h + rapid.Uint64Range(0, 10).Draw(rt, "lo")
			rs := []*pb.BlockRange{{Start: lo, End: lo + rapid.Uint64Range(0, 40).Draw(rt, "len")}}
			return &pb.GossipMessage{Content: &pb.GossipMessage_PullDigest{PullDigest: &pb.PullDigest{
				Nonce: nonce, Ranges: rs}}}, from
		}
	}
	if rapid.Bool().Draw(rt, "pull") {
		for _, nonce := range sortedKeys(e.rounds) {
			r := e.rounds[nonce]
			for from, asked := range r.assigned {
				nums := sortedU64(keys(asked.blocks))
				return &pb.GossipMessage{Content: &pb.GossipMessage_PullResponse{PullResponse: &pb.PullResponse{
					Nonce: nonce, Blocks: pick(nums)}}}, from
			}
		}
		return nil, identity.PKIID{}
	}
	for _, nonce := range sortedKeys(e.states) {
		s := e.states[nonce]
		var nums []uint64
		for n := s.start; n < s.end; n++ {
			nums = append(nums, n)
		}
		return &pb.GossipMessage{Content: &pb.GossipMessage_StateResponse{StateResponse: &pb.StateResponse{
			Nonce: nonce, Blocks: pick(nums), Height: rapid.Uint64Range(0, 300).Draw(rt, "claimed")}}}, s.peer
	}
	return nil, identity.PKIID{}
}

func keys(m map[uint64]bool) []uint64 {
	var out []uint64
	for k := range m {
		out = append(out, k)
	}
	return out
}

func sortedU64(s []uint64) []uint64 {
	m := make(map[uint64]bool, len(s))
	for _, v := range s {
		m[v] = true
	}
	return sortedKeys(m)
}
