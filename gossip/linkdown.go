package gossip

import (
	"github.com/blockgossip/blockgossip/identity"
	pb "github.com/blockgossip/blockgossip/protos"
)

// A broken stream is news the membership takes seconds to learn: a peer
// whose process was killed stops sending alives, and it is declared dead
// only Expiration ticks later (10 s). Its tree links, meanwhile, cost each
// of its children the next block: nobody pushes it to them, they hear of
// it only from their first IHave (in the simulator 65-88 ms after the cut
// when the announcers sit deep in the tree, the slowest block of most
// 100-peer runs under churn), and over gRPC ParentSilence holds their
// grafts for up to 1.5 s after the parent's last push.
//
// The transport knows sooner: the kernel of a killed process closes its
// sockets, and the stream to it fails one network delay later. LinkDown
// takes that news (the Node passes the transport's Event with Up false and
// Broken set; the simulator can model it, sim.Options.CrashNotice). When
// the peer was our parent, it is dropped from the neighbour sets and not
// taken back until it is heard from again (or Expiration passes); we are
// an orphan at once (grafts at the graft timeout's floor, and they
// reshape the tree; no ParentSilence), and we ask a lazy neighbour no
// deeper than we are to push to us (an empty Graft, as fillNeighbours
// links a new eager neighbour), so that the next block comes by push.
// One deeper could be our own descendant: its pushes would wait for ours.
//
// Any other neighbour keeps its link: our pushes to a dead child are lost
// while it is down and reach it the moment it restarts, as before. Dropped
// too, a restarted child was pushed to only by the neighbours its own link
// requests found, and a block cut just before its restart came by pull:
// in the simulator (1,000 peers, 48 seeds, CrashNotice) the restarted
// peers' catch-up took up to 340 ms (p99 81 ms on average) against 145
// (73) with silent crashes; keeping children's links, 134 (79).

// StreamBroken tells the Peer that its stream to id broke (the transport's
// Event with Up false and Broken set): the news goes to the tree
// (LinkDown) and to the election, which gives up a leader whose stream
// broke at once, not after LeaderAliveThreshold + LeaderGrace (2 s) of
// silence (election.Engine.LeaderDown): when an org's leader is killed or
// stopped for a restart, no block reaches the org until another leader
// pulls from the orderer.
func (p *Peer) StreamBroken(id identity.PKIID) {
	p.elect.LeaderDown(id)
	p.LinkDown(id)
}

// LinkDown tells the Peer that its stream to id broke: id's process is
// most likely gone. It acts only when id is our parent (see above); it
// reports any tree neighbour to the Tracer, and does nothing outside tree
// mode.
func (p *Peer) LinkDown(id identity.PKIID) {
	if !p.cfg.Tree || id == p.self.ID || !p.Linked(id) {
		return
	}
	p.tracer.LinkBroken(id, id == p.parent)
	if id != p.parent {
		return
	}
	if p.down == nil {
		p.down = make(map[identity.PKIID]uint64)
	}
	p.down[id] = p.now
	p.eager.set(id, false)
	p.lazy.set(id, false)
	delete(p.lazyHops, id)
	p.parent = identity.PKIID{}
	p.hurryMissing() // every missing block now comes by graft: at the floor
	p.adoptParent()
}

// Linked reports whether id is a tree neighbour (eager or lazy) or our
// parent: a peer whose stream we keep busy.
func (p *Peer) Linked(id identity.PKIID) bool {
	_, eager := p.eager.pos[id]
	_, lazy := p.lazy.pos[id]
	return eager || lazy || (id == p.parent && !p.orphan())
}

// heardFrom clears the down mark of id, a parent LinkDown dropped, and
// gives it back its eager link: it is sending again (a new stream: the
// break was the network's), or its process restarted (a newer
// incarnation, told by anyone: see handleAlive), and our pushes help it
// catch up. Duplicates prune what is then redundant.
func (p *Peer) heardFrom(id identity.PKIID) {
	if len(p.down) == 0 {
		return
	}
	if _, ok := p.down[id]; !ok {
		return
	}
	delete(p.down, id)
	if p.IsAlive(id) && p.orgOf(id) == p.self.Org {
		p.lazy.set(id, false)
		p.eager.set(id, true)
	}
}

// isDown reports whether id's stream broke and we have not heard from it
// since.
func (p *Peer) isDown(id identity.PKIID) bool {
	_, ok := p.down[id]
	return ok
}

// expireDown forgets down marks older than Expiration ticks: by then the
// membership has declared the peer dead, or it is alive after all.
func (p *Peer) expireDown() {
	for id, at := range p.down {
		if p.now-at > uint64(p.cfg.Expiration) {
			delete(p.down, id)
		}
	}
}

// noteLazyHops remembers the hop count of the latest IHave from lazy
// neighbour id: its depth in the tree plus one.
func (p *Peer) noteLazyHops(id identity.PKIID, hops uint32) {
	if _, lazy := p.lazy.pos[id]; !lazy || hops == 0 {
		return
	}
	if p.lazyHops == nil {
		p.lazyHops = make(map[identity.PKIID]uint32)
	}
	if len(p.lazyHops) >= maxLazyHops {
		for k := range p.lazyHops { // neighbours that left the lazy set
			if _, lazy := p.lazy.pos[k]; !lazy {
				delete(p.lazyHops, k)
			}
		}
	}
	if len(p.lazyHops) < maxLazyHops {
		p.lazyHops[id] = hops
	}
}

// maxLazyHops bounds lazyHops (the lazy set is a handful).
const maxLazyHops = 64

// adoptParent asks the shallowest live lazy neighbour that is no deeper
// than we are to push to us, and pushes to it in turn. Without a known
// depth, or without such a neighbour, it does nothing: the next block's
// IHaves find us a parent by graft, as before.
func (p *Peer) adoptParent() {
	if p.parentHops == 0 {
		return
	}
	var best identity.PKIID
	var bestHops uint32
	for _, id := range p.lazy.ids {
		// An IHave's hops are its sender's depth + 1: at most ours + 1.
		h, ok := p.lazyHops[id]
		if ok && h <= p.parentHops+1 && (bestHops == 0 || h < bestHops) && p.IsAlive(id) && !p.isDown(id) {
			best, bestHops = id, h
		}
	}
	if bestHops == 0 {
		return
	}
	p.lazy.set(best, false)
	p.eager.set(best, true)
	p.send(best, linkGraft())
}

// relinkOrphan asks each of our eager neighbours again to push to us
// when a block came by pull or state transfer while nobody pushes to us
// (orphan), at most once per tick: blocks flow, so our link requests
// were lost, or went to peers that have since dropped us. Found while
// LinkDown still dropped every broken link (so that old neighbours no
// longer pushed to a restarted peer): a restart whose four requests were
// lost or went to crashed peers got every block by pull or state transfer
// for a second (the simulator, 1,000 peers, seed 35, CrashNotice: live
// p99 10.7x healthy).
func (p *Peer) relinkOrphan() {
	if !p.orphan() || len(p.eager.ids) == 0 || p.relinkedAt == p.now+1 {
		return
	}
	p.relinkedAt = p.now + 1
	link := linkGraft()
	for _, id := range p.eager.ids {
		p.send(id, link)
	}
}

// linkGraft is a Graft that names no block: push to me from now on.
func linkGraft() *pb.Envelope {
	return envelope(&pb.GossipMessage{Content: &pb.GossipMessage_Graft{Graft: &pb.Graft{}}})
}
