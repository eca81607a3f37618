package gossip

import (
	"testing"

	"github.com/blockgossip/blockgossip/identity"
	"github.com/blockgossip/blockgossip/ledger"
	pb "github.com/blockgossip/blockgossip/protos"
)

// copiesPerPeer is the mean number of full copies of blocks [from, to)
// each peer received (first copy plus duplicates).
func copiesPerPeer(net *simNet, from, to int) float64 {
	total := 0
	for _, sp := range net.peers {
		if sp.down {
			continue
		}
		for n := from; n < to; n++ {
			total += sp.tr.accepted[uint64(n)] + sp.tr.dups[uint64(n)]
		}
	}
	live := 0
	for _, sp := range net.peers {
		if !sp.down {
			live++
		}
	}
	return float64(total) / float64(live*(to-from))
}

// Tree mode, pull off: every peer gets every block by push alone, and once
// the tree has formed each peer receives about one full copy per block
// (random push to 4 costs about 4).
func TestTreePushReachesAllWithAboutOneCopy(t *testing.T) {
	cfg := DefaultConfig()
	cfg.PullEnabled = false
	cfg.Tree = true
	net := seededNet(t, 100, cfg, 30)
	chain := makeChain(testOrderer, 50, 30)
	for _, b := range chain {
		net.inject(0, b)
		net.ticks(cfg.GraftTimeout + 1) // let grafts and pruning settle
	}
	for _, sp := range net.peers {
		if len(sp.commits) != len(chain) {
			t.Fatalf("peer %d committed %d of %d blocks with pull off", sp.idx, len(sp.commits), len(chain))
		}
		checkPrefix(t, sp, chain)
	}
	first, steady := copiesPerPeer(net, 0, 1), copiesPerPeer(net, 10, 50)
	t.Logf("tree push, 100 peers: %.2f copies per peer for block 0, %.3f for blocks 10-49", first, steady)
	if steady > 1.2 {
		t.Fatalf("steady state: %.3f copies per peer per block, want <= 1.2", steady)
	}
}

// Each commit names the peer whose copy it was: the orderer's block at the
// leader names the leader, and a pushed copy names a peer that committed
// the block one hop nearer the orderer. The bench rebuilds a block's path
// to its last peer from these.
func TestCommitNamesTheCopysSender(t *testing.T) {
	cfg := DefaultConfig()
	cfg.PullEnabled = false
	net := seededNet(t, 30, cfg, 31)
	chain := makeChain(testOrderer, 5, 31)
	for _, b := range chain {
		net.inject(0, b)
		net.ticks(cfg.GraftTimeout + 1)
	}
	byPeer := make(map[identity.PKIID]map[uint64]Commit, len(net.peers))
	for _, sp := range net.peers {
		m := make(map[uint64]Commit, len(sp.commits))
		for _, c := range sp.commits {
			m[c.Number] = c
		}
		byPeer[sp.p.self.ID] = m
	}
	pushed := 0
	for _, sp := range net.peers {
		for _, c := range sp.commits {
			switch {
			case c.Via == ViaOrderer:
				if c.From != sp.p.self.ID {
					t.Fatalf("peer %d: block %d from the orderer names %v, want itself", sp.idx, c.Number, c.From)
				}
			case c.Via == ViaPush:
				pushed++
				// A graft's answer starts the hop count again at 1.
				parent, ok := byPeer[c.From][c.Number]
				if !ok || c.From == sp.p.self.ID || (parent.Hops+1 != c.Hops && c.Hops != 1) {
					t.Fatalf("peer %d: block %d at hop %d names %v, which committed it at hop %d (%v)", sp.idx, c.Number, c.Hops, c.From, parent.Hops, ok)
				}
			}
		}
	}
	if pushed < len(chain)*(len(net.peers)-1)/2 {
		t.Fatalf("only %d pushed commits: the test proves little", pushed)
	}
}

// After the tree forms, interior peers crash: IHave announcements and
// grafts repair the tree, so the survivors still get every block by push.
func TestTreeRepairsAfterCrashes(t *testing.T) {
	cfg := DefaultConfig()
	cfg.PullEnabled = false
	cfg.Tree = true
	net := seededNet(t, 60, cfg, 31)
	chain := makeChain(testOrderer, 40, 31)
	for _, b := range chain[:20] {
		net.inject(0, b)
		net.ticks(cfg.GraftTimeout + 1)
	}
	// Crash the five peers that forwarded the most (interior tree nodes).
	crashed := 0
	for _, sp := range net.peers[1:] {
		if crashed < 5 && len(sp.p.eager.ids) > 1 {
			sp.down = true
			crashed++
		}
	}
	for _, b := range chain[20:] {
		net.inject(0, b)
		net.ticks(cfg.GraftTimeout + 1)
	}
	for _, sp := range net.peers {
		if sp.down {
			continue
		}
		if len(sp.commits) != len(chain) {
			t.Fatalf("peer %d committed %d of %d blocks after %d crashes", sp.idx, len(sp.commits), len(chain), crashed)
		}
		checkPrefix(t, sp, chain)
	}
	t.Logf("%d interior peers crashed; survivors got all blocks; %.3f copies per peer for blocks 25-39",
		crashed, copiesPerPeer(net, 25, 40))
}

// The graft timeout follows how late eager copies arrive after their
// IHave: a late copy (a busy machine, big blocks) raises it at once so
// that blocks on their way are not grafted; prompt ones bring it back to
// GraftTimeout, slowly; it never leaves [GraftTimeout, MaxGraftTimeout].
func TestGraftTimeoutAdaptsToLateEagerCopies(t *testing.T) {
	cfg := DefaultConfig()
	net := seededNet(t, 2, cfg, 32)
	p := net.peers[0].p
	if got := p.GraftTimeout(); got != cfg.GraftTimeout {
		t.Fatalf("initial graft timeout %d, want GraftTimeout %d", got, cfg.GraftTimeout)
	}
	p.observeLate(3 * p.resolution()) // one copy 3 ticks late: the next such copy is not grafted
	if got := p.GraftTimeout(); got != 4 {
		t.Fatalf("after a copy 3 ticks late the timeout is %d, want 4 (late + 1)", got)
	}
	p.observeLate(0)
	if got := p.GraftTimeout(); got != 3 {
		t.Fatalf("one prompt copy after a late one: timeout %d, want 3 (decaying, not reset)", got)
	}
	for range 20 {
		p.observeLate(100)
	}
	if got := p.GraftTimeout(); got != cfg.MaxGraftTimeout {
		t.Fatalf("very late copies: timeout %d, want MaxGraftTimeout %d", got, cfg.MaxGraftTimeout)
	}
	steps := 0
	for p.GraftTimeout() > cfg.GraftTimeout {
		p.observeLate(0)
		steps++
		if steps > 100 {
			t.Fatalf("prompt copies: timeout still %d after 100 blocks, want GraftTimeout %d", p.GraftTimeout(), cfg.GraftTimeout)
		}
	}
	if steps < 10 {
		t.Fatalf("prompt copies brought the timeout from %d to %d in %d blocks: a burst of load would be forgotten at once", cfg.MaxGraftTimeout, cfg.GraftTimeout, steps)
	}
	t.Logf("from MaxGraftTimeout back to GraftTimeout in %d prompt blocks", steps)
}

// End to end: an IHave for a block arrives, the eager copy two ticks
// later; after a few such blocks the peer stops grafting them.
func TestLateEagerCopiesAreNotGrafted(t *testing.T) {
	cfg := DefaultConfig()
	cfg.PullEnabled = false
	net := seededNet(t, 3, cfg, 33)
	net.ticks(2) // neighbour sets
	p := net.peers[2].p
	net.collect(net.peers[2])
	chain := makeChain(testOrderer, 16, 33)
	announcer, parent := fakeID(0), fakeID(1)
	grafts := 0
	for i, b := range chain {
		key := blockKey{number: uint64(i), hash: [32]byte(ledger.HeaderHash(b))}
		p.Step(announcer, "org1", envelope(&pb.GossipMessage{Content: &pb.GossipMessage_Ihave{Ihave: &pb.IHave{
			Number: key.number, Hash: key.hash[:], Hops: 1}}}), 0)
		for range 2 {
			p.Tick()
			for _, m := range p.Ready().Messages {
				if msg, err := decode(m.Env); err == nil && msg.GetGraft() != nil && len(msg.GetGraft().GetHash()) > 0 {
					grafts++
					if i >= 1 {
						t.Fatalf("block %d grafted although eager copies have been arriving 2 ticks late (timeout %d)", i, p.GraftTimeout())
					}
				}
			}
		}
		p.Step(parent, "org1", envelope(&pb.GossipMessage{Content: &pb.GossipMessage_Block{Block: &pb.BlockMessage{Block: b, Hops: 1}}}), 0)
		p.Ready()
	}
	if p.Height() != uint64(len(chain)) {
		t.Fatalf("height %d, want %d", p.Height(), len(chain))
	}
	late := p.GraftTimeout()
	t.Logf("grafts of in-flight blocks before the timeout adapted: %d; timeout now %d ticks", grafts, late)

	// Eager copies on time again (each before its IHave): the timeout
	// comes back down, so a lost copy is grafted quickly again.
	more := makeChain(testOrderer, len(chain)+16, 33)[len(chain):]
	for _, b := range more {
		p.Step(parent, "org1", envelope(&pb.GossipMessage{Content: &pb.GossipMessage_Block{Block: &pb.BlockMessage{Block: b, Hops: 1}}}), 0)
		h := ledger.HeaderHash(b)
		n, _ := parseNumber(b)
		p.Step(announcer, "org1", envelope(&pb.GossipMessage{Content: &pb.GossipMessage_Ihave{Ihave: &pb.IHave{Number: n, Hash: h, Hops: 1}}}), 0)
		p.Tick()
		p.Ready()
	}
	if p.Height() != uint64(len(chain)+len(more)) {
		t.Fatalf("height %d, want %d", p.Height(), len(chain)+len(more))
	}
	if got := p.GraftTimeout(); got != cfg.GraftTimeout || late <= cfg.GraftTimeout {
		t.Fatalf("timeout %d while late, %d once copies are on time again; want > %d then %d", late, got, cfg.GraftTimeout, cfg.GraftTimeout)
	}
}

// countIHaves counts the IHaves in msgs.
func countIHaves(msgs []Out) int {
	n := 0
	for _, m := range msgs {
		if msg, err := decode(m.Env); err == nil && msg.GetIhave() != nil {
			n++
		}
	}
	return n
}

// IHaves wait IHaveDelay ticks (the eager copy's head start); 0 sends
// them with the block.
func TestIHaveDelay(t *testing.T) {
	for _, delay := range []int{0, 1, 3} {
		cfg := DefaultConfig()
		cfg.PullEnabled = false
		cfg.IHaveDelay = delay
		cfg.IHaveDelaySub = 0 // whole ticks (subtick_test.go times the sub-tick delay)
		net := seededNet(t, 12, cfg, 35)
		net.ticks(2)
		p := net.peers[0].p
		net.collect(net.peers[0])
		if len(p.lazy.ids) == 0 {
			t.Fatal("no lazy neighbours")
		}
		ihaves := func() int { return countIHaves(p.Ready().Messages) }
		if err := p.InjectBlock(makeChain(testOrderer, 1, 35)[0]); err != nil {
			t.Fatal(err)
		}
		got := []int{ihaves()}
		for range delay {
			p.Tick()
			got = append(got, ihaves())
		}
		for i, n := range got {
			want := 0
			if i == delay {
				want = len(p.lazy.ids)
			}
			if n != want {
				t.Fatalf("IHaveDelay %d: %d IHaves %d ticks after the block, want %d (all: %v)", delay, n, i, want, got)
			}
		}
	}
}
