package gossip

import (
	"slices"
	"testing"

	"github.com/blockgossip/blockgossip/identity"
	pb "github.com/blockgossip/blockgossip/protos"
)

// lossyConfig is the default for a network that drops single messages,
// as these tests (and the simulator's --loss) do: a copy missing while
// the parent delivers may be lost, so ParentSilence is off.
func lossyConfig() Config {
	c := DefaultConfig()
	c.ParentSilence = 0
	return c
}

// graftPeer is peer 3 of a seeded 5-peer net (pull as given) whose eager
// parent, peer 0, has pushed it block 0 of chain. Peers 1, 2 and 4 are
// announcers in the tests.
func graftPeer(t *testing.T, cfg Config, seed uint64, blocks int) (*simNet, *Peer, []*pb.Block) {
	t.Helper()
	net := seededNet(t, 5, cfg, seed)
	net.ticks(2)
	p := net.peers[3].p
	net.collect(net.peers[3])
	chain := makeChain(testOrderer, blocks, seed)
	p.Step(fakeID(0), "org1", pushEnv(chain[0], 1), 0)
	p.Ready()
	if p.parent != fakeID(0) {
		t.Fatal("the peer that pushed block 0 first is not our parent")
	}
	return net, p, chain
}

// ihaveFrom makes announcer id announce block n of chain to p.
func ihaveFrom(p *Peer, id identity.PKIID, chain []*pb.Block, n int) {
	p.Step(id, "org1", ihaveEnv(uint64(n), chain[n], 1), 0)
}

// blocksTo counts the Block messages in msgs addressed to id.
func blocksTo(msgs []Out, id identity.PKIID) int {
	n := 0
	for _, m := range msgs {
		if msg, err := decode(m.Env); err == nil && msg.GetBlock() != nil && m.To.ID == id {
			n++
		}
	}
	return n
}

// A graft that is not answered is retried with the next two announcers one
// graft round trip later (one tick here), not a whole graft timeout later:
// under loss each retry waited up to MaxGraftTimeout, one announcer at a
// time. The retried copy is an answer, not a late eager copy: it leaves
// the graft timeout alone.
func TestGraftRetryWaitsOneRoundTrip(t *testing.T) {
	cfg := lossyConfig()
	cfg.PullEnabled = false
	cfg.GraftQuorum, cfg.GraftHedge = 0, 1 // one announcer at the graft timeout (the quorum and the hedge have their own tests)
	_, p, chain := graftPeer(t, cfg, 50, 2)
	p.observeLate(3 * p.resolution()) // eager copies have lately come 3 ticks late
	timeout := p.GraftTimeout()
	if timeout != 4 {
		t.Fatalf("graft timeout %d after a copy 3 ticks late, want 4", timeout)
	}
	a, b, c := fakeID(1), fakeID(2), fakeID(4)
	ihaveFrom(p, a, chain, 1)
	ihaveFrom(p, b, chain, 1)
	ihaveFrom(p, c, chain, 1)
	p.Ready()
	firstAt, retryAt, retryCAt := 0, 0, 0
	for tick := 1; tick <= 2*cfg.MaxGraftTimeout && retryAt == 0; tick++ {
		p.Tick()
		msgs := p.Ready().Messages
		if got := treeMsgsTo(msgs, a); len(got) > 0 && got[0] == "graft" {
			firstAt = tick // a's answer is lost: nothing comes back
		}
		if got := treeMsgsTo(msgs, b); len(got) > 0 && got[0] == "graft" {
			retryAt = tick
		}
		if got := treeMsgsTo(msgs, c); len(got) > 0 && got[0] == "graft" {
			retryCAt = tick
		}
	}
	if retryCAt != retryAt {
		t.Fatalf("the retry grafted the second announcer at tick %d and the third at %d, want both at once", retryAt, retryCAt)
	}
	if firstAt != timeout {
		t.Fatalf("first graft at tick %d after the IHave, want %d (the graft timeout)", firstAt, timeout)
	}
	if retryAt != firstAt+1 {
		t.Fatalf("retry at tick %d, want %d (one round trip after the unanswered graft at %d)", retryAt, firstAt+1, firstAt)
	}
	p.Step(b, "org1", pushEnv(chain[1], 1), 0)
	p.Ready()
	if p.Height() != 2 {
		t.Fatalf("height %d, want 2", p.Height())
	}
	if got := p.GraftTimeout(); got > timeout {
		t.Fatalf("graft timeout %d after a retried graft's answer, want at most %d: an answer is no late eager copy", got, timeout)
	}
	if got, want := p.retryTimeout(), min(2, p.resolution()); got != want {
		t.Fatalf("retry timeout %d sub-ticks after an answer within the tick, want %d (the margin alone)", got, want)
	}
}

// Every graft is told to the Tracer: the first one, while the parent still
// delivers, asks for the block alone; the retry after no answer asks the
// next two announcers and makes them eager neighbours.
func TestGraftsAreTraced(t *testing.T) {
	cfg := DefaultConfig()
	cfg.PullEnabled = false
	cfg.GraftQuorum, cfg.GraftHedge = 0, 1
	net, p, chain := graftPeer(t, cfg, 50, 2)
	tr := net.peers[3].tr
	a, b, c := fakeID(1), fakeID(2), fakeID(4)
	ihaveFrom(p, a, chain, 1)
	ihaveFrom(p, b, chain, 1)
	ihaveFrom(p, c, chain, 1)
	p.Ready()
	for tick := 0; tick < 2*cfg.MaxGraftTimeout && len(tr.grafts) < 3; tick++ {
		p.Tick()
		p.Ready()
	}
	want := []tracedGraft{
		{to: a, number: 1, repeat: false, reshapes: false},
		{to: b, number: 1, repeat: true, reshapes: true},
		{to: c, number: 1, repeat: true, reshapes: true},
	}
	if len(tr.grafts) != len(want) {
		t.Fatalf("traced grafts %+v, want %+v", tr.grafts, want)
	}
	for i := range want {
		if tr.grafts[i] != want[i] {
			t.Fatalf("graft %d traced as %+v, want %+v", i, tr.grafts[i], want[i])
		}
	}
}

// A lost eager copy that reaches us round the loss (a neighbour other than
// our parent that got the block elsewhere pushes it) is no sign of a slow
// parent: it does not raise the graft timeout, while the parent's own late
// copy does.
func TestCopyRoundALossDoesNotRaiseTheGraftTimeout(t *testing.T) {
	cfg := DefaultConfig()
	cfg.PullEnabled = false
	_, p, chain := graftPeer(t, cfg, 51, 4)
	a, other := fakeID(1), fakeID(2)
	p.eager.set(other, true) // a neighbour that pushes to us too
	ihaveFrom(p, a, chain, 1)
	p.Ready()
	for range 3 { // the graft to a goes out and its answer is lost
		p.Tick()
		p.Ready()
	}
	p.Step(other, "org1", pushEnv(chain[1], 4), 0)
	p.Ready()
	if p.Height() != 2 {
		t.Fatalf("height %d, want 2", p.Height())
	}
	if got := p.GraftTimeout(); got != cfg.GraftTimeout {
		t.Fatalf("graft timeout %d after a copy round a loss, 3 ticks after the IHave, want %d", got, cfg.GraftTimeout)
	}
	// The parent's own copy, late: that one teaches the timeout (block 2,
	// on time, makes peer 0 our parent again).
	p.Step(fakeID(0), "org1", pushEnv(chain[2], 1), 0)
	ihaveFrom(p, a, chain, 3)
	p.Ready()
	p.Tick()
	p.Ready()
	p.Step(fakeID(0), "org1", pushEnv(chain[3], 1), 0)
	p.Ready()
	if got := p.GraftTimeout(); got != 2 {
		t.Fatalf("graft timeout %d after the parent's copy came 1 tick late, want 2", got)
	}
}

// When every announcer of a missing block was grafted and none answered,
// the block is handed to pull at once: a pull round starts within a tick
// or two, not at the next PullInterval.
func TestUnansweredGraftsStartAPullRound(t *testing.T) {
	cfg := lossyConfig()
	const warm = 8 // ticks before the window: no regular round due in it (checked below)
	// nextHello is how many ticks after the window opens peer 3 sends its
	// next pull hello (-1: none within 2 PullIntervals).
	nextHello := func(withIHave bool) int {
		net, p, chain := graftPeer(t, cfg, 52, 2)
		start, next := -1, -1
		net.filter = func(m simMsg) bool {
			if msg, err := decode(m.env); err == nil && msg.GetPullHello() != nil &&
				m.from == p.self.ID && start >= 0 && next < 0 {
				next = net.now - start
			}
			return true
		}
		net.ticks(warm)
		start = net.now
		if withIHave { // peer 1 does not have block 1: the graft goes unanswered
			ihaveFrom(p, fakeID(1), chain, 1)
			net.collect(net.peers[3])
		}
		for range 2 * cfg.Pull.PullInterval {
			if net.tick(); next >= 0 {
				break
			}
		}
		return next
	}
	control, got := nextHello(false), nextHello(true)
	t.Logf("next pull hello %d ticks into the window with an unanswered graft, %d without", got, control)
	if control >= 0 && control <= cfg.GraftTimeout+2 {
		t.Fatalf("the control run pulled %d ticks into the window: move the window", control)
	}
	if got < 0 || got > cfg.GraftTimeout+2 {
		t.Fatalf("pull round %d ticks after the IHave, want within %d (graft, its round trip, the round)", got, cfg.GraftTimeout+2)
	}
}

// A block that pull delivered a moment before its pushed copy is forwarded
// down the tree when that copy arrives (the peers below wait for the
// push), once: a second pushed copy is a redundant link and is pruned.
func TestPulledBlockIsForwardedWhenItsPushedCopyArrives(t *testing.T) {
	cfg := DefaultConfig()
	cfg.PullEnabled = false
	_, p, chain := graftPeer(t, cfg, 53, 2)
	parent, other := fakeID(0), fakeID(1)
	var children []identity.PKIID
	for _, id := range p.eager.ids {
		if id != parent && id != other {
			children = append(children, id)
		}
	}
	if len(children) == 0 {
		t.Fatal("no eager neighbour below us")
	}
	if err := p.handleBlock(other, chain[1], wireBlock{}, ViaPull, 0); err != nil {
		t.Fatal(err)
	}
	if n := blocksTo(p.Ready().Messages, children[0]); n != 0 {
		t.Fatalf("a pulled block was pushed %d times at once, want 0 (its pushed copy may be on the way to them)", n)
	}
	p.Step(parent, "org1", pushEnv(chain[1], 1), 0)
	msgs := p.Ready().Messages
	for _, c := range children {
		if n := blocksTo(msgs, c); n != 1 {
			t.Fatalf("the pushed copy of a pulled block reached eager neighbour %v %d times, want 1", c, n)
		}
	}
	if n := prunesTo(msgs, parent); n != 0 {
		t.Fatalf("the pushed copy of a pulled block pruned the parent (%d)", n)
	}
	p.Step(other, "org1", pushEnv(chain[1], 1), 0)
	msgs = p.Ready().Messages
	if n := prunesTo(msgs, other); n != 1 {
		t.Fatalf("a second pushed copy sent %d Prune(s), want 1", n)
	}
	if n := blocksTo(msgs, children[0]); n != 0 {
		t.Fatalf("a second pushed copy was forwarded %d times, want 0", n)
	}
}

// A copy grafted one-shot is forwarded to our eager neighbours but not to
// our parent: the parent's own copy is on the way, ours would be a
// duplicate there and make it prune us.
func TestOneShotCopyIsNotPushedToTheParent(t *testing.T) {
	cfg := lossyConfig()
	cfg.PullEnabled = false
	_, p, chain := graftPeer(t, cfg, 54, 2)
	parent, announcer := fakeID(0), fakeID(1)
	ihaveFrom(p, announcer, chain, 1)
	p.Ready()
	got := tickUntilTreeMsgTo(p, announcer)
	if len(got) != 2 || got[0] != "graft" || got[1] != "prune" {
		t.Fatalf("sent %v to the announcer, want [graft prune] (one-shot)", got)
	}
	p.Step(announcer, "org1", pushEnv(chain[1], 1), 0)
	if n := blocksTo(p.Ready().Messages, parent); n != 0 {
		t.Fatalf("a copy grafted one-shot was pushed to our parent %d time(s), want 0", n)
	}
	if _, ok := p.eager.pos[parent]; !ok {
		t.Fatal("the parent left the eager set")
	}
}

// A parent that got a block late by its own graft (after a loss above it)
// passes on a late copy that says nothing about its link to us: it comes
// after a later block from it, or with the hop count a graft's answer
// restarts. Neither raises our graft timeout; the same copy in order and
// at the parent's depth does.
func TestParentsRepairedCopyDoesNotRaiseTheGraftTimeout(t *testing.T) {
	cfg := lossyConfig()
	cfg.PullEnabled = false
	cfg.GraftParent = false // the parent's copy must come unasked: once grafted, it is an answer
	for _, tc := range []struct {
		name      string
		hops      uint32 // of the parent's late copy of block 1 (block 0 came with 5)
		afterNext bool   // the parent pushes block 2 before its copy of block 1
		answered  bool   // our graft of block 1 was answered first
		want      int
	}{
		{"after a later block", 5, true, true, 1},
		{"hop count restarted", 2, false, false, 1},
		{"hop count restarted, after our graft's answer", 2, false, true, 1},
		{"in order, at depth: late", 5, false, true, 4},
		{"in order, at depth, unanswered: late", 5, false, false, 4},
	} {
		t.Run(tc.name, func(t *testing.T) {
			net := seededNet(t, 5, cfg, 55)
			net.ticks(2)
			p := net.peers[3].p
			net.collect(net.peers[3])
			chain := makeChain(testOrderer, 3, 55)
			parent, a := fakeID(0), fakeID(1)
			p.Step(parent, "org1", pushEnv(chain[0], 5), 0)
			ihaveFrom(p, a, chain, 1)
			p.Ready()
			for range 3 { // the graft to a goes out at the first tick
				p.Tick()
				p.Ready()
			}
			if tc.answered {
				p.Step(a, "org1", pushEnv(chain[1], 1), 0)
			}
			if tc.afterNext {
				p.Step(parent, "org1", pushEnv(chain[2], 5), 0)
			}
			p.Step(parent, "org1", pushEnv(chain[1], tc.hops), 0)
			p.Ready()
			if p.Height() < 2 {
				t.Fatalf("height %d, want at least 2", p.Height())
			}
			if got := p.GraftTimeout(); got != tc.want {
				t.Fatalf("graft timeout %d after the parent's copy came 3 ticks after the IHave, want %d", got, tc.want)
			}
		})
	}
}

// Lossy links, pull off: every block still reaches every peer by push and
// grafts alone, within a few ticks of its injection (IHaveDelay, the
// graft timeout, retries one round trip apart, two announcers at a time).
func TestTreeRepairsLossWithinAFewTicks(t *testing.T) {
	cfg := lossyConfig()
	cfg.PullEnabled = false
	net := seededNet(t, 60, cfg, 56)
	chain := makeChain(testOrderer, 30, 56)
	for _, b := range chain[:5] { // the tree forms without loss
		net.inject(0, b)
		net.ticks(2)
	}
	net.loss = 0.05
	const within = 6
	worst := 0
	for i, b := range chain[5:] {
		n := uint64(i + 5)
		net.inject(0, b)
		for k := 1; ; k++ {
			net.tick()
			done := true
			for _, sp := range net.peers {
				if sp.p.Height() <= n {
					done = false
				}
			}
			if done {
				worst = max(worst, k)
				break
			}
			if k == within {
				t.Fatalf("block %d not at every peer %d ticks after injection at 5%% loss, pull off", n, within)
			}
		}
	}
	t.Logf("5%% loss, 60 peers: every block everywhere within %d ticks (%d messages lost)", worst, net.dropped)
}

// While our eager parent is delivering (it pushed us a block within
// ParentSilence ticks), a block announced but missing is late on its way
// from it, not lost, and is not grafted: over gRPC every such graft
// brought a duplicate, and on a busy machine they fed on themselves. Once
// the parent has been silent that long, the announcers are grafted.
func TestDeliveringParentIsWaitedFor(t *testing.T) {
	cfg := DefaultConfig()
	cfg.PullEnabled = false
	if cfg.ParentSilence < 2 {
		t.Fatalf("default ParentSilence %d: the test needs a window of ticks", cfg.ParentSilence)
	}
	announce := func(p *Peer, chain []*pb.Block) {
		for _, id := range []identity.PKIID{fakeID(1), fakeID(2), fakeID(4)} {
			ihaveFrom(p, id, chain, 1)
		}
		p.Ready()
	}
	grafts := func(msgs []Out) int {
		n := 0
		for _, id := range []identity.PKIID{fakeID(0), fakeID(1), fakeID(2), fakeID(4)} {
			for _, kind := range treeMsgsTo(msgs, id) {
				if kind == "graft" {
					n++
				}
			}
		}
		return n
	}

	t.Run("late copy", func(t *testing.T) {
		_, p, chain := graftPeer(t, cfg, 80, 2)
		announce(p, chain)
		for tick := 1; tick < cfg.ParentSilence; tick++ {
			p.Tick()
			if n := grafts(p.Ready().Messages); n > 0 {
				t.Fatalf("tick %d: %d grafts while the parent delivers, want none", tick, n)
			}
		}
		p.Step(fakeID(0), "org1", pushEnv(chain[1], 1), 0) // the parent's late copy
		p.Ready()
		if p.Height() != 2 {
			t.Fatalf("height %d after the parent's copy, want 2", p.Height())
		}
		for tick := 0; tick < 2*cfg.ParentSilence; tick++ {
			p.Tick()
			if n := grafts(p.Ready().Messages); n > 0 {
				t.Fatalf("%d grafts after the block came, want none", n)
			}
		}
	})

	t.Run("silent parent", func(t *testing.T) {
		_, p, chain := graftPeer(t, cfg, 81, 2)
		announce(p, chain)
		first := 0
		for tick := 1; tick <= 2*cfg.ParentSilence && first == 0; tick++ {
			p.Tick()
			if grafts(p.Ready().Messages) > 0 {
				first = tick
			}
		}
		if first < cfg.ParentSilence || first > cfg.ParentSilence+1 {
			t.Fatalf("first graft at tick %d after the parent's last copy, want %d (ParentSilence) or the next", first, cfg.ParentSilence)
		}
	})
}

// firstGraftTick ticks p up to max times and returns the first tick
// (1-based) after which it grafted a block from graftPeer's parent or
// one of its announcers, or 0 if it did not.
func firstGraftTick(p *Peer, max int) int {
	ids := []identity.PKIID{fakeID(0), fakeID(1), fakeID(2), fakeID(4)}
	for tick := 1; tick <= max; tick++ {
		p.Tick()
		msgs := p.Ready().Messages
		for _, id := range ids {
			if slices.Contains(treeMsgsTo(msgs, id), "graft") {
				return tick
			}
		}
	}
	return 0
}

// A block is waited for from a delivering parent only while it is next in
// what the parent pushes us. When the parent has pushed a later block, when
// the block before came another way, or when the parent itself announced
// the block (it holds us lazy), the copy is not on its way: the announcers
// are grafted at the graft timeout, not after ParentSilence. Without this,
// such blocks waited for pull in 100-peer bench runs, 500-750 ms after
// their cut: the p99 of most runs.
func TestParentThatPassedABlockIsNotWaitedFor(t *testing.T) {
	cfg := DefaultConfig()
	cfg.PullEnabled = false
	const within = 2 // ticks: the graft timeout is under one
	if cfg.ParentSilence <= 2*within {
		t.Fatalf("default ParentSilence %d: the test needs it well above %d ticks", cfg.ParentSilence, within)
	}
	announcers := []identity.PKIID{fakeID(1), fakeID(2), fakeID(4)}
	graftTick := func(p *Peer) int { return firstGraftTick(p, cfg.ParentSilence) }

	t.Run("parent pushed a later block", func(t *testing.T) {
		_, p, chain := graftPeer(t, cfg, 90, 3)
		for _, id := range announcers {
			ihaveFrom(p, id, chain, 1)
		}
		p.Step(fakeID(0), "org1", pushEnv(chain[2], 1), 0) // the parent passed block 1
		p.Ready()
		if got := graftTick(p); got == 0 || got > within {
			t.Fatalf("block 1 grafted at tick %d, want 1..%d", got, within)
		}
	})

	t.Run("block before came another way", func(t *testing.T) {
		_, p, chain := graftPeer(t, cfg, 91, 3)
		if err := p.handleBlock(fakeID(1), chain[1], wireBlock{}, ViaPull, 0); err != nil {
			t.Fatal(err)
		}
		p.Ready()
		for _, id := range announcers {
			ihaveFrom(p, id, chain, 2)
		}
		p.Ready()
		if got := graftTick(p); got == 0 || got > within {
			t.Fatalf("block 2 grafted at tick %d, want 1..%d", got, within)
		}
	})

	t.Run("parent announced it", func(t *testing.T) {
		_, p, chain := graftPeer(t, cfg, 92, 2)
		for _, id := range append([]identity.PKIID{fakeID(0)}, announcers...) {
			ihaveFrom(p, id, chain, 1)
		}
		p.Ready()
		if got := graftTick(p); got == 0 || got > within {
			t.Fatalf("block 1 grafted at tick %d, want 1..%d", got, within)
		}
	})
}

// The graft timeout waits out eager copies that run late. A block that
// our parent has passed (pushed a later one), or announced, or one after
// two blocks that came another way (the parent has stopped pushing to
// us), is grafted at the timeout's floor: no eager copy is on its way.
// Before, a peer whose parent had stopped pushing to it waited out a
// lateness learnt from earlier copies for every block: 500 ms in 100-peer
// runs.
func TestGraftTimeoutIsForCopiesOnTheirWay(t *testing.T) {
	cfg := lossyConfig() // no ParentSilence: the graft timeout alone
	cfg.PullEnabled = false
	const late = 6 // ticks: the graft timeout is late + 1
	announcers := []identity.PKIID{fakeID(1), fakeID(2), fakeID(4)}
	// setup is graftPeer's peer after a copy came late ticks after its
	// IHave.
	setup := func(t *testing.T, seed uint64, blocks int) (*Peer, []*pb.Block) {
		_, p, chain := graftPeer(t, cfg, seed, blocks)
		p.observeLate(late * p.resolution())
		if got := p.GraftTimeout(); got != late+1 {
			t.Fatalf("graft timeout %d ticks, want %d", got, late+1)
		}
		return p, chain
	}
	graftTick := func(p *Peer) int { return firstGraftTick(p, 2*late) }
	announce := func(p *Peer, chain []*pb.Block, n int) {
		for _, id := range announcers {
			ihaveFrom(p, id, chain, n)
		}
		p.Ready()
	}

	t.Run("parent on track", func(t *testing.T) {
		p, chain := setup(t, 100, 2)
		announce(p, chain, 1)
		if got := graftTick(p); got < late || got > late+2 {
			t.Fatalf("block 1 grafted at tick %d, want the graft timeout (%d ticks) waited out", got, late+1)
		}
	})

	t.Run("one block before came another way", func(t *testing.T) {
		p, chain := setup(t, 101, 3)
		if err := p.handleBlock(fakeID(1), chain[1], wireBlock{}, ViaPull, 0); err != nil {
			t.Fatal(err)
		}
		announce(p, chain, 2)
		if got := graftTick(p); got < late || got > late+2 {
			t.Fatalf("block 2 grafted at tick %d, want the graft timeout (%d ticks) waited out: one copy lost on the way stops no parent", got, late+1)
		}
	})

	t.Run("two blocks before came another way", func(t *testing.T) {
		p, chain := setup(t, 104, 4)
		for n := 1; n <= 2; n++ {
			if err := p.handleBlock(fakeID(1), chain[n], wireBlock{}, ViaPull, 0); err != nil {
				t.Fatal(err)
			}
		}
		announce(p, chain, 3)
		if got := graftTick(p); got != 1 {
			t.Fatalf("block 3 grafted at tick %d, want 1 (the floor)", got)
		}
	})

	t.Run("parent announces it first", func(t *testing.T) {
		p, chain := setup(t, 105, 2)
		ihaveFrom(p, fakeID(0), chain, 1)
		announce(p, chain, 1)
		if got := graftTick(p); got != 1 {
			t.Fatalf("block 1 grafted at tick %d after the parent announced it, want 1", got)
		}
	})

	// The parent tells us, a tick after the announcers, that it will
	// not push block 1 after all.
	for _, tc := range []struct {
		name string
		seed uint64
		tell func(p *Peer, chain []*pb.Block)
	}{
		{"parent passes it later", 102, func(p *Peer, chain []*pb.Block) {
			p.Step(fakeID(0), "org1", pushEnv(chain[2], 1), 0)
		}},
		{"parent announces it later", 103, func(p *Peer, chain []*pb.Block) {
			ihaveFrom(p, fakeID(0), chain, 1)
		}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			p, chain := setup(t, tc.seed, 3)
			announce(p, chain, 1)
			p.Tick()
			p.Ready()
			tc.tell(p, chain)
			p.Ready()
			if got := graftTick(p); got != 1 {
				t.Fatalf("block 1 grafted at tick %d after the parent's word, want 1", got)
			}
		})
	}
}
