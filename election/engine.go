package election

import (
	"bytes"
	"errors"
	"fmt"
	"math/rand/v2"

	"github.com/blockgossip/blockgossip/identity"
	pb "github.com/blockgossip/blockgossip/protos"
)

// ErrNoRand is returned by New when no random source is given.
var ErrNoRand = errors.New("election: nil *rand.Rand; pass a seeded source (rand.New(rand.NewPCG(seed, 0)))")

// Candidate is a live peer of the organisation as membership sees it, with
// the ledger height it last advertised.
type Candidate struct {
	ID     identity.PKIID
	Height uint64
}

// peerState is what the engine remembers of one remote peer.
type peerState struct {
	incarnation uint64
	sequence    uint64
	lastTick    int64  // when we last accepted a message from it
	height      uint64 // the ledger height its last message carried
	proposedAt  int64  // tick of its last proposal; -1 if none
}

// Engine is one peer's view of its organisation's election. It is not safe
// for concurrent use: one goroutine (the node's loop) calls every method.
type Engine struct {
	cfg         Config
	self        identity.PKIID
	incarnation uint64
	sequence    uint64
	now         int64
	selfHeight  uint64

	leading    bool
	hasLeader  bool // a remote leader is known (never true while leading)
	leader     identity.PKIID
	lastHeard  int64 // tick of the known leader's last declaration
	declareNow bool  // a rival proposal or declaration was heard: declare at the next tick

	proposing     bool
	fallback      bool           // proposing although behind: no up-to-date peer did
	electionStart int64          // tick our current proposal round began
	lastSent      int64          // tick of our last proposal or declaration
	quietUntil    int64          // no proposal before this tick (after Yield or a lost round)
	behindSince   int64          // first tick we were leaderless but too far behind to propose; -1 if not
	deferSince    int64          // tick the current wait for a better live candidate began (see deferToBetter); -1 if not waiting
	deferTo       identity.PKIID // the best candidate we hold back for (valid while deferSince >= 0)
	deferFirst    int64          // tick we began holding back for deferTo
	deferWait     int64          // ticks we hold back for deferTo while it is silent
	deposed       identity.PKIID // the last leader we gave up on for silence: never deferred to
	followSince   int64          // tick we began following the current leader
	// heardLeader: we have followed a declared leader since we started,
	// so the org is known and StartupGrace no longer holds us back.
	heardLeader bool

	// Stall detection (stall.go).
	ordererHeight uint64
	ordererAt     int64 // tick of the last ObserveOrdererHeight
	ordererSeen   bool
	watch         stallWatch
	offences      map[identity.PKIID]*offence
	stalls        []Stall
	scratch       []Candidate

	peers map[identity.PKIID]*peerState
}

// New returns an engine for the peer self. rng seeds its incarnation (which
// tells a restarted peer's messages from its previous life's).
func New(cfg Config, self identity.PKIID, rng *rand.Rand) (*Engine, error) {
	if err := cfg.Validate(); err != nil {
		return nil, err
	}
	if rng == nil {
		return nil, ErrNoRand
	}
	if self.IsZero() {
		return nil, fmt.Errorf("election: zero PKI-ID for self; pass the peer's identity.PKIID")
	}
	return &Engine{
		cfg:         cfg,
		self:        self,
		incarnation: rng.Uint64(),
		lastSent:    -1 << 62,
		behindSince: -1,
		deferSince:  -1,
		peers:       make(map[identity.PKIID]*peerState),
	}, nil
}

// IsLeader reports whether this peer leads its organisation now.
func (e *Engine) IsLeader() bool {
	if e.cfg.Static {
		return e.cfg.StaticLeader
	}
	return e.leading
}

// Leader returns the leader this peer believes in, if any (itself when it
// leads). In static mode only a static leader knows one: itself.
func (e *Engine) Leader() (identity.PKIID, bool) {
	switch {
	case e.IsLeader():
		return e.self, true
	case e.hasLeader && !e.cfg.Static:
		return e.leader, true
	}
	return identity.PKIID{}, false
}

// Yield gives up leadership (for example when the leader cannot reach the
// orderer): the peer stops declaring and does not propose itself until the
// others have had time to notice its silence and elect someone else
// (LeaderAliveThreshold+LeaderGrace+ElectionDuration+DeclarationInterval+1
// ticks: it is still a live member, so followers give it the grace). It
// does nothing if the peer does not lead.
func (e *Engine) Yield() {
	if !e.leading || e.cfg.Static {
		return
	}
	e.leading = false
	e.quietUntil = e.now + int64(e.cfg.LeaderAliveThreshold+e.cfg.LeaderGrace+e.cfg.ElectionDuration+e.cfg.DeclarationInterval+1)
}

// LeaderDown tells the engine that the stream to id broke: id's process
// most likely ended (killed, or stopped for a restart or an upgrade; the
// transport tells one network delay later). If id is the leader we
// follow, it is given up at once, as one silent for LeaderAliveThreshold
// (+ LeaderGrace) would be: the next Tick elects without it, and a new
// leader takes over ElectionDuration later, not 2-3 s after the old one's
// last declaration. If id is alive after all (the network broke the
// stream), its next declaration wins us back (it has the lowest ID of
// those who proposed when it won), and a proposal of ours in between only
// makes it declare at once.
func (e *Engine) LeaderDown(id identity.PKIID) {
	if e.cfg.Static || e.leading || !e.hasLeader || e.leader != id {
		return
	}
	e.hasLeader = false
	e.deposed = id
	if p := e.peers[id]; p != nil {
		// Its proposals (from the round it won, moments ago when it was
		// just elected) would beat our round: they are history.
		p.proposedAt = -1
	}
}

// Tick advances logical time by one tick. orgPeers are the live peers of the
// organisation as membership sees them (self may be included; it is
// ignored), selfHeight this peer's ledger height. It returns the messages to
// send to each of the organisation's live peers; nil most of the time.
func (e *Engine) Tick(orgPeers []Candidate, selfHeight uint64) []*pb.LeadershipMessage {
	if e.cfg.Static {
		return nil
	}
	e.now++
	e.selfHeight = selfHeight
	e.forgetStale()
	orgPeers = e.trusted(orgPeers)
	best := e.bestHeight(orgPeers)

	if e.leading {
		e.watch.active = false
		if e.declareNow || e.now-e.lastSent >= int64(e.cfg.DeclarationInterval) {
			return e.send(true)
		}
		return nil
	}
	if e.hasLeader {
		silent := e.now - e.lastHeard
		alive := silent <= int64(e.cfg.LeaderAliveThreshold) ||
			(silent <= int64(e.cfg.LeaderAliveThreshold+e.cfg.LeaderGrace) && listed(orgPeers, e.leader))
		switch {
		case alive && !e.checkStall(orgPeers):
			return nil // on time, or late but membership still hears it; blocks flow
		case alive:
			// Stalled: checkStall dropped the leader; elect without it.
			orgPeers = e.trusted(orgPeers)
			best = e.bestHeight(orgPeers)
		default:
			e.hasLeader = false // the leader is silent: presumed dead
			e.deposed = e.leader
		}
	} else {
		e.watch.active = false
	}
	if (e.now <= int64(e.cfg.StartupGrace) && !e.heardLeader) || e.now < e.quietUntil {
		// StartupGrace lets membership learn the org before a first
		// election. A declaration heard ends it: the org is known (it has
		// a leader), and a leader lost now is replaced at once. A peer
		// restarted in a rolling upgrade, with the lowest PKI-ID, used to
		// hold back its org's election for the rest of its grace when the
		// leader stopped next: 2.5 s without a leader, not 0.9 s (fault
		// suite, SIGTERM of a leader 2 s after a mate's restart).
		return nil
	}
	if e.proposing {
		return e.continueRound(best)
	}
	if e.cfg.PreferUpToDate && e.deferToBetter(orgPeers, best) {
		return nil
	}
	return e.maybePropose(best)
}

// deferToBetter holds our proposal back while membership lists a live,
// up-to-date candidate with a lower PKI-ID, which would win anyway: at
// start-up only the best peer proposes, instead of every peer broadcasting
// to every other (N^2 signed messages, and as many connections, on a busy
// start). If that candidate stays silent for LeaderAliveThreshold ticks,
// we propose after all.
//
// The wait starts again when a better candidate than the one we wait for
// shows up: it has most likely just started, so we wait out its
// StartupGrace too. It also starts again, for LeaderAliveThreshold, while
// a better candidate is heard proposing (it declares at the end of its
// round), up to 2 x LeaderAliveThreshold after we began waiting for this
// candidate: a member that proposes and never declares holds us back for
// 3 x LeaderAliveThreshold at most. Peers start one after another: in
// 100-peer bench runs, started over 1.5 s, the first ones gave up on the
// best peer before its round ended and proposed too, each to every member
// (up to 38 proposers, 2,000 proposals, 35-51 links per peer against
// 23-30).
func (e *Engine) deferToBetter(orgPeers []Candidate, best uint64) bool {
	var to identity.PKIID
	found := false
	for _, c := range orgPeers {
		if e.better(c.ID, c.Height, best) && (!found || c.ID.Less(to)) {
			to, found = c.ID, true
		}
	}
	lat := int64(e.cfg.LeaderAliveThreshold)
	switch {
	case !found:
		e.deferSince = -1
		return false
	case e.deferSince < 0:
		e.deferSince, e.deferFirst, e.deferTo, e.deferWait = e.now, e.now, to, lat
	case to.Less(e.deferTo):
		e.deferSince, e.deferFirst, e.deferTo = e.now, e.now, to
		e.deferWait = max(lat, int64(e.cfg.StartupGrace)+1)
	case e.now-e.deferFirst < 2*lat && e.betterProposing(best):
		e.deferSince, e.deferWait = e.now, lat
	}
	return e.now-e.deferSince < e.deferWait
}

// better reports whether the peer id at height h would beat us: a lower
// PKI-ID, up to date, and not the leader we gave up on. A height beyond
// belief (past the orderer's, see believable) is a lie, not a lead: such a
// member would be "up to date" whatever the best height, and every peer
// above it held its proposal back for it.
func (e *Engine) better(id identity.PKIID, h, best uint64) bool {
	return id != e.self && id != e.deposed && id.Less(e.self) && e.upToDate(h, best) && e.believable(h)
}

// betterProposing reports whether a better peer's proposal round is under
// way: we heard it propose within the last ElectionDuration ticks.
func (e *Engine) betterProposing(best uint64) bool {
	for id, p := range e.peers {
		if p.proposedAt >= 0 && e.now-p.proposedAt <= int64(e.cfg.ElectionDuration) && e.better(id, p.height, best) {
			return true
		}
	}
	return false
}

// maybePropose starts a proposal round if this peer may lead.
func (e *Engine) maybePropose(best uint64) []*pb.LeadershipMessage {
	e.fallback = false
	if !e.upToDate(e.selfHeight, best) {
		if e.behindSince < 0 {
			e.behindSince = e.now
		}
		// Some leader behind is better than none: if no up-to-date peer
		// has led for a whole threshold, propose anyway.
		if e.now-e.behindSince < int64(e.cfg.LeaderAliveThreshold) {
			return nil
		}
		e.fallback = true
	}
	e.behindSince = -1
	e.proposing = true
	e.electionStart = e.now
	return e.send(false)
}

// continueRound repeats our proposal, or ends the round: we lead if no
// better proposal was heard.
func (e *Engine) continueRound(best uint64) []*pb.LeadershipMessage {
	if e.now-e.electionStart < int64(e.cfg.ElectionDuration) {
		if !e.beaten(best) && e.now-e.lastSent >= int64(e.cfg.DeclarationInterval) {
			return e.send(false)
		}
		return nil
	}
	e.proposing = false
	if e.beaten(best) {
		// Give the winner a declaration interval to announce itself
		// before proposing again.
		e.quietUntil = e.now + int64(e.cfg.DeclarationInterval)
		return nil
	}
	e.leading = true
	return e.send(true)
}

// beaten reports whether a better proposal than ours was heard during (or
// shortly before) our round.
func (e *Engine) beaten(best uint64) bool {
	if !e.fallback && !e.upToDate(e.selfHeight, best) {
		return true // we fell behind during the round
	}
	since := e.electionStart - int64(e.cfg.ElectionDuration)
	for id, p := range e.peers {
		if p.proposedAt >= since && id.Less(e.self) && (e.fallback || e.upToDate(p.height, best)) {
			return true
		}
	}
	return false
}

// Step handles a leadership message from the peer from, which must be the
// message's authenticated originator. Anything malformed, foreign, replayed
// or stale is ignored: a remote peer cannot make Step fail or panic.
func (e *Engine) Step(from identity.PKIID, msg *pb.LeadershipMessage) {
	if e.cfg.Static || msg == nil || from == e.self || from.IsZero() {
		return
	}
	if len(msg.GetPkiId()) != 0 && !bytes.Equal(msg.GetPkiId(), from[:]) {
		return // a peer speaking for another
	}
	if e.cfg.Org != "" && msg.GetOrg() != e.cfg.Org {
		return
	}
	if e.Distrusted(from) {
		return // serving a stall penalty: it may neither lead nor beat us
	}
	p := e.peers[from]
	if p == nil {
		p = &peerState{proposedAt: -1}
		e.peers[from] = p
	} else if msg.GetIncarnation() == p.incarnation && msg.GetSequence() <= p.sequence {
		return // duplicate or reordered
	}
	p.incarnation, p.sequence = msg.GetIncarnation(), msg.GetSequence()
	p.lastTick = e.now
	p.height = msg.GetLedgerHeight()
	if msg.GetDeclaration() {
		e.onDeclaration(from)
		return
	}
	p.proposedAt = e.now
	if e.leading {
		e.declareNow = true // quash the election at once
	}
}

// onDeclaration settles who leads when from declares itself.
func (e *Engine) onDeclaration(from identity.PKIID) {
	switch {
	case e.leading && from.Less(e.self):
		e.leading = false // two leaders: the higher ID steps down
		e.follow(from)
	case e.leading:
		e.declareNow = true // let the higher-ID leader hear us soon
	case !e.hasLeader || from == e.leader || from.Less(e.leader):
		e.follow(from)
	}
}

func (e *Engine) follow(leader identity.PKIID) {
	if !e.hasLeader || e.leader != leader {
		e.followSince = e.now // a new leader gets a full StallTimeout
		e.watch.active = false
	}
	e.hasLeader, e.heardLeader = true, true
	e.leader = leader
	e.lastHeard = e.now
	e.proposing = false
	e.behindSince = -1
	e.deferSince = -1
}

// send builds our next proposal or declaration.
func (e *Engine) send(declaration bool) []*pb.LeadershipMessage {
	e.sequence++
	e.lastSent = e.now
	e.declareNow = false
	return []*pb.LeadershipMessage{{
		PkiId:        e.self.Bytes(),
		Org:          e.cfg.Org,
		Declaration:  declaration,
		Incarnation:  e.incarnation,
		Sequence:     e.sequence,
		LedgerHeight: e.selfHeight,
	}}
}

// upToDate reports whether a peer at height h may lead given the best height
// known.
func (e *Engine) upToDate(h, best uint64) bool {
	return !e.cfg.PreferUpToDate || h+e.cfg.MaxLag >= best
}

// bestHeight is the highest ledger height among self, the live org peers and
// peers heard from recently.
func (e *Engine) bestHeight(orgPeers []Candidate) uint64 {
	best := e.selfHeight
	for _, c := range orgPeers {
		if e.believable(c.Height) {
			best = max(best, c.Height)
		}
	}
	for _, p := range e.peers {
		if e.now-p.lastTick <= int64(e.cfg.LeaderAliveThreshold) && e.believable(p.height) {
			best = max(best, p.height)
		}
	}
	return best
}

// forgetStale drops peers not heard from for long enough that neither their
// proposals nor their sequence numbers matter any more; it bounds memory.
func (e *Engine) forgetStale() {
	horizon := int64(2*e.cfg.LeaderAliveThreshold + 2*e.cfg.ElectionDuration)
	for id, p := range e.peers {
		if e.now-p.lastTick > horizon {
			delete(e.peers, id)
		}
	}
}

// listed reports whether id is among the live org peers.
func listed(orgPeers []Candidate, id identity.PKIID) bool {
	for _, c := range orgPeers {
		if c.ID == id {
			return true
		}
	}
	return false
}
