package pull

import (
	"errors"
	"math/rand/v2"
	"testing"

	"github.com/blockgossip/blockgossip/identity"
	pb "github.com/blockgossip/blockgossip/protos"
)

func pid(i byte) identity.PKIID { return identity.PKIID{i} }

// newTestEngine returns an engine (self = pid(0)) whose store holds
// blocks [0, height) of a fresh chain.
func newTestEngine(t testing.TB, cfg Config, height int) (*Engine, *memStore) {
	t.Helper()
	c := newChain(1)
	c.extend(height)
	st := &memStore{blocks: make(map[uint64]*pb.Block), height: uint64(height)}
	for n, b := range c.blocks {
		st.blocks[uint64(n)] = b
	}
	e, err := New(cfg, pid(0), rand.New(rand.NewPCG(1, 2)), st)
	if err != nil {
		t.Fatal(err)
	}
	return e, st
}

// pullOnly is DefaultConfig with catch-up off, for the tests of pull
// rounds: catch-up would ask the range too.
func pullOnly() Config {
	cfg := DefaultConfig()
	cfg.CatchUpPeers = 0
	return cfg
}

func TestConfigs(t *testing.T) {
	for name, c := range map[string]Config{"default": DefaultConfig(), "fabric": FabricConfig()} {
		if err := c.Validate(); err != nil {
			t.Errorf("%s: %v", name, err)
		}
	}
	bad := map[string]func(*Config){
		"zero interval":     func(c *Config) { c.PullInterval = 0 },
		"wait beyond ttl":   func(c *Config) { c.DigestWait = c.NonceTTL },
		"zero batch":        func(c *Config) { c.BatchSize = 0 },
		"short lookahead":   func(c *Config) { c.Lookahead = c.BatchSize - 1 },
		"cooldown inverted": func(c *Config) { c.MaxCooldown = c.BaseCooldown - 1 },
		"no ranges":         func(c *Config) { c.MaxRanges = 0 },
		"zero window":       func(c *Config) { c.DigestWindow = 0 },
		"reask at ttl":      func(c *Config) { c.ReaskAfter = c.NonceTTL },
		"negative reask":    func(c *Config) { c.ReaskAfter = -1 },
		"negative grace":    func(c *Config) { c.DigestGrace = -1 },
	}
	for name, mutate := range bad {
		c := DefaultConfig()
		mutate(&c)
		if err := c.Validate(); !errors.Is(err, ErrInvalidConfig) {
			t.Errorf("%s: Validate = %v, want ErrInvalidConfig", name, err)
		}
		if _, err := New(c, pid(0), rand.New(rand.NewPCG(1, 1)), &memStore{}); !errors.Is(err, ErrInvalidConfig) {
			t.Errorf("%s: New = %v, want ErrInvalidConfig", name, err)
		}
	}
	if _, err := New(DefaultConfig(), pid(0), nil, &memStore{}); !errors.Is(err, ErrInvalidConfig) {
		t.Errorf("New without rng = %v", err)
	}
}

func hello(n uint64) *pb.GossipMessage {
	return &pb.GossipMessage{Content: &pb.GossipMessage_PullHello{PullHello: &pb.PullHello{Nonce: n}}}
}

func pullReq(n uint64, rs ...span) *pb.GossipMessage {
	return &pb.GossipMessage{Content: &pb.GossipMessage_PullRequest{PullRequest: &pb.PullRequest{Nonce: n, Ranges: writeSpans(rs)}}}
}

// The serving rule: a pull request is served only with the nonce of a
// digest sent to that same peer, at most twice (a request and a re-ask),
// within NonceTTL, and only blocks inside the digest window.
func TestServingRule(t *testing.T) {
	cfg := DefaultConfig()
	e, _ := newTestEngine(t, cfg, 500)
	a, b := pid(1), pid(2)
	served := func(outs []Out) int {
		if len(outs) == 0 {
			return -1
		}
		return len(outs[0].Msg.GetPullResponse().GetBlocks())
	}
	if n := served(first(e.Step(a, pullReq(7, span{400, 410})))); n != -1 {
		t.Fatalf("request without a digest served %d blocks", n)
	}
	outs, _ := e.Step(a, hello(7))
	d := outs[0].Msg.GetPullDigest()
	if d.GetNonce() != 7 || len(d.GetRanges()) != 1 || d.GetRanges()[0].GetStart() != 500-cfg.DigestWindow || d.GetRanges()[0].GetEnd() != 500 {
		t.Fatalf("digest = %v, want nonce 7 and [%d, 500)", d, 500-cfg.DigestWindow)
	}
	if n := served(first(e.Step(b, pullReq(7, span{400, 410})))); n != -1 {
		t.Fatal("another peer reused a's nonce")
	}
	if n := served(first(e.Step(a, pullReq(8, span{400, 410})))); n != -1 {
		t.Fatal("wrong nonce served")
	}
	if n := served(first(e.Step(a, pullReq(7, span{0, 10}, span{400, 410}, span{495, 1 << 62})))); n != 15 {
		t.Fatalf("served %d blocks, want 15: the 10 asked in the window and 5 up to our height", n)
	}
	if n := served(first(e.Step(a, pullReq(7, span{400, 410})))); n != 10 {
		t.Fatalf("re-ask served %d blocks, want 10", n)
	}
	if n := served(first(e.Step(a, pullReq(7, span{400, 410})))); n != -1 {
		t.Fatal("a digest was served three times")
	}
	e.Step(a, hello(9))
	for range cfg.NonceTTL {
		e.Tick(nil)
	}
	if n := served(first(e.Step(a, pullReq(9, span{400, 410})))); n != -1 {
		t.Fatal("expired nonce served")
	}
	e.Step(a, hello(10))
	if n := served(first(e.Step(a, pullReq(10, span{0, 1 << 62})))); n != cfg.MaxBlocksPerResponse {
		t.Fatalf("served %d blocks, want the cap %d", n, cfg.MaxBlocksPerResponse)
	}
}

func first(o []Out, _ []Received) []Out { return o }

// A state request is served contiguously from its start, capped by count
// and bytes, and answers our height even when empty.
func TestStateServing(t *testing.T) {
	cfg := DefaultConfig()
	cfg.MaxResponseBytes = 1000 // a few small blocks
	e, _ := newTestEngine(t, cfg, 300)
	ask := func(start, end uint64) *pb.StateResponse {
		outs, _ := e.Step(pid(1), &pb.GossipMessage{Content: &pb.GossipMessage_StateRequest{
			StateRequest: &pb.StateRequest{Nonce: 5, Range: &pb.BlockRange{Start: start, End: end}}}})
		return outs[0].Msg.GetStateResponse()
	}
	r := ask(10, 1<<63)
	if r.GetHeight() != 300 || len(r.GetBlocks()) == 0 || len(r.GetBlocks()) >= int(cfg.BatchSize) {
		t.Fatalf("height %d, %d blocks: want 300 and a byte-capped batch", r.GetHeight(), len(r.GetBlocks()))
	}
	cfg.MaxResponseBytes = 1
	e, _ = newTestEngine(t, cfg, 300)
	if r := ask(10, 20); len(r.GetBlocks()) != 1 {
		t.Fatalf("%d blocks under a 1-byte cap, want exactly 1 (a block always travels)", len(r.GetBlocks()))
	}
	if r := ask(300, 400); len(r.GetBlocks()) != 0 || r.GetHeight() != 300 {
		t.Fatalf("beyond our height: %d blocks, height %d", len(r.GetBlocks()), r.GetHeight())
	}
}

func TestReadSpans(t *testing.T) {
	in := []*pb.BlockRange{{Start: 10, End: 20}, nil, {Start: 5, End: 12}, {Start: 30, End: 30}, {Start: 50, End: 10}, {Start: 25, End: 1 << 63}}
	got := readSpans(in, 10, 0, 100)
	want := []span{{5, 20}, {25, 100}}
	if len(got) != len(want) || got[0] != want[0] || got[1] != want[1] {
		t.Fatalf("readSpans = %v, want %v", got, want)
	}
	if got := readSpans(in, 1, 15, 100); len(got) != 1 || got[0] != (span{15, 20}) {
		t.Fatalf("limit 1, clipped: %v", got)
	}
	for n, want := range map[uint64]bool{4: false, 5: true, 19: true, 20: false, 99: true, 100: false} {
		if spansHave(readSpans(in, 10, 0, 100), n) != want {
			t.Errorf("spansHave(%d) != %v", n, want)
		}
	}
}

// A round asks each missing block from exactly one responder, spread over
// the responders in a few contiguous stripes.
func TestPullSpreadsRequests(t *testing.T) {
	cfg := pullOnly()
	cfg.PullOnStart = false // the round comes within PullInterval
	e, _ := newTestEngine(t, cfg, 100)
	live := []PeerInfo{{ID: pid(1), Height: 160}, {ID: pid(2), Height: 160}, {ID: pid(3), Height: 160}}
	var hellos []Out
	for range cfg.PullInterval {
		hellos = append(hellos, e.Tick(live)...)
	}
	if len(hellos) != 3 {
		t.Fatalf("%d hellos, want one to each of 3 peers", len(hellos))
	}
	var reqs []Out
	for _, h := range hellos {
		digest := &pb.GossipMessage{Content: &pb.GossipMessage_PullDigest{PullDigest: &pb.PullDigest{
			Nonce: h.Msg.GetPullHello().GetNonce(), Ranges: writeSpans([]span{{40, 160}})}}}
		outs, _ := e.Step(h.To, digest)
		reqs = append(reqs, outs...)
	}
	if len(reqs) != 3 {
		t.Fatalf("%d requests once all digests are in, want 3", len(reqs))
	}
	asked := make(map[uint64]bool)
	for _, r := range reqs {
		n := 0
		for _, rg := range r.Msg.GetPullRequest().GetRanges() {
			for b := rg.GetStart(); b < rg.GetEnd(); b++ {
				if asked[b] {
					t.Fatalf("block %d asked twice", b)
				}
				asked[b] = true
				n++
			}
		}
		if len(r.Msg.GetPullRequest().GetRanges()) > 2 || n < 10 || n > 30 {
			t.Errorf("request to %v: %d blocks in %d ranges; want ~20 in at most 2", r.To, n, len(r.Msg.GetPullRequest().GetRanges()))
		}
	}
	if len(asked) != 60 {
		t.Fatalf("asked %d blocks, want the 60 missing [100, 160)", len(asked))
	}
}

// PullSoon starts a round at the next tick instead of waiting out
// PullInterval, but never while a round is under way.
func TestPullSoonBringsTheRoundForward(t *testing.T) {
	cfg := pullOnly()
	cfg.PullInterval = 50
	e, _ := newTestEngine(t, cfg, 0)
	live := []PeerInfo{{ID: pid(1), Height: 5}, {ID: pid(2), Height: 5}}
	// Let the first scheduled round pass, then stay quiet.
	for range cfg.PullInterval + cfg.NonceTTL + 1 {
		e.Tick(live)
	}
	if n := hellos(e.Tick(live)); n != 0 {
		t.Fatalf("%d hellos between rounds", n)
	}
	e.PullSoon()
	if n := hellos(e.Tick(live)); n == 0 {
		t.Fatal("PullSoon: no hello at the next tick")
	}
	e.PullSoon() // a round is under way: no second one
	if n := hellos(e.Tick(live)); n != 0 {
		t.Fatalf("PullSoon during a round started another (%d hellos)", n)
	}
}

// Peers started together do not make their far rounds (a hello that may
// open a new stream) together: each starts its cycle of FarRounds rounds
// at a phase drawn from its ID.
func TestFarRoundsFallAtEachPeersOwnPhase(t *testing.T) {
	cfg := pullOnly()
	cfg.PullInterval = 1 // a round every tick
	var live []PeerInfo
	for i := range 12 {
		live = append(live, PeerInfo{ID: pid(byte(100 + i)), Height: 5, Near: i < cfg.PullPeers})
	}
	firstFar := map[int]int{} // round of each peer's first far round -> peers
	for i := range 10 {
		e, err := New(cfg, pid(byte(i)), rand.New(rand.NewPCG(1, 2)), &memStore{blocks: map[uint64]*pb.Block{}})
		if err != nil {
			t.Fatal(err)
		}
		round := -1
		for range 3 * cfg.FarRounds {
			outs := e.Tick(live)
			if hellos(outs) == 0 {
				continue
			}
			round++
			far := false
			for _, o := range outs {
				if o.Msg.GetPullHello() != nil && o.To[0] >= 100+byte(cfg.PullPeers) {
					far = true
				}
			}
			if far {
				firstFar[round]++
				break
			}
		}
	}
	if len(firstFar) < 5 {
		t.Fatalf("10 peers started together made their first far round in only %d different rounds (%v)", len(firstFar), firstFar)
	}
}

// hellos counts the PullHellos in outs.
func hellos(outs []Out) int {
	n := 0
	for _, o := range outs {
		if o.Msg.GetPullHello() != nil {
			n++
		}
	}
	return n
}
