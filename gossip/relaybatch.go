package gossip

import (
	"fmt"
	"slices"

	"google.golang.org/protobuf/proto"

	"github.com/blockgossip/blockgossip/identity"
	pb "github.com/blockgossip/blockgossip/protos"
)

// Membership news in batches.
//
// Each new signed alive or heartbeat a peer checks is relayed to
// AliveFanout random live peers. Sent one by one, that is one gRPC message
// (a frame, a TLS record, a write) per item per target: at 100 peers each
// peer received ~3 copies of each of 99 heartbeats per round. With
// Config.AliveBatch > 0 a peer instead queues what it must relay (its own
// alive or heartbeat too) and, every AliveBatch ticks, picks AliveFanout
// random live peers and sends each of them one MembershipBatch holding all
// of it (except the items that came from that target or are its own). A
// peer so sends at most AliveFanout membership messages per flush whatever
// N (more only if a batch exceeds maxBatchItems or maxBatchBytes and is
// split), instead of AliveFanout per item.
//
// Spread: each relayer still passes each item to AliveFanout random peers
// (a target that sent the item or is its member, which the one-by-one relay
// skipped, gets nothing from this batch: at N peers a relayer reaches
// ~AliveFanout*(1-2/N) new ones), so coverage per round is as before, 94%
// for 3. Latency: an item waits for the relayer's next flush at each hop,
// up to AliveBatch ticks, so it reaches everybody in about log3(N) hops of
// at most AliveBatch ticks each (~4 hops at 100 peers, ~8 at 10,000)
// instead of log3(N) network delays. Against AliveInterval = 20 ticks and
// Expiration = 100 that is small, but not nothing: in the harness (30
// peers, 12 seeds) a crash was known to every peer after 99 ticks on
// average at AliveBatch 1, 108 at 3 (the default) and 114 at 5.
//
// The queue keeps, per member, its latest alive and its latest heartbeat
// (a newer one replaces the queued one: the old is worthless) and holds at
// most MaxResponseMembers of each; news beyond that is not relayed (anti-
// entropy heals it). A received batch is read item by item with the same
// checks as a lone alive or heartbeat, at most maxBatchItems of each kind.
//
// On by default since the link-request fix below (AliveBatch 1 then, 3
// since batches of one tick were 5 of the ~13-16 messages a peer received
// per 100 KiB block over gRPC: 1.7 at 3, and the timed CPU 10% lower at 50
// peers; at 5, 1.1, but detection slower still). Before
// it, at 100 peers, 100 KiB blocks at 5/s, batches of one tick cut
// membership messages by ~85% and the timed CPU by ~10%, but the last
// peer got each block later (time-to-last p50 130-320 ms one by one,
// 580-940 ms batched) with 3-10% of deliveries by pull instead of ~0.3%.
// The harness showed why (100 peers bootstrapping at once, 40 blocks: 254
// of 4,000 deliveries by pull batched, 0 one by one): six late joiners got
// every block by pull, each with its own 4 eager and 3 lazy neighbours but
// in nobody's eager set. A joiner's link request reached peers that did
// not know it yet and was dropped; such requests are now kept until the
// requester's alive arrives (tree.go, notePendingLink).

// maxBatchItems bounds the alives, and separately the heartbeats, of one
// batch we send, and how many of each we read from a received one.
const maxBatchItems = 512

// maxBatchBytes bounds the size of one batch we send: far below comm's
// MaxMessageBytes (16 MiB by default), and small enough that one batch
// never holds a stream's queue long.
const maxBatchBytes = 256 << 10

// relayItem is one piece of membership news waiting for the next flush:
// a signed alive or a heartbeat of member origin, received from from.
type relayItem struct {
	origin, from identity.PKIID
	alive        *pb.Envelope
	hb           *pb.Heartbeat
}

// relayKey names a queue slot: one alive and one heartbeat per member.
type relayKey struct {
	id identity.PKIID
	hb bool
}

// relayQueue is what waits for the next flush, and the neighbours it goes
// to (Config.AliveNeighbours).
type relayQueue struct {
	items     []relayItem
	slot      map[relayKey]int // index in items
	alives    int
	lastFlush uint64
	// nbrs are the members batches go to (AliveNeighbours); lastRotate is
	// when one was last replaced; lastNews is when a batch last came.
	nbrs                 []identity.PKIID
	pickedFrom           int // how many live members nbrs was drawn from
	lastRotate, lastNews uint64
}

// relay passes on a new alive (env) or heartbeat (hb; env may then be nil)
// of member origin, received from from: queued for the next batch, or sent
// at once to AliveFanout random live peers when batching is off.
func (p *Peer) relay(from, origin identity.PKIID, env *pb.Envelope, hb *pb.Heartbeat) {
	if p.cfg.AliveBatch == 0 {
		if env == nil {
			env = envelope(&pb.GossipMessage{Content: &pb.GossipMessage_Heartbeat{Heartbeat: hb}})
		}
		for _, to := range p.pickPeers(p.LivePeers(), p.cfg.AliveFanout, from, origin) {
			p.send(to, env)
		}
		return
	}
	q := &p.relays
	it := relayItem{origin: origin, from: from, hb: hb}
	if hb == nil {
		it.alive = env
	}
	k := relayKey{id: origin, hb: hb != nil}
	if i, ok := q.slot[k]; ok {
		q.items[i] = it // newer news of the same member and kind
		return
	}
	if n := len(q.items) - q.alives; (hb == nil && q.alives >= p.cfg.MaxResponseMembers) || (hb != nil && n >= p.cfg.MaxResponseMembers) {
		return // anti-entropy heals what a flood crowds out
	}
	if q.slot == nil {
		q.slot = make(map[relayKey]int)
	}
	q.slot[k] = len(q.items)
	q.items = append(q.items, it)
	if hb == nil {
		q.alives++
	}
}

// flushRelays sends what is queued, one batch (or a few, if it is big) to
// each of AliveFanout random live peers, every AliveBatch ticks.
func (p *Peer) flushRelays() {
	q := &p.relays
	if p.cfg.AliveBatch == 0 || p.now-q.lastFlush < uint64(p.cfg.AliveBatch) {
		return
	}
	q.lastFlush = p.now
	if len(q.items) == 0 {
		return
	}
	items := q.items
	q.items, q.alives = nil, 0
	clear(q.slot)
	var all []*pb.Envelope // the batches of every item, shared by the targets that get them all
	targets := p.relayNeighbours()
	if targets == nil {
		targets = p.pickPeers(p.LivePeers(), p.cfg.AliveFanout, identity.PKIID{}, identity.PKIID{})
	}
	for _, to := range targets {
		own := make([]relayItem, 0, len(items))
		for _, it := range items {
			if it.from != to && it.origin != to {
				own = append(own, it)
			}
		}
		var envs []*pb.Envelope
		switch {
		case len(own) == 0:
			continue
		case len(own) < len(items):
			envs = batchEnvelopes(own)
		default:
			if all == nil {
				all = batchEnvelopes(items)
			}
			envs = all
		}
		for _, env := range envs {
			p.send(to, env)
		}
	}
}

// batchEnvelopes packs items into MembershipBatch envelopes of at most
// maxBatchItems alives, maxBatchItems heartbeats and about maxBatchBytes
// each, alives first.
func batchEnvelopes(items []relayItem) []*pb.Envelope {
	var out []*pb.Envelope
	b, size := &pb.MembershipBatch{}, 0
	cut := func() {
		if len(b.Alives)+len(b.Heartbeats) > 0 {
			out = append(out, envelope(&pb.GossipMessage{Content: &pb.GossipMessage_MembershipBatch{MembershipBatch: b}}))
		}
		b, size = &pb.MembershipBatch{}, 0
	}
	for _, hbs := range []bool{false, true} {
		for _, it := range items {
			if (it.hb != nil) != hbs {
				continue
			}
			var n int
			if hbs {
				n = proto.Size(it.hb) + 3
			} else {
				n = proto.Size(it.alive) + 4
			}
			if size+n > maxBatchBytes || len(b.Alives) >= maxBatchItems || len(b.Heartbeats) >= maxBatchItems {
				cut()
			}
			if hbs {
				b.Heartbeats = append(b.Heartbeats, it.hb)
			} else {
				b.Alives = append(b.Alives, it.alive)
			}
			size += n
		}
	}
	cut()
	return out
}

// handleMembershipBatch checks each item of a batch on its own, exactly as
// a lone alive or heartbeat (alives first, so a heartbeat can rest on an
// alive of the same batch), and relays the new genuine ones.
func (p *Peer) handleMembershipBatch(from identity.PKIID, b *pb.MembershipBatch) {
	p.relays.lastNews = p.now
	if len(b.GetAlives()) > maxBatchItems || len(b.GetHeartbeats()) > maxBatchItems {
		p.tracer.MessageRejected(from, fmt.Errorf("%w: membership batch of %d alives and %d heartbeats, at most %d of each read",
			ErrMalformed, len(b.GetAlives()), len(b.GetHeartbeats()), maxBatchItems))
	}
	for _, env := range b.GetAlives()[:min(len(b.GetAlives()), maxBatchItems)] {
		if a, ok := p.decodeAlive(from, env); ok {
			p.handleAlive(from, env, a, true)
		}
	}
	for _, hb := range b.GetHeartbeats()[:min(len(b.GetHeartbeats()), maxBatchItems)] {
		p.handleHeartbeat(from, nil, hb, true, 0)
	}
}

// Neighbours: with Config.AliveNeighbours > 0 a peer sends each batch to
// every member of a set of AliveNeighbours live members instead of
// AliveFanout random live ones, and replaces one of them every
// NeighbourRotation ticks. Every relay target needs a stream (a TLS
// handshake to open, buffers to keep): drawn from all live peers, relays
// alone opened a stream between nearly every pair of 100 peers within
// seconds (3,508 of the 4,930 pairs in one bench run were first used by a
// batch); drawn from the set, a peer opens about AliveNeighbours plus one
// per rotation. News floods the set rather than AliveFanout of it: over a
// graph that changes slowly, a random few of a fixed set miss the same
// peers round after round, and members died in tests; a flood reaches
// everyone the graph connects, at AliveNeighbours messages per peer per
// flush at most and about AliveNeighbours copies of each item per peer
// (~60 bytes a heartbeat). A peer few others picked still hears news: a
// peer that heard none for AliveInterval ticks asks a random live member
// for the membership (anti-entropy) at once rather than at its next
// SyncInterval. At start-up the set is drawn afresh each time the live
// view doubles, or every peer's set would be the first peers to join.
//
// On by default (AliveNeighbours 3, with pull's hellos to tree neighbours,
// pull.Config.FarPeers): in 100-peer bench runs the pairs with a stream
// fell from ~4,900 to ~1,700, the timed CPU from 10.5-16.7 s to 6.6-7.1 s
// and the p99 time to the last peer from 888-3,054 ms to 215-556 ms (four
// paired runs on a quiet machine). One earlier run with 6 neighbours, before
// the link-request fix, left 2 peers without blocks (delivery 0.98, 7
// leader takeovers), never reproduced since (0 of 15 runs with 3 or 6).

// relayNeighbours returns the neighbour set kept up to date, or nil
// when batches go to AliveFanout random live peers instead.
func (p *Peer) relayNeighbours() []identity.PKIID {
	live := p.LivePeers()
	k := p.cfg.AliveNeighbours
	if k == 0 || p.cfg.AliveBatch == 0 || p.cfg.MaxView > 0 || len(live) <= k {
		return nil // MaxView sends its own news straight to its view and relays none
	}
	q := &p.relays
	if len(live) >= 2*q.pickedFrom {
		// The view doubled since the set was drawn (start-up: the first
		// members known are the first peers to join, everybody's): draw
		// it afresh.
		q.nbrs, q.pickedFrom = q.nbrs[:0], len(live)
	}
	q.nbrs = slices.DeleteFunc(q.nbrs, func(id identity.PKIID) bool { return !p.IsAlive(id) })
	if len(q.nbrs) == k && p.now-q.lastRotate >= uint64(p.cfg.NeighbourRotation) {
		q.lastRotate = p.now
		i := p.rng.IntN(k)
		q.nbrs = slices.Delete(q.nbrs, i, i+1) // the refill below draws its successor
	}
	for len(q.nbrs) < k {
		id := live[p.rng.IntN(len(live))]
		if !slices.Contains(q.nbrs, id) {
			q.nbrs = append(q.nbrs, id)
		}
	}
	return q.nbrs
}
