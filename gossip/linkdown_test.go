package gossip

import (
	"context"
	"sync"
	"testing"
	"testing/synctest"
	"time"

	"github.com/blockgossip/blockgossip/comm/memnet"
	"github.com/prometheus/client_golang/prometheus"

	"github.com/blockgossip/blockgossip/identity"
	pb "github.com/blockgossip/blockgossip/protos"
)

// linkGraftsTo counts the link requests (Grafts naming no block) in msgs
// addressed to id.
func linkGraftsTo(msgs []Out, id identity.PKIID) int {
	return countOut(msgs, func(to identity.PKIID, m *pb.GossipMessage) bool {
		return to == id && m.GetGraft() != nil && len(m.GetGraft().GetHash()) == 0
	})
}

// linkDownPeer is graftPeer's peer 3 (parent peer 0, our depth 1) over
// the Node's config (ParentSilence on), with peers 1, 2 and 4 lazy
// neighbours that announced block 0 at the given hop counts, and block 1
// announced by all three and still missing: held while the parent
// delivers.
func linkDownPeer(t *testing.T, seed uint64, hops [3]uint32) (*Peer, []*pb.Block) {
	t.Helper()
	_, p, chain := linkDownNet(t, seed, hops)
	return p, chain
}

// linkDownNet is linkDownPeer with its net.
func linkDownNet(t *testing.T, seed uint64, hops [3]uint32) (*simNet, *Peer, []*pb.Block) {
	t.Helper()
	cfg := DefaultConfig()
	cfg.PullEnabled = false
	net, p, chain := graftPeer(t, cfg, seed, 2)
	for i, id := range []identity.PKIID{fakeID(1), fakeID(2), fakeID(4)} {
		p.eager.set(id, false)
		p.lazy.set(id, true)
		p.Step(id, "org1", ihaveEnv(0, chain[0], hops[i]), 0)
	}
	p.Ready()
	for i, id := range []identity.PKIID{fakeID(1), fakeID(2), fakeID(4)} {
		p.Step(id, "org1", ihaveEnv(1, chain[1], hops[i]), 0)
	}
	p.Tick()
	if msgs := p.Ready().Messages; len(graftedTo(msgs, fakeID(0), fakeID(1), fakeID(2), fakeID(4))) > 0 {
		t.Fatal("block 1 grafted while the parent delivers: the test needs it held (ParentSilence)")
	}
	return net, p, chain
}

// A parent whose stream broke (its process was killed: the transport
// knows one network delay later, the membership only after Expiration)
// is no longer waited for: the block missing from it is grafted at the
// graft timeout's floor, not after ParentSilence (1.5 s on the Node), the
// graft takes the announcer as a parent, and the shallowest lazy
// neighbour no deeper than we are is asked to push to us at once, so that
// the next block comes by push. A deeper one may be our own descendant
// and is not asked; a broken stream to a child keeps its link (our pushes
// reach it the moment it restarts).
func TestBrokenStreamToParentEndsTheWaitAndAdoptsAShallowNeighbour(t *testing.T) {
	t.Run("parent", func(t *testing.T) {
		p, _ := linkDownPeer(t, 120, [3]uint32{3, 2, 1}) // peer 4 at depth 0, peer 2 at ours, peer 1 below
		p.LinkDown(fakeID(0))
		msgs := p.Ready().Messages
		if linkGraftsTo(msgs, fakeID(4)) != 1 || linkGraftsTo(msgs, fakeID(1))+linkGraftsTo(msgs, fakeID(2)) != 0 {
			t.Fatalf("link requests to peers 4, 2, 1: %d, %d, %d; want one, to the shallowest (4)",
				linkGraftsTo(msgs, fakeID(4)), linkGraftsTo(msgs, fakeID(2)), linkGraftsTo(msgs, fakeID(1)))
		}
		if _, eager := p.eager.pos[fakeID(4)]; !eager {
			t.Fatal("the adopted neighbour is not eager on our side")
		}
		if !p.orphan() || p.Linked(fakeID(0)) {
			t.Fatalf("parent kept (orphan %v, linked %v): its copies are no longer coming", p.orphan(), p.Linked(fakeID(0)))
		}
		got := 0
		for k := 1; k <= int(p.graftFloor())+1 && got == 0; k++ {
			nextSubTick(p)
			msgs := p.Ready().Messages
			if g := graftedTo(msgs, fakeID(1), fakeID(2), fakeID(4)); len(g) > 0 {
				got = k
				if prunesTo(msgs, g[0]) > 0 {
					t.Fatal("the graft is one-shot: with the parent gone it must take the link")
				}
			}
		}
		if got == 0 {
			t.Fatalf("block 1 not grafted within the floor (%d sub-ticks) of the broken stream", p.graftFloor())
		}
	})

	t.Run("only deeper neighbours", func(t *testing.T) {
		p, _ := linkDownPeer(t, 121, [3]uint32{3, 4, 3}) // all below our depth of 1
		p.LinkDown(fakeID(0))
		links := countOut(p.Ready().Messages, func(_ identity.PKIID, m *pb.GossipMessage) bool {
			return m.GetGraft() != nil && len(m.GetGraft().GetHash()) == 0
		})
		if links != 0 {
			t.Fatalf("%d link requests: a neighbour deeper than us may be our descendant, and nobody else is known", links)
		}
	})

	t.Run("child", func(t *testing.T) {
		p, _ := linkDownPeer(t, 122, [3]uint32{3, 2, 1})
		child := fakeID(1)
		p.lazy.set(child, false)
		p.eager.set(child, true)
		p.LinkDown(child)
		msgs := p.Ready().Messages
		if _, eager := p.eager.pos[child]; p.parent != fakeID(0) || !eager || p.isDown(child) {
			t.Fatalf("parent kept %v, child eager %v, marked down %v; want both links kept: a restarted child is pushed to at once",
				p.parent == fakeID(0), eager, p.isDown(child))
		}
		for _, id := range []identity.PKIID{fakeID(2), fakeID(4)} {
			if linkGraftsTo(msgs, id) != 0 {
				t.Fatal("a new parent asked for when a child's stream broke")
			}
		}
		p.Tick()
		if g := graftedTo(p.Ready().Messages, fakeID(0), fakeID(2), fakeID(4)); len(g) > 0 {
			t.Fatal("block 1 grafted while the parent still delivers")
		}
	})
}

// A neighbour whose stream broke is not linked again by fillNeighbours
// (its membership entry lives on until Expiration) until it is heard
// from: in a 5-peer org every peer wants all four others as neighbours,
// so without the mark the dead parent would be linked again at the next
// tick, and pushed to. Once heard from, directly (a new stream) or by
// anyone's word of its newer incarnation (its process restarted), it
// gets its eager link back at once: our pushes help it catch up.
func TestBrokenNeighbourIsNotLinkedAgainUntilHeardFrom(t *testing.T) {
	for _, how := range []string{"a message from it", "its new incarnation, relayed"} {
		t.Run(how, func(t *testing.T) {
			net, p, chain := linkDownNet(t, 123, [3]uint32{3, 2, 1})
			dead := fakeID(0)
			p.LinkDown(dead)
			p.Ready()
			for tick := range 5 {
				p.Tick()
				if p.Linked(dead) || linkGraftsTo(p.Ready().Messages, dead) > 0 {
					t.Fatalf("tick %d: the peer whose stream broke linked again", tick+1)
				}
			}
			if how == "a message from it" {
				p.Step(dead, "org1", ihaveEnv(1, chain[1], 2), 0) // it is back (a new stream)
			} else {
				back := net.peers[0].p
				back.self.Incarnation++
				back.selfAlive = nil
				resp := &pb.MembershipResponse{Alive: []*pb.Envelope{back.aliveEnvelope()}}
				p.Step(fakeID(2), "org1", envelope(&pb.GossipMessage{Content: &pb.GossipMessage_MembershipResponse{MembershipResponse: resp}}), 0)
			}
			p.Ready()
			if _, eager := p.eager.pos[dead]; p.isDown(dead) || !eager {
				t.Fatalf("down %v, eager %v after it was heard from: want its eager link back at once", p.isDown(dead), eager)
			}
		})
	}
}

// counterWith reads the sample of counter vector name whose label has
// value (0 when there is none yet).
func counterWith(t *testing.T, reg *prometheus.Registry, name, label, value string) float64 {
	t.Helper()
	mfs, err := reg.Gather()
	if err != nil {
		t.Fatal(err)
	}
	for _, mf := range mfs {
		if mf.GetName() != name {
			continue
		}
		for _, m := range mf.GetMetric() {
			for _, l := range m.GetLabel() {
				if l.GetName() == label && l.GetValue() == value {
					return m.GetCounter().GetValue()
				}
			}
		}
	}
	return 0
}

// acceptTracer records, per block, where and when a Node accepted it.
type acceptTracer struct {
	NopTracer
	mu  sync.Mutex
	got map[uint64]accepted
}

type accepted struct {
	from identity.PKIID
	via  Via
	at   time.Time
}

func (a *acceptTracer) BlockAccepted(from identity.PKIID, n uint64, via Via, _ uint32) {
	a.mu.Lock()
	defer a.mu.Unlock()
	if a.got == nil {
		a.got = make(map[uint64]accepted)
	}
	a.got[n] = accepted{from: from, via: via, at: time.Now()}
}

func (a *acceptTracer) block(n uint64) (accepted, bool) {
	a.mu.Lock()
	defer a.mu.Unlock()
	b, ok := a.got[n]
	return b, ok
}

// Over the Node's transport: a peer is killed (memnet.Crash: every peer
// connected to it sees its stream break), and each of its children in
// the tree gets the next blocks by push, as the others do, within a
// block interval of the cut: not after ParentSilence (1.5 s, while the
// dead parent is taken as late) nor by pull. Virtual time.
func TestChildOfAKilledPeerGetsTheNextBlocksByPush(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		net := memnet.New(memnet.Config{Seed: 7, Latency: memnet.Fixed(2 * time.Millisecond)})
		defer net.Close()
		const n, interval = 16, 200 * time.Millisecond
		transports := joinMemnet(t, net, n)
		chain := makeChain(testOrderer, 40, 15)
		src := &chainSource{chain: chain, interval: interval}
		tracers := make([]*acceptTracer, n)
		ctx, cancel := context.WithCancel(t.Context())
		var wg sync.WaitGroup
		defer wg.Wait() // runs after cancel
		defer cancel()
		nodes := startNodes(t, ctx, &wg, n, DefaultConfig(), transports, src, func(i int, d *Deps) {
			tracers[i] = &acceptTracer{}
			d.Tracer = tracers[i]
		})
		const before = 20
		for i, node := range nodes {
			waitCommits(t, i, node.Node, chain, 0, before, time.Minute)
		}
		// A peer that pushed the last block to others, other than the leader.
		victim, children := -1, []int(nil)
		for i := range nodes {
			if nodes[i].Status().IsLeader {
				continue
			}
			var kids []int
			for j, tr := range tracers {
				if a, ok := tr.block(before - 1); ok && a.via == ViaPush && a.from == fakeID(i) {
					kids = append(kids, j)
				}
			}
			if len(kids) > len(children) {
				victim, children = i, kids
			}
		}
		if victim < 0 {
			t.Fatal("every peer got the block straight from the leader: no child to watch")
		}
		net.Crash(fakeID(victim))
		killed := time.Now()
		for i, node := range nodes {
			if i != victim {
				waitCommits(t, i, node.Node, chain, before, len(chain), time.Minute)
			}
		}
		for _, c := range children {
			if got := counterWith(t, nodes[c].reg, "blockgossip_gossip_tree_links_broken_total", "parent", "true"); got != 1 {
				t.Errorf("child %d: tree_links_broken_total{parent=true} %v, want 1", c, got)
			}
			a, _ := tracers[c].block(before)
			t.Logf("child %d of killed peer %d: block %d via %v %v after the kill", c, victim, before, a.via, a.at.Sub(killed))
			for k := uint64(before); k < before+3; k++ {
				a, _ := tracers[c].block(k)
				if a.via != ViaPush || a.at.Sub(killed) > time.Duration(k-before+1)*interval+interval {
					t.Errorf("child %d of killed peer %d: block %d via %v %v after the kill; want by push within a block interval of its cut",
						c, victim, k, a.via, a.at.Sub(killed))
				}
			}
		}
	})
}

// A peer that nobody pushes to (orphan) and that gets a block by pull
// asks its eager neighbours again to push to it, once per tick at most:
// its link requests were lost, or went to peers that have since dropped
// it. A peer whose parent pushes to it asks nobody.
func TestOrphanGettingBlocksByPullAsksItsEagerNeighboursAgain(t *testing.T) {
	cfg := lossyConfig()
	cfg.PullEnabled = false
	net := seededNet(t, 5, cfg, 124)
	net.ticks(2)
	p := net.peers[3].p
	net.collect(net.peers[3])
	if !p.orphan() || len(p.eager.ids) == 0 {
		t.Fatalf("orphan %v with %d eager neighbours: the test needs an orphan with links", p.orphan(), len(p.eager.ids))
	}
	chain := makeChain(testOrderer, 3, 124)
	links := func() int {
		return countOut(p.Ready().Messages, func(to identity.PKIID, m *pb.GossipMessage) bool {
			_, eager := p.eager.pos[to]
			return eager && m.GetGraft() != nil && len(m.GetGraft().GetHash()) == 0
		})
	}
	_ = p.handleBlock(fakeID(1), chain[0], wireBlock{}, ViaPull, 0)
	if got := links(); got != len(p.eager.ids) {
		t.Fatalf("%d link requests after a pulled block, want one per eager neighbour (%d)", got, len(p.eager.ids))
	}
	_ = p.handleBlock(fakeID(1), chain[1], wireBlock{}, ViaPull, 0)
	if got := links(); got != 0 {
		t.Fatalf("%d link requests for a second pulled block in the same tick, want none", got)
	}
	p.Step(fakeID(0), "org1", pushEnv(chain[2], 1), 0) // a parent at last
	p.Ready()
	p.Tick()
	p.Ready()
	_ = p.handleBlock(fakeID(1), makeChain(testOrderer, 4, 124)[3], wireBlock{}, ViaPull, 0)
	if p.orphan() || links() != 0 {
		t.Fatalf("orphan %v: a peer with a parent asked for links again", p.orphan())
	}
}
