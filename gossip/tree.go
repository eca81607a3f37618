package gossip

import (
	"slices"

	"github.com/blockgossip/blockgossip/identity"
	"github.com/blockgossip/blockgossip/ledger"
	pb "github.com/blockgossip/blockgossip/protos"
)

// Tree mode (Config.Tree) is Plumtree-style push within the org: each peer
// pushes a new block in full only to its eager neighbours and announces it
// (IHave: number and hash) to its lazy ones. A peer that receives a copy it
// already has prunes the sender (Prune: the link becomes lazy on the
// sender's side), so after the first blocks every peer gets one full copy,
// along a spanning tree rooted at the leader. A peer that hears an IHave
// for a block it still lacks a graft timeout later grafts the announcer
// (Graft: send me that block, and push to me eagerly from now on), which
// repairs the tree when a parent dies. While the parent still delivers,
// late, and the announcer offers no shorter path, the graft is one-shot
// (Graft then Prune: that block only), so a busy moment does not reshape
// the tree (see graft). A graft unanswered after one graft round trip
// (measured like the timeout below, plus a margin) is retried with the
// next two announcers at once; when none is left the block is handed to
// pull at once. A block that pull delivered just before its pushed copy
// goes down the tree when that copy comes, and a copy grafted one-shot is
// not pushed back to the parent (the duplicate would prune us).
//
// Over reliable streams (gRPC: a message is lost only with its stream)
// no graft goes out while the eager parent is delivering: a block missing
// while the parent pushed us another within Config.ParentSilence ticks is
// late on its way, and is waited for; the timers above take over once the
// parent has gone silent (crashed, cut off, or without a parent itself).
// On a machine that cannot keep up, grafts of late copies fed on
// themselves (each reshaping graft brought duplicates until a prune got
// through, seconds later) until blocks took seconds and amplification
// passed 3. The simulator's network drops single messages, so it runs
// with ParentSilence off, and so do the loss tests.
// A parent whose stream broke is not waited for at all: the transport
// tells of it at once, and we take another (LinkDown, linkdown.go).
//
// Under loss (issue 11) a lost copy is told from a late one sooner: once
// Config.GraftQuorum announcers about our depth have announced it (each
// held its copy for the IHave delay), it is grafted one sub-tick after
// the first IHave; the first graft asks Config.GraftHedge announcers (the
// quorum's early graft one, the rest at the graft timeout; a graft that
// knew fewer is topped up by the next IHave), so one lost graft or answer
// costs no retry; when every announcer failed, our parent is grafted
// before pull (Config.GraftParent); and lazy links are two-way
// (Config.LazyBack), so that every peer hears enough announcers. Where
// single messages are lost (not over gRPC), Config.AckResend has each
// pushed copy acknowledged and resent by its parent when it is not
// (ack.go): a lost eager copy then waits for no announcer at all.
//
// A lost copy is also told by the clock (Config.CutLagGraft). The leader
// stamps each block with its tree clock as it takes it from the orderer
// (Envelope.stamp, carried as it is by every push and IHave), and each
// peer learns how many of its own sub-ticks after the stamp its parent's
// copies come: the cut lag, as late as lately seen (it jumps to a later
// copy and decays by a sixteenth of the gap, as the lateness below). A
// block announced to us and still missing one sub-tick past its cut lag
// is grafted then: the first IHave comes the IHave delay after an
// announcer's copy and a quorum later still, by when a lost copy was
// often 20-60 ms overdue by our own clock. No clock need agree with
// another: the offset between the leader's clock and ours is part of the
// lag. A new leader's clock is offset from the old one's: a later lag is
// learnt at once, an earlier one makes grafts later, not earlier, until
// it decays, and a copy off by more than MaxGraftTimeout starts the lag
// over. Over gRPC ParentSilence still holds every graft while the parent
// pushes, so the lag only speeds up the repair of a parent that died or
// fell behind.
//
// The graft timeout adapts: on a busy machine or with large blocks, an
// IHave (a few bytes) outruns the eager copy (the whole block) by more
// than a tick, and a fixed one-tick timeout would graft blocks already on
// their way, every graft a duplicate and a tree link changed for nothing.
// So a peer measures how many sub-ticks after the first IHave its parent's
// eager copy still arrives (before the graft, or as a duplicate after it;
// not a graft's answer, not a copy from another neighbour, not one the
// parent repaired itself: those come round a loss, not a slow link) and
// waits that long plus one sub-tick, between the floor (GraftTimeout, or
// GraftTimeoutSub) and MaxGraftTimeout. The estimate jumps to a late
// observation at once and decays by 1/16 of the gap per on-time block
// (about 17 blocks from 3 ticks back to 1): a needless graft costs a whole
// block and, under load, breeds more lateness (at 100 peers a moving
// average let needless grafts reach a third of all deliveries and doubled
// the bytes), while a slower graft only delays a copy that is really lost,
// which on reliable streams means a dead parent.
//
// These timers run on a finer clock than the rest of the Peer:
// Config.TreeResolution sub-ticks per tick (20 ms by default). On the
// 100 ms tick, each lost copy cost a wait for the next tick before its
// IHave went out (0-100 ms), a graft deadline rounded up to a tick (and a
// lateness measured in whole ticks: an eager copy 10 ms late after a tick
// boundary counted as a tick, raising the timeout to 100-200 ms) and a
// retry a tick later; at 1,000 peers under 5% loss the last live peer of
// a block paid that two or three times (p99 5x the healthy one). The
// clock is lazy: the caller moves it before it steps a message, and wakes
// the Peer between ticks (Wake) only when NextWake says a timer is due, so
// an idle peer costs no more than on the tick.
type treeState struct {
	eager, lazy idSet
	missing     map[blockKey]*missingBlock
	missOrder   []blockKey // insertion order of missing, for deterministic timeouts
	// sub is the tree's clock, in sub-ticks (Config.TreeResolution per
	// tick) since start: every tree time below (IHave due times, graft
	// deadlines, first IHaves, graft times) is on it. Tick moves it to the
	// tick's first sub-tick; SubTick and advanceTree move it within a tick.
	sub uint64
	// lateX8 estimates, in eighths of a sub-tick, how late an eager copy
	// arrives after the first IHave for it.
	lateX8 uint64
	// rttX8 estimates, in eighths of a sub-tick, how long a grafted copy
	// takes to come after its graft: a graft unanswered for longer is
	// retried with the next announcer.
	rttX8 uint64
	// parent is the neighbour whose pushed copy last came first: only its
	// copies teach how late eager copies run (a copy by another route came
	// round a loss, and says nothing about the parent's lateness).
	parent identity.PKIID
	// parentTop is 1 + the highest block our parent pushed us.
	parentTop uint64
	// parentLast is the sub-tick of the parent's latest pushed copy.
	parentLast uint64
	// grafted remembers recent grafts by block number, to learn from the
	// eager copy that arrives after the grafted one.
	grafted    map[uint64]graftRecord
	graftOrder []uint64
	// observedTo: blocks below it have taught the timeout already (on-time
	// observations count once per block; late ones always).
	observedTo uint64
	// ihaves wait the IHave delay before they go out, in order (of due
	// time too: the delay is fixed).
	ihaves []queuedIHave
	// pulled remembers recent blocks whose first copy came by pull or
	// state transfer: a pushed copy of one of them is not a sign of a
	// redundant eager link (pull merely won the race), so it prunes
	// nothing.
	pulled      map[uint64]struct{}
	pulledOrder []uint64
	// pendingLinks holds link requests (empty Grafts) from peers not yet
	// known as live members, by the tick they came: applied once the
	// peer's alive arrives (see notePendingLink).
	pendingLinks map[identity.PKIID]uint64
	// oneShotPending: the block last grafted one-shot (oneShotN, from
	// oneShotTo) has not (yet) come late from another peer as well, so
	// the eager parent may be gone: the next graft changes the tree.
	oneShotPending bool
	oneShotTo      identity.PKIID
	oneShotN       uint64
	// lastGraft is 1 + the number of the last block we grafted (0: none).
	lastGraft uint64
	// parentHops is the hop count of the last block our tree pushed us
	// first (our depth in the tree).
	parentHops uint32
	// cutLagX8 estimates, in eighths of a sub-tick, how long after its
	// cut stamp (Envelope.stamp), by our clock, our parent's copy of a
	// block comes, as late as lately seen (Config.CutLagGraft); cutLagN
	// counts the copies behind it, up to minCutLagCopies.
	cutLagX8 int64
	cutLagN  int
	// unacked lists our pushes to eager neighbours not yet acknowledged,
	// in order of push (and of resend time: the wait is fixed); ackedFrom
	// (a ring, next write at ackedNext) who pushed us the first copy of
	// each recent block (Config.AckResend, ack.go).
	unacked   []unackedPush
	ackedFrom [ackMemory]ackedPush
	ackedNext int
	// down marks a parent whose stream broke (LinkDown), by the tick we
	// were told, until it is heard from again; lazyHops holds the hop
	// count of each lazy neighbour's latest IHave (linkdown.go).
	down     map[identity.PKIID]uint64
	lazyHops map[identity.PKIID]uint32
	// relinkedAt is 1 + the tick of relinkOrphan's latest requests.
	relinkedAt uint64
}

type queuedIHave struct {
	env    *pb.Envelope
	number uint64
	from   identity.PKIID
	due    uint64
	// known lists neighbours that showed they have the block while the
	// IHave waited (their own IHave, or a copy): they are not told.
	known []identity.PKIID
}

// maxKnown bounds queuedIHave.known (the lazy set is a handful).
const maxKnown = 16

// knows records that id has block n, so that our queued IHave for n
// skips it: on a lazy link both ends would otherwise announce each block
// to each other, and an IHave is a whole gRPC message (a write, a TLS
// record, a syscall on each side), however few its bytes.
func (p *Peer) knows(n uint64, id identity.PKIID) {
	for i := range p.ihaves {
		if q := &p.ihaves[i]; q.number == n {
			if len(q.known) < maxKnown {
				q.known = append(q.known, id)
			}
			return
		}
	}
}

type missingBlock struct {
	announcers []identity.PKIID
	hops       []uint32 // hops of each announcer's IHave (its depth + 1)
	deadline   uint64   // sub-tick
	first      uint64   // sub-tick of the first IHave
	grafted    bool
	// gap: announced by no IHave but by the next block (see noteGap).
	gap bool
	// near counts the announcers at most quorumSlack hops shallower than
	// our parent's copy (Config.GraftQuorum).
	near int
	// early: the quorum moved the first graft ahead of the graft timeout.
	early bool
	// asked is how many announcers the first graft and its top-ups asked.
	asked int
	// hedgeDue: the first graft went early to one announcer; the rest of
	// the hedge goes at the graft timeout, unless retryAt comes first.
	hedgeDue bool
	retryAt  uint64
	// askedParent: our eager parent was grafted once every announcer had
	// been (Config.GraftParent).
	askedParent bool
}

// maxAnnouncers bounds the announcers kept per missing block.
const maxAnnouncers = 8

// quorumSlack is how many hops shallower than our parent's copy an
// announcer may be and still count towards Config.GraftQuorum. An
// announcer much closer to the root got the block well before our parent
// did, so its IHave can outrun our healthy copy (at 1,000 peers counting
// every announcer graft copies merely late: healthy amplification +0.02
// to +0.035); one at about our depth announces IHaveDelay after our copy
// should have come.
const quorumSlack = 1

type graftRecord struct {
	first uint64
	at    uint64 // sub-tick of the first graft
	retry uint64 // sub-tick of the latest retry
	to    identity.PKIID
	// retries lists the announcers grafted after to (bounded by the
	// announcers kept per block): their copies are answers, not eager ones.
	retries []identity.PKIID
	// oneShot: the graft asked for this block only (Graft then Prune):
	// our eager parent was still delivering, so the tree is left alone.
	oneShot bool
	// gap: the block was missed altogether (noteGap): timed from the
	// next block, not from an IHave, so no copy of it teaches lateness.
	gap bool
}

// fromParent reports whether a pushed copy from id comes from our parent
// in the tree (any copy does before we have one).
func (t *treeState) fromParent(id identity.PKIID) bool {
	return id == t.parent || t.parent == (identity.PKIID{})
}

// target reports whether id was asked for the block by a graft.
func (g *graftRecord) target(id identity.PKIID) bool {
	return g.to == id || slices.Contains(g.retries, id)
}

// rtt is how many sub-ticks the copy from target id took after its graft.
func (g *graftRecord) rtt(id identity.PKIID, now uint64) uint64 {
	if id == g.to {
		return now - g.at
	}
	return now - g.retry
}

// minShorter is by how many hops an announcer's path must beat our
// parent's for a graft to move us onto it rather than fetch one block.
const minShorter = 1

// maxGrafted bounds the recent-graft table.
const maxGrafted = 256

// maxMissing bounds the announced-but-missing table (a peer flooding
// IHaves cannot grow it beyond this).
const maxMissing = 4096

func (t *treeState) initTree() {
	t.missing = make(map[blockKey]*missingBlock)
	t.grafted = make(map[uint64]graftRecord)
	t.pulled = make(map[uint64]struct{})
}

// notePulled records that block n's first copy came by pull or state
// transfer (bounded to the last maxGrafted such blocks).
func (t *treeState) notePulled(n uint64) {
	if _, ok := t.pulled[n]; ok {
		return
	}
	if len(t.pulledOrder) >= maxGrafted {
		delete(t.pulled, t.pulledOrder[0])
		t.pulledOrder = append(t.pulledOrder[:0], t.pulledOrder[1:]...)
	}
	t.pulled[n] = struct{}{}
	t.pulledOrder = append(t.pulledOrder, n)
}

// resolution is the number of tree sub-ticks per tick.
func (p *Peer) resolution() uint64 { return uint64(p.cfg.TreeResolution) }

// maxGraftSub is MaxGraftTimeout in sub-ticks: the cap of both timeouts
// and of the observations behind them.
func (p *Peer) maxGraftSub() uint64 { return uint64(p.cfg.MaxGraftTimeout) * p.resolution() }

// ihaveDelay is how many sub-ticks a queued IHave waits.
func (p *Peer) ihaveDelay() uint64 {
	return subFloor(p.cfg.IHaveDelay, p.cfg.IHaveDelaySub, p.resolution())
}

// subFloor converts ticks to sub-ticks, shortened to sub when that is
// above zero and shorter.
func subFloor(ticks, sub int, res uint64) uint64 {
	d := uint64(ticks) * res
	if sub > 0 {
		d = min(d, uint64(sub))
	}
	return d
}

// graftTimeoutSub is how many sub-ticks after an IHave a missing block is
// grafted: the lateness estimate plus one sub-tick, between the floor
// (GraftTimeout, or GraftTimeoutSub) and MaxGraftTimeout.
func (p *Peer) graftTimeoutSub() uint64 {
	t := p.lateX8/8 + 1 // rounded down: a decayed estimate does not hold the timeout up for long
	return min(max(t, p.graftFloor()), p.maxGraftSub())
}

// graftFloor is the least graft timeout, in sub-ticks (GraftTimeout, or
// GraftTimeoutSub).
func (p *Peer) graftFloor() uint64 {
	return subFloor(p.cfg.GraftTimeout, p.cfg.GraftTimeoutSub, p.resolution())
}

// graftTimeout is the graft timeout in ticks, rounded up (pull's stall
// detection waits at least this long).
func (p *Peer) graftTimeout() uint64 {
	return (p.graftTimeoutSub() + p.resolution() - 1) / p.resolution()
}

// retryTimeout is how many sub-ticks a graft waits for its copy before
// the next announcer is grafted: the graft round trip as lately measured,
// plus two sub-ticks (one at TreeResolution 1: a tick, as ever). A round
// trip measured in sub-ticks is rounded down, and round trips vary by
// more than a sub-tick (5-15 ms each way in the simulator) while a peer
// grafts only now and then: with one sub-tick, a third of the grafts at
// 1,000 peers under 5% loss were retried before their answer came, and
// each needless retry costs two copies (amplification 1.56 against 1.40).
// It is not the graft timeout: that one waits out eager copies merely
// late, while a graft's answer is late only when the graft or the copy
// was lost (each retry by the graft timeout cost up to 800 ms under 5%
// loss, where a round trip is tens of ms).
func (p *Peer) retryTimeout() uint64 {
	return min(p.rttX8/8+min(2, p.resolution()), p.maxGraftSub())
}

// observeRTT records that a grafted copy came rtt sub-ticks after its graft:
// the estimate jumps to a slower answer at once (a needless retry costs a
// whole block) and decays by a sixteenth of the gap per faster one.
func (p *Peer) observeRTT(rtt uint64) { p.jumpOrDecay(&p.rttX8, rtt) }

// observeBlock records how late block n's eager copy was after its first
// IHave, in sub-ticks (0 when the copy came first). An on-time block counts once, and
// only if no later block has counted yet; a late one always counts (the
// estimate jumps to it, so counting it twice changes nothing): late copies
// are by nature observed after later blocks', and a watermark for them
// too dropped exactly the observations that matter when many blocks are
// in flight (at 100 peers under load, 650 grafts were made at a one-tick
// timeout while copies ran seconds late).
func (p *Peer) observeBlock(n, late uint64) {
	if late == 0 && n < p.observedTo {
		return
	}
	p.observedTo = max(p.observedTo, n+1)
	p.observeLate(late)
}

// observeLate records that an eager copy arrived late sub-ticks after the
// first IHave for it: the estimate rises to it at once and otherwise
// decays by a sixteenth of the gap.
func (p *Peer) observeLate(late uint64) { p.jumpOrDecay(&p.lateX8, late) }

// jumpOrDecay folds observation v (sub-ticks, capped at MaxGraftTimeout)
// into the estimate *x8 (eighths of a sub-tick): up to v at once, down by
// a sixteenth of the gap.
func (p *Peer) jumpOrDecay(x8 *uint64, v uint64) {
	o := min(v, p.maxGraftSub()) * 8
	if o >= *x8 {
		*x8 = o
		return
	}
	*x8 -= (*x8 - o + 15) / 16
}

// minCutLagCopies is how many of our parent's copies must teach the cut
// lag before it times a graft. The first blocks come while the tree
// forms, by the fastest of several eager paths, and a lag learnt from
// them alone grafted copies that the pruned tree brought a little later:
// healthy amplification in the simulator at 10,000 peers 1.212 with one
// copy, 1.197 with three (seeds 1-3; 1.184 without CutLagGraft).
const minCutLagCopies = 3

// observeCutLag learns from a copy of a block cut at stamp (0: not known)
// that our parent pushed us now. Like the lateness estimate, the lag jumps
// to a later copy and decays by a sixteenth of the gap on an earlier one.
// A copy more than MaxGraftTimeout off the estimate, either way, starts it
// over: the stamps are another leader's clock now (a new leader, or ours
// restarted), and the two clocks' offset is part of the lag.
func (p *Peer) observeCutLag(stamp uint64) {
	lag, ok := p.lagSince(stamp)
	if !ok {
		return
	}
	lag *= 8
	span := int64(p.maxGraftSub()) * 8
	switch {
	case p.cutLagN == 0 || lag > p.cutLagX8+span || lag < p.cutLagX8-span:
		p.cutLagX8, p.cutLagN = lag, 0
	case lag >= p.cutLagX8:
		p.cutLagX8 = lag
	default:
		p.cutLagX8 -= (p.cutLagX8 - lag + 15) / 16
	}
	p.cutLagN = min(p.cutLagN+1, minCutLagCopies)
}

// maxStamp bounds the cut stamps taken (2^58 sub-ticks: millions of
// years), so that a peer sending a huge one cannot overflow the lag.
const maxStamp = 1 << 58

// lagSince is how many sub-ticks of our clock have passed since cut stamp
// stamp, or false when the stamp is unknown (0) or out of bounds.
func (p *Peer) lagSince(stamp uint64) (int64, bool) {
	if stamp == 0 || stamp > maxStamp || p.sub > maxStamp {
		return 0, false
	}
	return int64(p.sub) - int64(stamp-1), true
}

// cutLag is the cut lag estimate in sub-ticks, rounded up: a lag that
// decayed by a fraction of a sub-tick still waits for the whole one.
func (p *Peer) cutLag() int64 {
	x := p.cutLagX8
	if x < 0 {
		return x / 8 // rounded towards zero: up, for a negative lag
	}
	return (x + 7) / 8
}

// graftByCutLag brings missing block m's graft forward to one sub-tick
// past our cut lag after its stamp (now, if that has passed): our
// parent's copy should have come by then, so it is lost, not late (see
// Config.CutLagGraft).
func (p *Peer) graftByCutLag(m *missingBlock, stamp uint64) {
	if !p.cfg.CutLagGraft || p.cutLagN < minCutLagCopies || m.grafted || m.gap || p.copiesLate() {
		return
	}
	if since, ok := p.lagSince(stamp); ok {
		due := p.sub + uint64(max(p.cutLag()+1-since, 0))
		m.deadline = min(m.deadline, due)
	}
}

// GraftTimeout is the current adaptive graft timeout in ticks, rounded up
// (tree mode).
func (p *Peer) GraftTimeout() int { return int(p.graftTimeout()) }

func (p *Peer) neighbours() int { return len(p.eager.ids) + len(p.lazy.ids) }

// treeForward pushes a new block to the eager neighbours and announces it
// to the lazy ones.
// w holds b's bytes, when known (see handleBlock).
func (p *Peer) treeForward(from identity.PKIID, key blockKey, b *pb.Block, w wireBlock, hops uint32) {
	g, grafted := p.grafted[key.number]
	answer := grafted && g.target(from)            // a copy we grafted
	oneShot := answer && g.oneShot && g.to == from // the copy we asked for, not a tree link
	if from != p.self.ID && !oneShot && p.IsAlive(from) && p.orgOf(from) == p.self.Org {
		// It pushed to us eagerly: the link is eager on our side too.
		p.lazy.set(from, false)
		p.eager.set(from, true)
	}
	if from != p.self.ID {
		// The eager copy from our parent, before our graft or before the
		// grafted one, tells how late eager copies run; a grafted copy
		// tells how long a graft takes. A copy from another neighbour
		// teaches nothing: it came round a loss (a child that grafted
		// it), and counting it as late raised the graft timeout after
		// every loss.
		m := p.missing[key]
		switch {
		case answer:
			p.observeRTT(g.rtt(from, p.sub))
		case !p.fromParent(from), hops < p.parentHops:
			// A parent's copy with fewer hops than its copies carry came
			// round a graft upstream (a graft's answer restarts the hop
			// count): the parent got it late after a loss, and counting
			// it raised the timeout of every peer below the loss.
		case m != nil && m.gap, grafted && g.gap:
			delete(p.grafted, key.number) // timed from the next block: nothing to learn
		case m != nil && !m.grafted:
			p.observeBlock(key.number, p.sub-m.first)
		case grafted:
			p.observeBlock(key.number, p.sub-g.first)
			delete(p.grafted, key.number)
		}
	}
	if from != p.self.ID && !answer && p.fromParent(from) && hops >= p.parentHops {
		p.observeCutLag(w.stamp) // as the lateness above, but from the cut, not an IHave
	}
	if from != p.self.ID && !answer {
		if from != p.parent {
			p.parentTop = 0
		}
		p.parent, p.parentHops = from, hops
		p.parentLast = p.sub
		p.parentTop = max(p.parentTop, key.number+1)
	}
	delete(p.missing, key)
	p.acknowledge(from, key, hops, true)
	if from != p.self.ID && !answer {
		p.hurryMissing()
	}
	if from != p.self.ID {
		p.noteGap(from, b, key.number, hops)
	}
	if int(hops) >= p.cfg.MaxHops {
		return
	}
	p.fillNeighbours() // a block may come before our first tick
	env := w.envelope(b, hops+1)
	sent := 0
	for _, id := range p.eager.ids {
		// A copy grafted one-shot is not pushed to our parent: its own
		// copy is on the way to us, ours would be a duplicate there, and
		// the duplicate would prune us: the one-shot graft left us
		// parentless, and the next block waited for a graft too.
		if id != from && (!oneShot || id != p.parent) {
			p.send(id, env)
			p.expectAck(id, key.number, env)
			sent++
		}
	}
	p.tracer.BlockForwarded(key.number, hops+1, sent)
	if len(p.lazy.ids) == 0 {
		return
	}
	ihave := envelope(&pb.GossipMessage{Content: &pb.GossipMessage_Ihave{Ihave: &pb.IHave{
		Number: key.number, Hash: key.hash[:], Hops: hops + 1, Stamp: w.stamp,
	}}})
	if d := p.ihaveDelay(); d > 0 && len(p.ihaves) < maxMissing {
		p.ihaves = append(p.ihaves, queuedIHave{env: ihave, number: key.number, from: from, due: p.sub + d})
		return
	}
	p.announce(ihave, from, nil)
}

// announce sends an IHave to the lazy neighbours other than from and
// those known to have the block.
func (p *Peer) announce(ihave *pb.Envelope, from identity.PKIID, known []identity.PKIID) {
	for _, id := range p.lazy.ids {
		if id != from && !slices.Contains(known, id) {
			p.send(id, ihave)
		}
	}
}

// flushIHaves sends the announcements whose delay has passed.
func (p *Peer) flushIHaves() {
	i := 0
	for ; i < len(p.ihaves) && p.ihaves[i].due <= p.sub; i++ {
		q := &p.ihaves[i]
		p.announce(q.env, q.from, q.known)
	}
	if i > 0 {
		n := copy(p.ihaves, p.ihaves[i:])
		clear(p.ihaves[n:])
		p.ihaves = p.ihaves[:n]
	}
}

// treeDuplicate prunes the link that delivered a copy we had: the sender
// stops pushing to us (it may have us eager even if we do not have it).
// A pushed copy of a block that pull delivered first prunes nothing: the
// eager link did its job, pull only won a race (a pull round that lists
// the block just cut); pruning it would leave us without an eager parent,
// and every next block would wait IHaveDelay + the graft timeout.
func (p *Peer) treeDuplicate(from identity.PKIID, key blockKey, hops uint32, stamp uint64) {
	if from == p.self.ID {
		return
	}
	n := key.number
	p.knows(n, from)
	if _, pulled := p.pulled[n]; !pulled { // else treeForward below acknowledges it
		p.acknowledge(from, key, hops, false)
		if p.cfg.AckResend > 0 && (from == p.parent || p.resentBy(from, n)) {
			return // a resend (our acknowledgement or its first copy was lost), not a redundant link
		}
	}
	// Our parent's copy of a block we grafted that comes after a later
	// block from it was not slow on its way (a stream is in order): the
	// parent got it late itself, by a graft or pull after a loss
	// upstream. Counting it raised the graft timeout of every peer below
	// a loss to several ticks (1,000 peers, 5% loss). (A copy we still
	// lack counts even then: under load many blocks are in flight.)
	// So was a copy with fewer hops than our parent's copies carry: a
	// graft's answer upstream restarted its hop count (the same test as
	// treeForward's; without it the graft timeout of peers below a loss
	// rose to 3-7 sub-ticks at 100 peers under churn and loss, and their
	// next lost copy waited 80-130 ms after its first IHave).
	repaired := n+1 < p.parentTop || hops < p.parentHops
	if p.fromParent(from) && !repaired {
		p.observeCutLag(stamp) // late after a graft, or behind pull: the lag must cover it
	}
	if from == p.parent {
		p.parentTop = max(p.parentTop, n+1)
		p.parentLast = p.sub
		p.hurryMissing()
	}
	if n == p.oneShotN {
		p.pushedBy(from) // the late eager copy of the block we grafted
	}
	if _, ok := p.pulled[n]; ok {
		// Pull won a race with this pushed copy. The subtree below us
		// still waits for the push: forward the block now, as this copy
		// would have been (once: a second pushed copy is a redundant
		// link again). Without this a pull that listed the block just
		// cut cost every peer below us a graft (the healthy p99 at
		// 1,000 peers, seed 1: IHaveDelay + graft timeout, ~200 ms).
		delete(p.pulled, n)
		if b, ok := p.Block(n); ok {
			p.treeForward(from, blockKey{number: n, hash: [32]byte(ledgerHash(b))}, b, wireBlock{}, p.parentHops)
		}
		return
	}
	g, ok := p.grafted[n]
	if ok && !g.target(from) {
		// The eager copy of a block we grafted: from our parent, we
		// grafted too early; from another neighbour, it came round a loss.
		if p.fromParent(from) && !repaired && !g.gap {
			p.observeBlock(n, p.sub-g.first)
		}
		delete(p.grafted, n)
		if g.oneShot {
			return // our parent, merely late: it stays our parent
		}
	}
	if ok && g.target(from) {
		p.observeRTT(g.rtt(from, p.sub)) // a grafted copy after another one: the graft was slow
		if g.oneShot && g.to == from {
			return // the copy we asked for, after the eager one: no tree link to prune
		}
	}
	if p.eager.set(from, false) {
		p.demote(from)
	}
	p.send(from, envelope(&pb.GossipMessage{Content: &pb.GossipMessage_Prune{Prune: &pb.Prune{}}}))
}

// demote keeps a link that left the eager set as a lazy one: the number
// of neighbours stays Fanout+TreeLazy, only their roles change (dropping
// it would make fillNeighbours add a fresh eager link, and duplicates).
func (p *Peer) demote(id identity.PKIID) {
	if p.IsAlive(id) {
		p.lazy.set(id, true)
	}
}

func (p *Peer) stepTree(from identity.PKIID, msg *pb.GossipMessage) {
	if p.cfg.Tree && !p.IsAlive(from) {
		if g, ok := msg.Content.(*pb.GossipMessage_Graft); ok && len(g.Graft.GetHash()) == 0 {
			p.notePendingLink(from)
		}
		return
	}
	if !p.cfg.Tree || p.orgOf(from) != p.self.Org {
		return // tree links are within the org, between live members
	}
	switch c := msg.Content.(type) {
	case *pb.GossipMessage_Prune:
		if p.eager.set(from, false) {
			p.demote(from)
		}
	case *pb.GossipMessage_Graft:
		p.lazy.set(from, false)
		if !p.eager.set(from, true) && len(c.Graft.GetHash()) == 0 {
			return
		}
		if len(c.Graft.GetHash()) == 32 {
			if b, ok := p.Block(c.Graft.GetNumber()); ok && [32]byte(ledgerHash(b)) == [32]byte(c.Graft.GetHash()) {
				p.send(from, envelope(&pb.GossipMessage{Content: &pb.GossipMessage_Block{Block: &pb.BlockMessage{Block: b, Hops: 1}}}))
			}
		}
	case *pb.GossipMessage_Ihave:
		ih := c.Ihave
		if len(ih.GetHash()) != 32 {
			return
		}
		key := blockKey{number: ih.GetNumber(), hash: [32]byte(ih.GetHash())}
		if _, eager := p.eager.pos[from]; !eager && p.cfg.LazyBack {
			p.lazy.set(from, true) // it announces to us: we announce to it (see Config.LazyBack)
		}
		p.noteLazyHops(from, ih.GetHops())
		if p.Have(ih.GetNumber()) || p.store.has(key) {
			p.acknowledged(from, ih.GetNumber())
			p.knows(ih.GetNumber(), from)
			// The copy beat its first IHave: eager copies are on time.
			if ih.GetNumber() < p.height+uint64(p.cfg.ReorderWindow) {
				p.observeBlock(ih.GetNumber(), 0)
			}
			return
		}
		m := p.missing[key]
		if m == nil {
			if len(p.missing) >= maxMissing || ih.GetNumber() >= p.height+uint64(p.cfg.ReorderWindow) {
				return
			}
			m = &missingBlock{first: p.sub, announcers: []identity.PKIID{from}, hops: []uint32{ih.GetHops()}}
			m.deadline = p.sub + p.graftWait(key.number, m)
			p.missing[key] = m
			p.missOrder = append(p.missOrder, key)
		} else if len(m.announcers) < maxAnnouncers {
			m.announcers = append(m.announcers, from)
			m.hops = append(m.hops, ih.GetHops())
			if from == p.parent {
				p.hurryMissing()
			}
		}
		p.noteAnnouncer(key, m, from, ih.GetHops())
		p.graftByCutLag(m, ih.GetStamp())
	}
}

// noteAnnouncer acts on a new IHave for a missing block from announcer
// from (just appended to m.announcers, unless the table was full): it
// tops up a first graft that found fewer announcers than GraftHedge, and
// it counts the announcer towards GraftQuorum.
func (p *Peer) noteAnnouncer(key blockKey, m *missingBlock, from identity.PKIID, hops uint32) {
	if m.gap {
		return
	}
	if m.grafted {
		// The first graft asked fewer announcers than the hedge wants (it
		// knew no more): ask this one now rather than a retry later.
		last := len(m.announcers) - 1
		if !m.hedgeDue && m.asked < p.graftHedge() && last >= 0 && m.announcers[last] == from && p.IsAlive(from) {
			p.graft(key, m, from, m.hops[last])
			m.announcers, m.hops = m.announcers[:last], m.hops[:last]
			m.asked++
		}
		return
	}
	if p.cfg.GraftQuorum == 0 || hops+quorumSlack < p.parentHops || p.copiesLate() {
		return
	}
	m.near++
	if m.near >= p.cfg.GraftQuorum {
		m.early = true
		m.deadline = min(m.deadline, max(m.first+1, p.sub))
	}
}

// copiesLate reports whether eager copies have lately come after their
// IHaves by more than the graft timeout's floor: then a copy missing when
// a quorum has announced it is most likely late, not lost (a busy
// machine, not a lossy network), and an early graft would only bring a
// duplicate, more load and later copies still.
//
// It used to hold also while the blocks we lately grafted got their eager
// copy from our parent anyway: on 50 peers x 1 MiB over gRPC the quorum's
// and the hedge's grafts of such copies took amplification to 1.26-1.33.
// ParentSilence now holds those grafts while the parent pushes in order
// (parentDelivering): without the rule, 50 x 1 MiB made no graft in 6
// runs, amplification 1.007-1.014. In the simulator, whose 5% loss makes
// a graft race the parent's copy now and then, one lost race turned the
// quorum and the hedge off for the next graft: under churn and loss the
// live p99 over healthy went 2.23x -> 2.09x at 100 peers (200 seeds) and
// 2.02x -> 1.94x at 1,000 (16 seeds) without it.
func (p *Peer) copiesLate() bool {
	return p.lateX8/8+1 > 2*p.graftFloor()
}

// graftHedge is how many announcers a first graft asks: one while
// copies run late (copiesLate), where a missing copy is most likely on
// its way and every hedged graft a duplicate more (50 peers x 1 MiB over
// gRPC: amplification 1.26-1.33 with the hedge, 1.10 without).
func (p *Peer) graftHedge() int {
	if p.copiesLate() {
		return 1
	}
	return max(p.cfg.GraftHedge, 1)
}

// fillNeighbours tops the neighbour sets up from the live org members:
// eager links up to Fanout (asking each to push to us too), then lazy ones
// up to TreeLazy.
func (p *Peer) fillNeighbours() {
	if want := p.cfg.Fanout + p.cfg.TreeLazy; p.neighbours() < want {
		var link *pb.Envelope
		for _, id := range p.pickPeers(p.liveOrg.ids, want-p.neighbours()+2, p.self.ID, p.self.ID) {
			if p.neighbours() >= want {
				break
			}
			if _, e := p.eager.pos[id]; e {
				continue
			}
			if _, l := p.lazy.pos[id]; l || p.isDown(id) {
				continue
			}
			if len(p.eager.ids) >= p.cfg.Fanout {
				p.lazy.set(id, true)
				continue
			}
			p.eager.set(id, true)
			if link == nil {
				link = linkGraft()
			}
			p.send(id, link)
		}
	}
}

// tickTree keeps the neighbour sets filled with live org members and
// runs the tree's timers at the tick's first sub-tick.
func (p *Peer) tickTree() {
	if !p.cfg.Tree {
		return
	}
	for _, s := range []*idSet{&p.eager, &p.lazy} {
		for i := 0; i < len(s.ids); {
			if id := s.ids[i]; !p.IsAlive(id) || p.orgOf(id) != p.self.Org {
				s.set(id, false) // the last element moves to i: look at i again
				continue
			}
			i++
		}
	}
	p.applyPendingLinks()
	p.expireDown()
	p.fillNeighbours()
	p.runTreeTimers()
}

// SubTick moves the tree's clock to sub-tick k of the current tick
// (0 <= k < Config.TreeResolution; a larger k is taken as the tick's last
// sub-tick, and the clock never goes back) and runs the tree timers due
// by then: queued IHaves, graft deadlines and retries. Membership and
// election move on Tick only; pull's fine timers run in Wake, which calls
// this. Callers (the Node, the simulator) call Wake(k), not this, at
// k/TreeResolution of the way to the next tick, and need not call it at
// all while NextWake reports nothing pending. With TreeResolution 1 it
// does nothing Tick does not.
func (p *Peer) SubTick(k int) {
	p.advanceTree(k)
	if p.cfg.Tree {
		p.runTreeTimers()
	}
}

// advanceTree moves the tree's clock to sub-tick k of the current tick
// without running timers: a caller that steps a message at sub-tick k
// first tells the Peer the time, so that what the message starts (an
// IHave's graft deadline, a forward's queued IHave) is timed from it.
func (p *Peer) advanceTree(k int) {
	if k < 0 {
		return
	}
	res := p.resolution()
	p.sub = max(p.sub, p.now*res+min(uint64(k), res-1))
}

// NextTreeDeadline reports the sub-tick of the current tick at which the
// earliest pending tree timer falls due (NextWake folds it with pull's),
// or false when none falls due before the next tick (Tick runs those). A
// timer already due gives the clock's current sub-tick.
func (p *Peer) NextTreeDeadline() (k int, ok bool) {
	if !p.cfg.Tree {
		return 0, false
	}
	next := ^uint64(0)
	if len(p.ihaves) > 0 {
		next = p.ihaves[0].due // the queue is in order of due time
	}
	if len(p.unacked) > 0 {
		next = min(next, p.unacked[0].due) // so is this one
	}
	for _, key := range p.missOrder {
		if m := p.missing[key]; m != nil {
			next = min(next, m.deadline)
		}
	}
	start := p.now * p.resolution()
	if next >= start+p.resolution() {
		return 0, false
	}
	return int(max(next, p.sub) - start), true
}

// TreeNow is the tree's clock: sub-ticks since the Peer was created.
func (p *Peer) TreeNow() uint64 { return p.sub }

// runTreeTimers sends the IHaves due and grafts announcers of blocks that
// did not arrive in time, at the tree clock's current sub-tick.
func (p *Peer) runTreeTimers() {
	p.flushIHaves()
	p.resendUnacked()
	keep := p.missOrder[:0]
	for _, key := range p.missOrder {
		m := p.missing[key]
		if m == nil {
			continue
		}
		if p.Have(key.number) || p.store.has(key) {
			delete(p.missing, key)
			continue
		}
		if p.sub >= m.deadline && !m.grafted && !m.gap {
			if until, ok := p.parentDelivering(key.number, m); ok {
				// Late on its way from the parent: look again when the
				// parent will have been silent for ParentSilence, not at
				// every sub-tick till then.
				m.deadline = until
				keep = append(keep, key)
				continue
			}
		}
		if p.sub >= m.deadline {
			if !p.graftNext(key, m) {
				// Every announcer was grafted and none answered in time:
				// pull now rather than at the next round (up to 1 s).
				if p.pull != nil {
					p.pull.PullSoon()
				}
				delete(p.missing, key)
				continue
			}
		}
		keep = append(keep, key)
	}
	clear(p.missOrder[len(keep):])
	p.missOrder = keep
}

// parentDelivering reports whether missing block n (m) may still come
// from our parent (parentOnTrack) and the parent pushed us a block within
// Config.ParentSilence ticks: a block missing then is late, not lost (see
// ParentSilence). It also returns the sub-tick at which the parent will
// have been silent that long.
func (p *Peer) parentDelivering(n uint64, m *missingBlock) (until uint64, ok bool) {
	if p.cfg.ParentSilence <= 0 || !p.parentOnTrack(n, m) {
		return 0, false
	}
	until = p.parentLast + uint64(p.cfg.ParentSilence)*p.resolution()
	return until, p.sub < until
}

// orphan reports whether no neighbour has pushed us a block yet (graft
// answers and pulled blocks do not count): we have no parent, and no
// eager copy is on its way.
func (p *Peer) orphan() bool { return p.parent == (identity.PKIID{}) }

// eagerParent reports whether we have a parent, alive and eager on our
// side: one whose pushes we may still be waiting for.
func (p *Peer) eagerParent() bool {
	_, eager := p.eager.pos[p.parent]
	return !p.orphan() && p.IsAlive(p.parent) && eager
}

// parentOnTrack reports whether missing block n (m) may still come from
// our parent, alive and eager: n is next in what it pushes us. It
// forwards in order, so n is not coming from it once it has pushed a later
// block, or when it never pushed us n-1 and n-1 came by another way (a
// graft's answer, pull): the link formed after, or broke before, the block
// went by. Nor is it when the parent announced n to us: it holds us lazy.
// Before these checks, such a block waited, while the parent pushed
// anything, for ParentSilence and then pull (500-750 ms after its cut in
// 100-peer runs, the p99 of most runs).
func (p *Peer) parentOnTrack(n uint64, m *missingBlock) bool {
	if !p.eagerParent() {
		return false
	}
	next := p.parentTop == n || (p.parentTop < n && !p.Have(n-1))
	return next && !slices.Contains(m.announcers, p.parent)
}

// parentStopped reports whether our parent, alive and eager, has stopped
// pushing us blocks before missing block n (m): it announced n to us (it
// holds us lazy), or the two blocks before n came another way. (One block
// that came another way may be a lone copy lost on the way; the parent
// may well push the next.) No eager copy of n is on its way from it then,
// and waiting out the graft timeout, a lateness learnt from copies that
// no longer come, is time lost: 500 ms per block for a peer in 100-peer
// runs. It is not so when our parent is dead or no longer eager: copies
// then come from our other eager neighbours, and under churn and loss
// grafting those at the floor raised the simulator's live p99 by 10% at
// 1,000 peers. (A peer that never had a parent is graftWait's case.)
func (p *Peer) parentStopped(n uint64, m *missingBlock) bool {
	if !p.eagerParent() {
		return false
	}
	return slices.Contains(m.announcers, p.parent) || (p.parentTop+1 < n && p.Have(n-1))
}

// graftWait is how many sub-ticks after its first IHave missing block n
// (m) is grafted: the graft timeout, or its floor when our parent has
// stopped pushing to us (see parentStopped) or no neighbour ever pushed
// to us (p.orphan). An orphan's learnt lateness does not decay, as no
// parent's copy comes to decay it: in 100-peer bench runs a peer whose
// first copies were graft answers and duplicates (each pruned a link)
// waited the lateness of the slow warm-up, 560 ms, for every block.
func (p *Peer) graftWait(n uint64, m *missingBlock) uint64 {
	if p.parentStopped(n, m) || p.orphan() {
		return p.graftFloor()
	}
	return p.graftTimeoutSub()
}

// hurryMissing brings forward the graft of each missing block that will
// not come from our parent after all (see parentOnTrack) to the graft
// timeout's floor after its first IHave, or now if that has passed. It
// runs when a push or an IHave from the parent has just told us more of
// it; most often the parent passed the block (its copy was lost, or never
// sent), and waiting longer only delays the graft. The simulator at 1,000
// peers under churn and loss, seeds 7-16: live p99 2.09x healthy when
// only the blocks of parentStopped were hurried, 2.00x with these.
func (p *Peer) hurryMissing() {
	for key, m := range p.missing {
		if !m.grafted && !m.gap && !p.parentOnTrack(key.number, m) {
			m.deadline = min(m.deadline, max(m.first+p.graftFloor(), p.sub))
		}
	}
}

// noteGap treats a pushed block n whose predecessor we lack, and never
// heard announced, as an announcement of that predecessor by the pusher:
// its copy and every IHave for it were lost (at 5% loss, one peer-block
// pair in 8,000 at three neighbours: a couple per run of 1,000 peers and
// 20 blocks, each left to pull, 400-700 ms after the cut, the p99 of the
// run). The pusher most likely has it (it forwards in order), and block
// n's header names its hash. The graft waits the graft timeout, in case
// the copy is merely behind. Only a lone gap right after what we hold
// counts: a peer far behind catches up by pull, not block by block.
func (p *Peer) noteGap(from identity.PKIID, b *pb.Block, n uint64, hops uint32) {
	if n == 0 || p.Have(n-1) || (n-1 != p.height && (n < 2 || !p.Have(n-2))) {
		return
	}
	hdr, err := ledger.ParseHeader(b)
	if err != nil || len(hdr.GetPreviousHash()) != 32 {
		return
	}
	key := blockKey{number: n - 1, hash: [32]byte(hdr.GetPreviousHash())}
	if p.store.has(key) || p.missing[key] != nil || len(p.missing) >= maxMissing {
		return
	}
	p.missing[key] = &missingBlock{announcers: []identity.PKIID{from}, hops: []uint32{hops},
		deadline: p.sub + p.graftTimeoutSub(), first: p.sub, gap: true}
	p.missOrder = append(p.missOrder, key)
}

// graftNext grafts the next live announcer of a missing block, or the
// next two on a retry, and sets the deadline for an answer (the graft
// round trip, not the graft timeout: the block is already late). It
// reports false when no announcer is left.
//
// A retry asks two at once: the graft or its answer was lost, and one
// more loss cost another round trip per announcer (at 1,000 peers under
// 5% loss the slowest block of a run waited for four grafts in a row).
// Retries are about a tenth of grafts there, so the extra copy is cheap.
func (p *Peer) graftNext(key blockKey, m *missingBlock) bool {
	first, hedge := !m.grafted, m.hedgeDue && p.sub < m.retryAt
	want := retryFanout
	switch {
	case hedge:
		want = p.graftHedge() - m.asked // the rest of the hedge, at the graft timeout
	case first && m.early:
		want = 1 // the quorum's early graft: the hedge waits for the graft timeout
	case first:
		want = p.graftHedge()
	}
	m.hedgeDue = false
	sent := 0
	if m.grafted && len(m.announcers) == 0 && !m.askedParent && p.cfg.GraftParent {
		// Every announcer was grafted, and the answers did not come. Our
		// eager parent most likely has the block (its copy to us was lost
		// on the way): one graft round trip, where pull takes a round
		// (hello, digest, request: 2 round trips and a sub-tick or more).
		m.askedParent = true
		if g, ok := p.grafted[key.number]; ok && !p.orphan() && !g.target(p.parent) && p.IsAlive(p.parent) {
			p.graft(key, m, p.parent, p.parentHops)
			sent++
		}
	}
	for len(m.announcers) > 0 && sent < want {
		a, ahops := m.announcers[0], m.hops[0]
		m.announcers, m.hops = m.announcers[1:], m.hops[1:]
		if p.IsAlive(a) {
			p.graft(key, m, a, ahops)
			sent++
		}
	}
	switch {
	case hedge && sent == 0:
		m.deadline = m.retryAt // nobody left to hedge with: the first graft's answer is still due
		return true
	case hedge:
	case sent == 0:
		return false
	case first:
		m.asked = sent
	}
	m.retryAt = p.sub + p.retryTimeout()
	m.deadline = m.retryAt
	if first && m.early && p.graftHedge() > sent {
		m.hedgeDue = true
		m.deadline = min(m.retryAt, max(m.first+p.graftTimeoutSub(), p.sub+1))
	}
	return true
}

// retryFanout is how many announcers a graft retry asks at once.
const retryFanout = 2

// graft asks announcer a for a block that did not arrive in time.
//
// While our eager parent is still delivering (the block we last grafted
// one-shot came late from another peer too) and the block before this one
// needed no graft, the graft is one-shot: Graft then Prune, so a sends this block
// and the tree stays as it was. On a busy machine most grafts are of
// copies merely late, and a Plumtree graft made the announcer an eager
// parent too: every later block then came twice until a duplicate pruned
// one of the two, and the tree churned (at 50 peers with 1 MiB blocks such
// tree duplicates outnumbered the grafts two to one). When the block
// last grafted one-shot has not come from anyone else (the parent is
// gone or cut off), when the previous block was grafted too (the parent
// is consistently late: a faster one is better), when we have no eager
// neighbour, or no parent (no neighbour pushes to us: no tree to keep as
// it is), when the announcer's path is shorter than our parent's by
// minShorter hops or more (the tree is improvable: take the shortcut), or
// on a retry,
// the graft is Plumtree's: the announcer becomes an eager neighbour and
// the tree repairs itself.
func (p *Peer) graft(key blockKey, m *missingBlock, a identity.PKIID, ahops uint32) {
	consecutive := p.lastGraft != 0 && key.number <= p.lastGraft // the previous block was grafted too
	shorter := ahops+minShorter <= p.parentHops                  // a real shortcut: take it (Plumtree's optimisation)
	// A gap's announcer is the neighbour that pushed us the next block,
	// mostly our parent: a Prune would cut the link that works.
	oneShot := !m.grafted && !m.gap && !p.oneShotPending && !consecutive && !shorter && !p.orphan() && len(p.eager.ids) > 0
	p.lastGraft = max(p.lastGraft, key.number+1)
	p.tracer.GraftSent(a, key.number, m.grafted, !oneShot)
	p.noteGraft(key.number, m, a, oneShot)
	p.send(a, envelope(&pb.GossipMessage{Content: &pb.GossipMessage_Graft{Graft: &pb.Graft{Number: key.number, Hash: key.hash[:]}}}))
	if oneShot {
		p.oneShotPending, p.oneShotTo, p.oneShotN = true, a, key.number
		p.send(a, envelope(&pb.GossipMessage{Content: &pb.GossipMessage_Prune{Prune: &pb.Prune{}}}))
		return
	}
	p.oneShotPending = false
	p.lazy.set(a, false)
	p.eager.set(a, true)
}

// pushedBy notes a late pushed copy of the block last grafted one-shot,
// from id: unless id is that graft's target, our tree links are
// delivering, only late. (Other copies are no evidence: a child that got
// a block elsewhere pushes it to us first when our parent is gone.)
func (p *Peer) pushedBy(id identity.PKIID) {
	if p.oneShotPending && id != p.oneShotTo && id != p.self.ID {
		p.oneShotPending = false
	}
}

// noteGraft remembers a graft so that the eager copy arriving after it
// teaches the timeout.
func (p *Peer) noteGraft(n uint64, m *missingBlock, to identity.PKIID, oneShot bool) {
	if m.grafted {
		// A retry: the first graft's record stands, with one more target.
		if g, ok := p.grafted[n]; ok {
			g.retries, g.retry = append(g.retries, to), p.sub
			p.grafted[n] = g
		}
		return
	}
	m.grafted = true
	if len(p.graftOrder) >= maxGrafted {
		delete(p.grafted, p.graftOrder[0])
		p.graftOrder = append(p.graftOrder[:0], p.graftOrder[1:]...)
	}
	p.grafted[n] = graftRecord{first: m.first, at: p.sub, retry: p.sub, to: to, oneShot: oneShot, gap: m.gap}
	p.graftOrder = append(p.graftOrder, n)
}

// maxPendingLinks bounds the link requests kept from peers not yet known
// (a flood of them cannot grow the table beyond this).
const maxPendingLinks = 64

// notePendingLink keeps a link request (an empty Graft: push to me) from a
// peer we do not know as a live member yet. A joiner picks its eager
// neighbours from the membership it was told and asks them at once, often
// before its alive has reached them: dropping the request would leave the
// joiner nobody's child, getting every block by pull.
func (p *Peer) notePendingLink(from identity.PKIID) {
	if p.pendingLinks == nil {
		p.pendingLinks = make(map[identity.PKIID]uint64)
	}
	if _, ok := p.pendingLinks[from]; ok || len(p.pendingLinks) < maxPendingLinks {
		p.pendingLinks[from] = p.now
	}
}

// applyPendingLinks makes the pending link requests of peers that have
// since become live members of our org lazy links; requests older than
// Expiration (the requester never showed up, or is of another org) are
// dropped.
func (p *Peer) applyPendingLinks() {
	if len(p.pendingLinks) == 0 {
		return
	}
	ids := make([]identity.PKIID, 0, len(p.pendingLinks))
	for id := range p.pendingLinks {
		ids = append(ids, id)
	}
	sortIDs(ids) // map order is random: keep the eager set's order deterministic
	for _, id := range ids {
		switch {
		case p.IsAlive(id) && p.orgOf(id) == p.self.Org:
			// A lazy link, not an eager one: the joiner hears our IHaves
			// and grafts us if it still needs a parent (then the link
			// turns eager), while a peer that found its parents anyway
			// gets no duplicate copies (taking every such request as
			// eager doubled the links of peers that all start together).
			if _, eager := p.eager.pos[id]; !eager {
				p.lazy.set(id, true)
			}
			delete(p.pendingLinks, id)
		case p.IsAlive(id) || p.now-p.pendingLinks[id] > uint64(p.cfg.Expiration):
			delete(p.pendingLinks, id)
		}
	}
}
