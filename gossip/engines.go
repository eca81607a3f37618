package gossip

import (
	"fmt"
	"slices"

	"github.com/blockgossip/blockgossip/election"
	"github.com/blockgossip/blockgossip/identity"
	pb "github.com/blockgossip/blockgossip/protos"
	"github.com/blockgossip/blockgossip/pull"
)

// engines holds the pull and election engines the Peer drives.
type engines struct {
	pull           *pull.Engine // nil when Config.PullEnabled is false
	elect          *election.Engine
	leader         identity.PKIID
	hasLead        bool
	pullLive       []pull.PeerInfo
	orgCands       []election.Candidate
	heightsChanged bool
	// bestHeight is the greatest height a live member advertises.
	bestHeight uint64
	// stuckSince is the tick since which we have been behind (a gap in
	// the buffer, or members ahead) at height stuckAt; 0 if not behind.
	stuckSince, stuckAt, lastPullSoon uint64
	// rivals are org members that proposed or declared while we lead
	// and that our live view lacks: our next declaration goes to them
	// too (see answerRival).
	rivals []identity.PKIID
}

// maxRivals bounds the rivals remembered between two declarations.
const maxRivals = 16

func (p *Peer) initEngines() error {
	var err error
	if p.cfg.PullEnabled {
		if p.pull, err = pull.New(p.cfg.Pull, p.self.ID, p.rng, p); err != nil {
			return fmt.Errorf("pull engine: %w", err)
		}
		p.pull.SetSubTicks(p.cfg.TreeResolution) // pull's fine timers share the tree's sub-tick clock
	}
	ecfg := p.cfg.Election
	if ecfg.Org == "" {
		ecfg.Org = p.self.Org
	}
	if p.elect, err = election.New(ecfg, p.self.ID, p.rng); err != nil {
		return fmt.Errorf("election engine: %w", err)
	}
	return nil
}

// IsLeader reports whether this peer leads its org (and so should run the
// orderer deliver client).
func (p *Peer) IsLeader() bool { return p.elect.IsLeader() }

// Leader returns the org's leader as this peer sees it.
func (p *Peer) Leader() (identity.PKIID, bool) { return p.elect.Leader() }

// PullStats returns the pull engine's counters (zero when pull is off).
func (p *Peer) PullStats() pull.Stats {
	if p.pull == nil {
		return pull.Stats{}
	}
	return p.pull.Stats()
}

func (p *Peer) tickEngines() {
	if p.pull != nil {
		if p.viewsDirty || p.heightsChanged || p.pullLive == nil {
			p.rebuildEngineViews()
		}
		p.maybePullSoon()
		p.markNear()
		p.sendPull(p.pull.Tick(p.pullLive))
	} else if p.viewsDirty || p.heightsChanged || p.orgCands == nil {
		p.rebuildEngineViews()
	}
	for _, lm := range p.elect.Tick(p.orgCands, p.height) {
		env := envelope(&pb.GossipMessage{Content: &pb.GossipMessage_Leadership{Leadership: lm}}) // unsigned: see handleLeadership
		for _, id := range p.liveOrg.ids {
			p.send(id, env)
		}
		if lm.GetDeclaration() {
			for _, id := range p.rivals {
				if _, live := p.liveOrg.pos[id]; !live {
					p.send(id, env)
				}
			}
			p.rivals = p.rivals[:0]
		}
	}
	p.checkLeader()
}

func (p *Peer) rebuildEngineViews() {
	p.pullLive, p.orgCands = p.pullLive[:0], p.orgCands[:0]
	p.bestHeight = 0
	for _, id := range p.liveAll.ids {
		m := p.members[id]
		p.bestHeight = max(p.bestHeight, m.height)
		p.pullLive = append(p.pullLive, pull.PeerInfo{ID: id, Height: m.height, Incarnation: m.inc})
		if m.info.GetOrg() == p.self.Org {
			p.orgCands = append(p.orgCands, election.Candidate{ID: id, Height: m.height})
		}
	}
	p.heightsChanged, p.viewsDirty = false, false
}

// markNear flags our push-tree neighbours in the pull view: pull sends
// most of its hellos to them, over streams the tree keeps open anyway.
func (p *Peer) markNear() {
	for i := range p.pullLive {
		_, e := p.eager.pos[p.pullLive[i].ID]
		_, l := p.lazy.pos[p.pullLive[i].ID]
		p.pullLive[i].Near = e || l
	}
}

// maybePullSoon starts a pull round early (Config.PullOnGap) when we have
// been stuck behind for longer than a graft would take: a gap in the
// reorder buffer, or live members advertising blocks we lack (a restarted
// peer). Catching up then takes a round trip, not up to PullInterval.
func (p *Peer) maybePullSoon() {
	behind := len(p.buffer) > 0 || p.bestHeight > p.height+1 // +1: the next block may be in flight
	switch {
	case !p.cfg.PullOnGap || !behind:
		p.stuckSince = 0
	case p.stuckSince == 0 || p.stuckAt != p.height:
		p.stuckSince, p.stuckAt = p.now, p.height // progress restarts the clock
	case p.now-p.stuckSince > p.graftTimeout() && p.now-p.lastPullSoon > uint64(p.cfg.Pull.DigestWait)+1:
		p.pull.PullSoon()
		p.lastPullSoon = p.now
	}
}

// farGap is how many blocks below one just buffered must be missing for
// it to start a pull round at once (Config.PullOnGap): one or two may be
// lost copies under repair by graft, not a peer that fell behind.
const farGap = 3

// pullFarGap starts a pull round at once when block n, just buffered, is
// farGap or more past our height: we are behind (a restarted peer, its
// first pull round sent to peers that were down or behind too), and the
// stall timer (maybePullSoon) would wait a graft timeout and a tick.
func (p *Peer) pullFarGap(n uint64) {
	if p.pull != nil && p.cfg.PullOnGap && n >= p.height+farGap {
		p.pull.PullSoon() // nothing while a round is under way
	}
}

func (p *Peer) checkLeader() {
	l, ok := p.elect.Leader()
	if ok != p.hasLead || l != p.leader {
		p.leader, p.hasLead = l, ok
		p.tracer.LeaderChanged(l, ok && l == p.self.ID)
	}
}

func (p *Peer) sendPull(outs []pull.Out) {
	for _, o := range outs {
		p.send(o.To, envelope(o.Msg))
	}
}

// stepOther handles the pull, state-transfer and leadership messages.
func (p *Peer) stepOther(from identity.PKIID, org string, msg *pb.GossipMessage) {
	switch c := msg.Content.(type) {
	case *pb.GossipMessage_Leadership:
		p.handleLeadership(from, org, c.Leadership)
	case *pb.GossipMessage_PullHello, *pb.GossipMessage_PullDigest, *pb.GossipMessage_PullRequest,
		*pb.GossipMessage_PullResponse, *pb.GossipMessage_StateRequest, *pb.GossipMessage_StateResponse:
		if p.pull == nil {
			return
		}
		p.pull.Advance(p.subInTick()) // time what the message starts from now
		outs, got := p.pull.Step(from, msg)
		p.sendPull(outs)
		for _, r := range got {
			via := ViaPull
			if r.Via == pull.ViaState {
				via = ViaState
			}
			_ = p.handleBlock(r.From, r.Block, wireBlock{}, via, 0)
		}
	case *pb.GossipMessage_Ihave, *pb.GossipMessage_Graft, *pb.GossipMessage_Prune:
		p.stepTree(from, msg)
	}
}

// handleLeadership accepts a leadership message only from its originator
// (the election engine drops one whose pki_id is not from), a known member
// of our org. Leadership messages go point to point, never relayed, so the
// stream's mutual TLS already proves who sent one, as it does for pull
// and state transfer: they carry no signature. Signed, each cost its
// follower an ed25519 verification every DeclarationInterval: 4.5% of the
// CPU of a 100-peer bench (0.16 of 3.55 s in the timed part), for no
// assurance the stream did not give.
func (p *Peer) handleLeadership(from identity.PKIID, org string, lm *pb.LeadershipMessage) {
	m := p.members[from]
	if m == nil || org != p.self.Org || m.info.GetOrg() != p.self.Org {
		return // unknown yet or foreign: declarations repeat, we will hear the next one
	}
	p.elect.Step(from, lm)
	p.answerRival(from)
	p.checkLeader()
}

// answerRival makes sure that a member that proposed or declared itself
// while we lead hears our next declaration (the engine sends one at the
// next tick), even if our live view lacks it: declarations go to the live
// view, and a member missing from it (its alives not yet heard, or
// presumed dead while it was slow) never hears one, proposes, and leads
// beside us, both pulling every block from the orderer. Seen once in
// about 90 100-peer bench runs: two leaders in one org for 2 s (10 blocks
// pulled twice), until the leader's view listed the rival.
func (p *Peer) answerRival(from identity.PKIID) {
	if !p.elect.IsLeader() || len(p.rivals) >= maxRivals || slices.Contains(p.rivals, from) {
		return
	}
	if _, live := p.liveOrg.pos[from]; !live {
		p.rivals = append(p.rivals, from)
	}
}

// Wake moves the clock to sub-tick k of the current tick (0 <= k <
// Config.TreeResolution) and runs every timer due by then: the tree's
// (SubTick) and the pull engine's (the request after the digests, re-asks,
// state hedges, catch-up). A caller that ticks every TickInterval calls
// Wake(k) at k/TreeResolution of the way to the next tick, and need not
// call it while NextWake reports nothing pending.
func (p *Peer) Wake(k int) {
	p.SubTick(k)
	if p.pull != nil {
		p.sendPull(p.pull.SubTick(p.subInTick()))
	}
}

// NextWake reports the sub-tick of the current tick at which the earliest
// pending tree or pull timer falls due (the caller then calls Wake with
// it), or false when none falls due before the next tick.
func (p *Peer) NextWake() (k int, ok bool) {
	k, ok = p.NextTreeDeadline()
	if p.pull != nil {
		if kp, okp := p.pull.NextDeadline(); okp && (!ok || kp < k) {
			k, ok = max(kp, p.subInTick()), true
		}
	}
	return k, ok
}

// subInTick is the tree clock's sub-tick within the current tick.
func (p *Peer) subInTick() int { return int(p.TreeNow() - p.now*p.resolution()) }

// onCommitted tells the engines the ledger grew.
func (p *Peer) onCommitted() {
	if p.pull != nil {
		p.pull.OnCommitted(p.height)
	}
}

// rejectedPull tells the pull engine that a block it returned was invalid.
func (p *Peer) rejectedPull(from identity.PKIID, via Via) {
	if p.pull != nil && (via == ViaPull || via == ViaState) {
		p.pull.ReportInvalid(from)
	}
}
