package gossip

import (
	"context"
	"log/slog"
	"testing"
	"time"

	"github.com/blockgossip/blockgossip/comm"
	"github.com/blockgossip/blockgossip/identity"
	"github.com/blockgossip/blockgossip/ledger"
	pb "github.com/blockgossip/blockgossip/protos"
)

// pushEnv is a pushed copy of b that has made hops hops.
func pushEnv(b *pb.Block, hops uint32) *pb.Envelope {
	return envelope(&pb.GossipMessage{Content: &pb.GossipMessage_Block{Block: &pb.BlockMessage{Block: b, Hops: hops}}})
}

// ihaveEnv is an IHave for block b (number n) that has made hops hops.
func ihaveEnv(n uint64, b *pb.Block, hops uint32) *pb.Envelope {
	return envelope(&pb.GossipMessage{Content: &pb.GossipMessage_Ihave{Ihave: &pb.IHave{
		Number: n, Hash: ledger.HeaderHash(b), Hops: hops}}})
}

// prunesTo counts the Prune messages in msgs addressed to id.
func prunesTo(msgs []Out, id identity.PKIID) int {
	n := 0
	for _, m := range msgs {
		if msg, err := decode(m.Env); err == nil && msg.GetPrune() != nil && m.To.ID == id {
			n++
		}
	}
	return n
}

// A pull round that lists the block just cut can deliver it a moment
// before the eager copy. That copy is then a duplicate, but the eager link
// worked: it must stay eager. (Measured over gRPC at 50 peers: the pruned
// peer had no eager parent left and every later block waited IHaveDelay +
// the graft timeout, 100-200 ms, the whole p99.) A duplicate behind a
// pushed first copy still prunes.
func TestPushCopyAfterPullKeepsEagerLink(t *testing.T) {
	cfg := DefaultConfig()
	net := seededNet(t, 4, cfg, 41)
	net.ticks(2)
	sp := net.peers[3]
	p := sp.p
	net.collect(sp)
	chain := makeChain(testOrderer, 3, 41)
	parent, other := fakeID(0), fakeID(1)
	p.Step(parent, "org1", pushEnv(chain[0], 1), 0) // the parent pushes block 0: eager link
	if _, ok := p.eager.pos[parent]; !ok {
		t.Fatal("the peer that pushed block 0 is not an eager neighbour")
	}
	p.Ready()

	// Block 1 comes by pull first, then by push from the parent.
	if err := p.handleBlock(other, chain[1], wireBlock{}, ViaPull, 0); err != nil {
		t.Fatal(err)
	}
	p.Step(parent, "org1", pushEnv(chain[1], 1), 0)
	if n := prunesTo(p.Ready().Messages, parent); n != 0 {
		t.Fatalf("the eager copy of a pulled block sent %d Prune(s) to the parent, want 0", n)
	}
	if _, ok := p.eager.pos[parent]; !ok {
		t.Fatal("the eager copy of a pulled block demoted the parent to lazy")
	}

	// Block 2 comes by push from another peer first: the parent's copy is
	// a real redundant eager link and is pruned.
	p.Step(other, "org1", pushEnv(chain[2], 1), 0)
	p.Step(parent, "org1", pushEnv(chain[2], 1), 0)
	if n := prunesTo(p.Ready().Messages, parent); n != 1 {
		t.Fatalf("a redundant pushed copy sent %d Prune(s), want 1", n)
	}
	if _, ok := p.eager.pos[parent]; ok {
		t.Fatal("a redundant pushed copy left its sender eager")
	}
}

// queueTransport is a comm.Transport whose incoming queue the test fills
// and whose sends it records.
type queueTransport struct {
	self identity.PKIID
	in   chan comm.Message
	sent []comm.Peer
	envs []*pb.Envelope
}

func (q *queueTransport) Self() identity.PKIID { return q.self }
func (q *queueTransport) Send(to comm.Peer, env *pb.Envelope) error {
	q.sent, q.envs = append(q.sent, to), append(q.envs, env)
	return nil
}
func (q *queueTransport) Connect(context.Context, string) (identity.PKIID, error) {
	return identity.PKIID{}, comm.ErrClosed
}
func (q *queueTransport) Disconnect(identity.PKIID)     {}
func (q *queueTransport) Reachable(identity.PKIID)      {}
func (q *queueTransport) Incoming() <-chan comm.Message { return q.in }
func (q *queueTransport) Events() <-chan comm.Event     { return nil }
func (q *queueTransport) Close() error                  { return nil }

// When a tick fires while the eager copy of an announced block is already
// queued, the Node steps the copy first: the tick's graft deadline must not
// fire for a block that has arrived (on a saturated machine, at 100 peers,
// such grafts were a third of all deliveries and each one a duplicate).
func TestNodeTickStepsQueuedMessagesFirst(t *testing.T) {
	cfg := DefaultConfig()
	cfg.PullEnabled = false
	net := seededNet(t, 3, cfg, 42)
	net.ticks(2)
	p := net.peers[2].p
	net.collect(net.peers[2])
	tr := &queueTransport{self: p.self.ID, in: make(chan comm.Message, 8)}
	n := &Node{cfg: cfg, deps: Deps{Transport: tr}, log: slog.New(slog.DiscardHandler), met: NopMetrics(),
		peer: p, commits: make(chan CommitEvent, commitBuffer)}

	b := makeChain(testOrderer, 1, 42)[0]
	announcer, parent := fakeID(0), fakeID(1)
	p.Step(announcer, "org1", ihaveEnv(0, b, 1), 0)
	p.Ready()
	for range p.GraftTimeout() - 1 {
		if err := n.tick(time.Now()); err != nil {
			t.Fatal(err)
		}
		n.flush()
	}
	// The eager copy arrives; the graft deadline is the next tick.
	tr.in <- comm.Message{From: parent, Org: "org1", Env: pushEnv(b, 1), Size: 100}
	if err := n.tick(time.Now()); err != nil {
		t.Fatal(err)
	}
	n.flush() // as Run does after every event
	for i, env := range tr.envs {
		if msg, err := decode(env); err == nil && len(msg.GetGraft().GetHash()) > 0 {
			t.Fatalf("grafted block 0 from %v although its copy was queued before the tick", tr.sent[i].ID)
		}
	}
	if p.Height() != 1 {
		t.Fatalf("height %d after the tick, want 1 (the queued copy committed)", p.Height())
	}
}

// A queued IHave skips the lazy neighbours that showed they have the block
// while it waited (their IHave, or a copy): on a lazy link both ends would
// otherwise announce every block to each other.
func TestQueuedIHaveSkipsNeighboursThatHaveTheBlock(t *testing.T) {
	cfg := DefaultConfig()
	cfg.PullEnabled = false
	net := seededNet(t, 12, cfg, 43)
	net.ticks(2)
	p := net.peers[0].p
	net.collect(net.peers[0])
	for _, id := range p.liveOrg.ids { // a third lazy neighbour, to be told
		_, e := p.eager.pos[id]
		if _, l := p.lazy.pos[id]; !e && !l && len(p.lazy.ids) < 3 {
			p.lazy.set(id, true)
		}
	}
	if len(p.lazy.ids) < 3 {
		t.Fatalf("%d lazy neighbours, want at least 3", len(p.lazy.ids))
	}
	b := makeChain(testOrderer, 1, 43)[0]
	if err := p.InjectBlock(b); err != nil {
		t.Fatal(err)
	}
	p.Ready()
	announcer, copier := p.lazy.ids[0], p.lazy.ids[1]
	p.Step(announcer, "org1", ihaveEnv(0, b, 2), 0)
	p.Step(copier, "org1", pushEnv(b, 2), 0)
	lazy := append([]identity.PKIID(nil), p.lazy.ids...)
	p.Ready()
	told := map[identity.PKIID]int{}
	for range cfg.IHaveDelay {
		p.Tick()
		for _, m := range p.Ready().Messages {
			if msg, err := decode(m.Env); err == nil && msg.GetIhave() != nil {
				told[m.To.ID]++
			}
		}
	}
	if told[announcer] != 0 || told[copier] != 0 {
		t.Fatalf("IHave sent to a neighbour that announced the block (%d) or sent a copy (%d), want 0 and 0", told[announcer], told[copier])
	}
	for _, id := range lazy {
		if id != announcer && id != copier && told[id] != 1 {
			t.Fatalf("lazy neighbour %v got %d IHaves, want 1", id, told[id])
		}
	}
}

// treeMsgsTo returns the tree messages in msgs addressed to id, in order:
// "graft" (with a block hash) and "prune".
func treeMsgsTo(msgs []Out, id identity.PKIID) []string {
	var got []string
	for _, m := range msgs {
		msg, err := decode(m.Env)
		if err != nil || m.To.ID != id {
			continue
		}
		switch {
		case len(msg.GetGraft().GetHash()) > 0:
			got = append(got, "graft")
		case msg.GetPrune() != nil:
			got = append(got, "prune")
		}
	}
	return got
}

// tickUntilTreeMsgTo ticks p until it sends id a tree message (see
// treeMsgsTo), for up to MaxGraftTimeout + 1 ticks, and returns those
// messages (none: nothing was sent).
func tickUntilTreeMsgTo(p *Peer, id identity.PKIID) []string {
	for range p.cfg.MaxGraftTimeout + 1 {
		p.Tick()
		if got := treeMsgsTo(p.Ready().Messages, id); len(got) > 0 {
			return got
		}
	}
	return nil
}

// A graft while our eager parent still delivers, late, is one-shot (Graft
// then Prune: this block only, the tree unchanged; on a busy machine a
// Plumtree graft made every later block come twice until a duplicate
// pruned one link). When the block grafted one-shot never comes from the
// parent, the next graft is Plumtree's and the announcer becomes our
// eager parent.
func TestGraftIsOneShotWhileTheParentDelivers(t *testing.T) {
	cfg := lossyConfig()
	cfg.PullEnabled = false
	net := seededNet(t, 4, cfg, 44)
	net.ticks(2)
	p := net.peers[3].p
	net.collect(net.peers[3])
	chain := makeChain(testOrderer, 5, 44)
	parent, announcer := fakeID(0), fakeID(1)
	ihave := func(n int, hops uint32) {
		p.Step(announcer, "org1", ihaveEnv(uint64(n), chain[n], hops), 0)
	}
	untilGraft := func(n int) []string {
		got := tickUntilTreeMsgTo(p, announcer)
		if len(got) == 0 {
			t.Fatalf("block %d: no graft after MaxGraftTimeout", n)
		}
		return got
	}
	_, wasEager := p.eager.pos[announcer]
	p.Step(parent, "org1", pushEnv(chain[0], 1), 0) // our parent, at depth 0: we are at depth 1
	p.Ready()

	// Block 1: the parent is late; the announcer (no shortcut: same depth)
	// is grafted for this block only.
	ihave(1, 1)
	if got := untilGraft(1); len(got) != 2 || got[0] != "graft" || got[1] != "prune" {
		t.Fatalf("block 1: sent %v to the announcer, want [graft prune] (one-shot)", got)
	}
	p.Step(announcer, "org1", pushEnv(chain[1], 1), 0)
	p.Step(parent, "org1", pushEnv(chain[1], 1), 0) // the late eager copy
	if got := treeMsgsTo(p.Ready().Messages, parent); len(got) != 0 {
		t.Fatalf("the parent's late copy of a one-shot-grafted block sent %v to it, want nothing", got)
	}
	if _, ok := p.eager.pos[parent]; !ok {
		t.Fatal("a one-shot graft cost us our eager parent")
	}
	if _, ok := p.eager.pos[announcer]; ok && !wasEager {
		t.Fatal("a one-shot graft made the announcer an eager neighbour")
	}
	p.Step(parent, "org1", pushEnv(chain[2], 1), 0)
	p.Ready()

	// Block 3: late again (not the block after a graft): one-shot, but
	// this time the parent's copy never comes.
	ihave(3, 1)
	if got := untilGraft(3); len(got) != 2 {
		t.Fatalf("block 3: sent %v to the announcer, want [graft prune]", got)
	}
	p.Step(announcer, "org1", pushEnv(chain[3], 1), 0)
	p.Ready()
	// Block 4: the parent is gone: a Plumtree graft moves us to the announcer.
	ihave(4, 1)
	if got := untilGraft(4); len(got) != 1 || got[0] != "graft" {
		t.Fatalf("block 4, parent silent since: sent %v to the announcer, want [graft] (tree repair)", got)
	}
	if _, ok := p.eager.pos[announcer]; !ok {
		t.Fatal("after a Plumtree graft the announcer is not an eager neighbour")
	}
	if p.Height() != 4 {
		t.Fatalf("height %d, want 4", p.Height())
	}
}

// An announcer whose path is shorter than our parent's is a shortcut:
// its graft moves us in the tree even while the parent delivers.
func TestGraftTakesAShortcut(t *testing.T) {
	cfg := lossyConfig()
	cfg.PullEnabled = false
	net := seededNet(t, 4, cfg, 45)
	net.ticks(2)
	p := net.peers[3].p
	net.collect(net.peers[3])
	chain := makeChain(testOrderer, 2, 45)
	parent, announcer := fakeID(0), fakeID(1)
	p.Step(parent, "org1", pushEnv(chain[0], 4), 0) // we are 4 hops deep
	p.Ready()
	p.Step(announcer, "org1", ihaveEnv(1, chain[1], 2), 0)
	got := tickUntilTreeMsgTo(p, announcer)
	if len(got) == 0 {
		t.Fatal("no graft")
	}
	if len(got) != 1 || got[0] != "graft" {
		t.Fatalf("sent %v to an announcer 2 hops shallower than our parent, want [graft]", got)
	}
	if _, ok := p.eager.pos[announcer]; !ok {
		t.Fatal("the shortcut announcer is not an eager neighbour after the graft")
	}
}

// A late eager copy teaches the graft timeout even when a later block was
// observed first (many blocks in flight on a busy machine): block 2's copy
// beats its IHave, then block 1's copy arrives 3 ticks after its IHave.
func TestLateCopyCountsAfterALaterBlock(t *testing.T) {
	cfg := DefaultConfig()
	cfg.PullEnabled = false
	cfg.GraftParent = false // the parent's copy must come unasked: once grafted, it is an answer
	net := seededNet(t, 4, cfg, 46)
	net.ticks(2)
	p := net.peers[3].p
	net.collect(net.peers[3])
	chain := makeChain(testOrderer, 3, 46)
	parent, announcer := fakeID(0), fakeID(1)
	p.Step(parent, "org1", pushEnv(chain[0], 1), 0)
	ihaveFrom(p, announcer, chain, 1)
	p.Step(parent, "org1", pushEnv(chain[2], 1), 0) // block 2 before its IHave: on time
	ihaveFrom(p, announcer, chain, 2)
	p.Ready()
	for range 3 {
		p.Tick()
		p.Ready()
	}
	p.Step(parent, "org1", pushEnv(chain[1], 1), 0) // block 1, 3 ticks after its IHave
	if p.Height() != 3 {
		t.Fatalf("height %d, want 3", p.Height())
	}
	if got := p.GraftTimeout(); got != 4 {
		t.Fatalf("graft timeout %d after a copy 3 ticks late, want 4 (late + 1)", got)
	}
}
