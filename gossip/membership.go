package gossip

import (
	"fmt"
	"slices"

	"github.com/blockgossip/blockgossip/comm"
	"github.com/blockgossip/blockgossip/identity"
	pb "github.com/blockgossip/blockgossip/protos"
)

// member is what we know of another peer, from its latest alive message.
type member struct {
	info     *pb.Member
	id       identity.PKIID
	inc, seq uint64
	height   uint64
	env      *pb.Envelope // latest signed alive, relayed in membership responses
	// certOmitted says env leaves the certificate out (info has it).
	certOmitted bool
	hb          *pb.Heartbeat // latest verified heartbeat since env, relayed with it
	chain       memberChain   // where its heartbeat hash chain stands
	lastHeard   uint64        // tick
	dead        bool
	deadSince   uint64
}

// MemberInfo describes a known member.
type MemberInfo struct {
	ID          identity.PKIID
	Endpoint    string
	Org         string
	Incarnation uint64
	Height      uint64
	Alive       bool
}

// membership tracks who is alive. Each AliveInterval a peer sends either a
// signed alive or, in between (see heartbeat.go), an unsigned heartbeat
// that its signed alive's hash chain authenticates; both spread by gossip
// (each new one is relayed once to a few random peers) and are ordered by
// (incarnation, sequence): an older or replayed one changes nothing, a
// newer incarnation readmits a dead member.
type membership struct {
	seq       uint64
	selfAlive *pb.Envelope  // our latest signed alive
	selfHB    *pb.Heartbeat // our latest heartbeat, newer than selfAlive (or nil)
	chain     *hbChain      // our current heartbeat chain (nil: none yet, or HeartbeatChain is 0)
	// wants lists, per peer to ask, the members whose signed alive we lack
	// to check their heartbeats; wanted is when we last asked for each.
	wants  map[identity.PKIID][]identity.PKIID
	wanted map[identity.PKIID]uint64
	// relays is the membership news waiting for the next batch
	// (relaybatch.go).
	relays relayQueue
	// signedHeight and lastSigned are the height in, and the tick of, our
	// latest signed alive.
	signedHeight, lastSigned uint64
	// selfCertOmitted says selfAlive leaves our certificate out.
	selfCertOmitted bool
	members         map[identity.PKIID]*member
	bootstrap       []comm.Peer

	// The live members (not dead, not banned), all and of our org, kept
	// up to date on every change so that picking targets costs O(fanout)
	// even with 10,000 members.
	liveAll, liveOrg idSet
	// viewsDirty says the live sets changed since the engines' views were
	// last rebuilt.
	viewsDirty bool

	lastBootstrap, lastSync, lastReconnect uint64
	// aliveDue is the tick of our next alive round. The first one falls at
	// a random tick of the first AliveInterval, so that peers started
	// together do not send their alive rounds in the same tick ever after:
	// at 100 peers in one process the first signed rounds came as bursts of
	// ~10,000 signature checks, and the blocks cut then reached their last
	// peer 200-300 ms late. Bounded views (MaxView) keep the first round at
	// AliveInterval: a member outside our view is refreshed only by a sync
	// every SyncInterval (= Expiration by default), and an earlier first
	// hearing falsely expired such members before the sync came.
	aliveDue uint64
	// firstSync is the tick of our first membership sync: one alive round
	// after start, or (unbounded views) a random tick of the round after,
	// for the reason of aliveDue: peers started together synced together
	// every SyncInterval ever after, 100 membership responses of the whole
	// membership in one tick.
	firstSync uint64
}

func (m *membership) init() {
	m.members = make(map[identity.PKIID]*member)
	m.viewsDirty = true
}

// AddBootstrap registers a bootstrap peer (its PKI-ID learnt by
// comm.Transport.Connect) and asks it for the membership at once.
func (p *Peer) AddBootstrap(peer comm.Peer) {
	if peer.ID == p.self.ID {
		return
	}
	for _, b := range p.bootstrap {
		if b.ID == peer.ID {
			return
		}
	}
	p.bootstrap = append(p.bootstrap, peer)
	p.out.Messages = append(p.out.Messages, Out{To: peer, Env: p.membershipRequest()})
}

// Members lists every member known, live or dead, excluding self.
func (p *Peer) Members() []MemberInfo {
	out := make([]MemberInfo, 0, len(p.members))
	for _, m := range p.members {
		out = append(out, MemberInfo{
			ID: m.id, Endpoint: m.info.GetEndpoint(), Org: m.info.GetOrg(),
			Incarnation: m.inc, Height: m.height, Alive: !m.dead && !p.isBanned(m.id),
		})
	}
	return out
}

// LivePeers returns the PKI-IDs of the live members (excluding self). The
// slice is shared and changes with the next call into the Peer: do not
// keep or modify it.
func (p *Peer) LivePeers() []identity.PKIID { return p.liveAll.ids }

// IsAlive reports whether id is a live member.
func (p *Peer) IsAlive(id identity.PKIID) bool {
	m := p.members[id]
	return m != nil && !m.dead && !p.isBanned(id)
}

// syncLive puts id in or out of the live sets according to its state.
func (p *Peer) syncLive(id identity.PKIID) {
	m := p.members[id]
	live := m != nil && !m.dead && !p.isBanned(id)
	a := p.liveAll.set(id, live)
	o := p.liveOrg.set(id, live && m.info.GetOrg() == p.self.Org)
	if a || o {
		p.viewsDirty = true
	}
}

func (p *Peer) endpointOf(id identity.PKIID) string {
	if m := p.members[id]; m != nil {
		return m.info.GetEndpoint()
	}
	for _, b := range p.bootstrap {
		if b.ID == id {
			return b.Endpoint
		}
	}
	return ""
}

// aliveEnvelope returns our latest signed alive message, signing the
// first one if need be.
func (p *Peer) aliveEnvelope() *pb.Envelope {
	if p.selfAlive == nil {
		p.seq++
		p.signAlive()
	}
	return p.selfAlive
}

// signAlive signs the alive of sequence p.seq, starting a new heartbeat
// chain there if the current one does not reach it.
func (p *Peer) signAlive() {
	a := &pb.AliveMessage{
		Member: &pb.Member{
			PkiId: p.self.ID.Bytes(), Endpoint: p.self.Endpoint,
			Org: p.self.Org, Certificate: p.self.Cert,
		},
		Incarnation:  p.self.Incarnation,
		Sequence:     p.seq,
		LedgerHeight: p.height,
	}
	if p.cfg.HeartbeatChain > 0 {
		renew := p.chain == nil || p.seq > p.chain.end
		if renew {
			p.chain = p.newChain(p.seq)
		}
		e := p.chain.element(p.seq)
		a.ChainElement, a.ChainEnd = e[:], p.chain.end
		// An alive that only refreshes the height goes to members that
		// hold our certificate from the alive that started our chain (or
		// from our first rounds): leave it out.
		if !renew && p.seq > signedRounds && len(p.self.Cert) > 0 {
			a.Member.Certificate, a.CertificateOmitted = nil, true
		}
	}
	p.selfAlive = p.signedEnvelope(&pb.GossipMessage{Content: &pb.GossipMessage_Alive{Alive: a}})
	p.selfHB, p.signedHeight, p.lastSigned = nil, p.height, p.now
	p.selfCertOmitted = a.CertificateOmitted
}

// nextAlive moves to the next sequence and returns what announces it: a
// signed alive or a heartbeat.
func (p *Peer) nextAlive() *pb.Envelope {
	p.seq++
	if p.needSignedAlive() {
		p.signAlive()
		return p.selfAlive
	}
	return p.heartbeatEnvelope()
}

func (p *Peer) membershipRequest() *pb.Envelope {
	return envelope(&pb.GossipMessage{Content: &pb.GossipMessage_MembershipRequest{
		MembershipRequest: &pb.MembershipRequest{SelfAlive: p.aliveEnvelope()},
	}})
}

func (p *Peer) tickMembership() {
	p.askWanted()
	if p.now >= p.aliveDue {
		p.aliveDue = p.now + uint64(p.cfg.AliveInterval)
		env := p.nextAlive()
		switch {
		case p.cfg.MaxView == 0 && p.cfg.AliveBatch > 0: // rides this tick's batch
			hb := p.selfHB
			if env == p.selfAlive {
				hb = nil
			}
			p.relay(p.self.ID, p.self.ID, env, hb)
		case p.cfg.MaxView == 0:
			for _, id := range p.pickPeers(p.LivePeers(), p.cfg.AliveFanout, identity.PKIID{}, identity.PKIID{}) {
				p.send(id, env)
			}
		default: // bounded view: straight to every view member
			for _, id := range p.LivePeers() {
				p.send(id, env)
			}
		}
	}
	p.flushRelays()
	// Expiry and purge scan every member: do it a few times per expiration
	// period, not every tick, so that 10,000 simulated peers stay cheap.
	if every := max(1, uint64(p.cfg.Expiration)/10); p.now%every == 0 {
		p.expireMembers()
	}
	live := p.LivePeers()
	switch {
	case len(live) == 0 && len(p.bootstrap) > 0:
		if p.now-p.lastBootstrap >= uint64(p.cfg.BootstrapRetry) {
			p.lastBootstrap = p.now
			req := p.membershipRequest()
			for _, b := range p.bootstrap {
				p.out.Messages = append(p.out.Messages, Out{To: b, Env: req})
			}
		}
	case len(live) > 0 && (p.now-p.lastSync >= uint64(p.cfg.SyncInterval) || (p.lastSync == 0 && p.now >= p.firstSync) ||
		(p.relayNeighbours() != nil && p.now-max(p.relays.lastNews, p.lastSync) >= uint64(p.cfg.AliveInterval))):
		// The first sync comes one alive round after start: a peer that
		// joined with many others at once may have missed the whole batch
		// of their alives (batched news travels together). With relay
		// neighbours, a peer that heard no news for a round (few peers
		// have it as a neighbour) syncs at once.
		p.lastSync = p.now
		p.send(live[p.rng.IntN(len(live))], p.membershipRequest())
	}
	if p.now-p.lastReconnect >= uint64(p.cfg.ReconnectInterval) {
		p.lastReconnect = p.now
		var dead []identity.PKIID
		for id, m := range p.members {
			if m.dead {
				dead = append(dead, id)
			}
		}
		if len(dead) > 0 {
			sortIDs(dead)
			p.send(dead[p.rng.IntN(len(dead))], p.membershipRequest())
		}
	}
}

func (p *Peer) expireMembers() {
	var died, stale []identity.PKIID
	for id, m := range p.members {
		switch {
		case !m.dead && p.now-m.lastHeard > uint64(p.cfg.Expiration):
			m.dead, m.deadSince = true, p.now
			died = append(died, id)
		case !m.dead && p.now-m.lastHeard > 3*uint64(p.cfg.AliveInterval):
			stale = append(stale, id)
		case m.dead && p.now-m.deadSince > uint64(p.cfg.PurgeAfter):
			delete(p.members, id) // already out of the live sets
		}
	}
	sortIDs(died) // map order is random: keep the live sets' order deterministic
	for _, id := range died {
		p.syncLive(id)
		p.tracer.MemberDead(id)
	}
	p.askStale(stale)
}

// askStale asks live members we have not heard of for three alive rounds
// for their news, each the member itself. Relay neighbours form a
// directed graph that rotates: now and then a peer has no path from some
// member for rounds on end (silences of up to 92 ticks in the 20-100 peer
// harness, against an Expiration of 100), and the anti-entropy sync comes
// only every SyncInterval. A live member answers with its own news (at
// most 70 ticks of silence in the same runs); a crashed one does not, and
// expires on time. Two rounds gave 50 ticks at most, but in 100-peer bench
// runs on a saturated host news often runs that late: ~6 asks per peer in
// a 6 s timed part, each a new stream (a TLS handshake at both ends); at
// three, 1-2. Asking a relay neighbour instead (no new stream) left
// silences of 69 ticks at two rounds: it had often missed the same news.
// wantAlive asks a member at most once per AliveInterval. More than
// AliveNeighbours silent at once is not a hole in the graph but our own
// loss of touch, or several crashes together: one anti-entropy sync with a
// member not among them answers for all, and dials none of the crashed
// (asking each would open a stream to each, every round). Only with relay
// neighbours: random relays and bounded views have no such holes.
func (p *Peer) askStale(stale []identity.PKIID) {
	if len(stale) == 0 || p.cfg.AliveNeighbours == 0 || p.cfg.AliveBatch == 0 || p.cfg.MaxView > 0 {
		return
	}
	sortIDs(stale) // map order is random: keep the requests' order deterministic
	if len(stale) <= p.cfg.AliveNeighbours {
		for _, id := range stale {
			p.wantAlive(id, id)
		}
		return
	}
	if p.lastSync == p.now {
		return
	}
	silent := make(map[identity.PKIID]bool, len(stale))
	for _, id := range stale {
		silent[id] = true
	}
	heard := slices.DeleteFunc(slices.Clone(p.LivePeers()), func(id identity.PKIID) bool { return silent[id] })
	if len(heard) == 0 {
		return // nobody to ask: expiry decides
	}
	p.lastSync = p.now
	p.send(heard[p.rng.IntN(len(heard))], p.membershipRequest())
}

// handleAlive processes a signed alive message (received directly or
// relayed, or inside a membership message). relay says whether a new one
// is passed on to AliveFanout random peers.
func (p *Peer) handleAlive(from identity.PKIID, env *pb.Envelope, a *pb.AliveMessage, relay bool) {
	p.handleAliveAged(from, env, a, relay, 0, nil)
}

// handleAliveAged is handleAlive for an alive that was already silence
// ticks old (a membership response says how long the responder had not
// heard of the member), with the member's certificate cert if the alive
// omits it and the response carries it.
func (p *Peer) handleAliveAged(from identity.PKIID, env *pb.Envelope, a *pb.AliveMessage, relay bool, silence uint64, cert []byte) {
	id, err := identity.PKIIDFromBytes(a.GetMember().GetPkiId())
	if err != nil {
		p.tracer.MessageRejected(from, fmt.Errorf("%w: alive: %v", ErrMalformed, err))
		return
	}
	if id == p.self.ID || p.isBanned(id) {
		return
	}
	m := p.members[id]
	if m != nil && !newer(a.GetIncarnation(), a.GetSequence(), m.inc, m.seq) {
		return // replayed or older: changes nothing
	}
	info := a.GetMember()
	if a.GetCertificateOmitted() {
		if len(cert) == 0 && m != nil {
			cert = m.info.GetCertificate()
		}
		if len(cert) == 0 {
			if m != nil || p.cfg.MaxView == 0 || len(p.members) < p.cfg.MaxView {
				p.wantAlive(from, id) // from verified it: it holds the certificate
			}
			return
		}
		info = &pb.Member{PkiId: info.GetPkiId(), Endpoint: info.GetEndpoint(), Org: info.GetOrg(), Certificate: cert}
	}
	if err := p.crypto.Verify(info, env.GetPayload(), env.GetSignature()); err != nil {
		p.tracer.MessageRejected(from, fmt.Errorf("%w: alive of %v: %v", ErrBadSignature, id, err))
		return
	}
	if m == nil && p.cfg.MaxView > 0 && len(p.members) >= p.cfg.MaxView {
		return // the view is full: known members only
	}
	isNew := m == nil
	if isNew {
		if silence > uint64(p.cfg.Expiration) {
			return // news too old to admit anyone on
		}
		m = &member{id: id, dead: true, lastHeard: p.now - min(silence, p.now)}
		p.members[id] = m
	}
	if m.height != a.GetLedgerHeight() {
		p.heightsChanged = true
	}
	restarted := !isNew && a.GetIncarnation() > m.inc
	m.info, m.inc, m.seq, m.height = info, a.GetIncarnation(), a.GetSequence(), a.GetLedgerHeight()
	m.env, m.certOmitted, m.hb, m.chain = env, a.GetCertificateOmitted(), nil, memberChain{}
	if e := a.GetChainElement(); len(e) == chainElemLen && a.GetChainEnd() >= a.GetSequence() {
		m.chain = memberChain{ok: true, seq: a.GetSequence(), end: a.GetChainEnd()}
		copy(m.chain.elem[:], e)
	}
	if isNew {
		m.dead = false
		p.syncLive(id)
		p.tracer.MemberAlive(id, m.inc, false)
		p.out.Reachable = append(p.out.Reachable, id) // purged and back, perhaps
	} else {
		p.heard(m, silence)
	}
	if restarted {
		p.heardFrom(id) // its process is back: so is its tree link (LinkDown)
		p.out.Reachable = append(p.out.Reachable, id)
	}
	if relay && p.cfg.MaxView == 0 {
		p.relay(from, id, env, nil)
	}
}

func newer(inc, seq, oldInc, oldSeq uint64) bool {
	return inc > oldInc || (inc == oldInc && seq > oldSeq)
}

func (p *Peer) handleMembershipRequest(from identity.PKIID, req *pb.MembershipRequest) {
	if len(req.GetWant()) > 0 {
		p.answerWant(from, req.GetWant())
		return
	}
	if sa := req.GetSelfAlive(); sa != nil {
		if a, ok := p.decodeAlive(from, sa); ok {
			p.handleAlive(from, sa, a, true)
		}
	}
	resp := &pb.MembershipResponse{}
	p.listSelf(resp)
	ids := make([]identity.PKIID, 0, len(p.members))
	for id := range p.members {
		ids = append(ids, id)
	}
	sortIDs(ids)
	for _, id := range ids {
		m := p.members[id]
		switch {
		case id == from:
		case m.dead:
			if len(resp.Dead) < p.cfg.MaxResponseMembers {
				resp.Dead = append(resp.Dead, id.Bytes())
			}
		case len(resp.Alive) < p.cfg.MaxResponseMembers:
			p.listMember(resp, m)
		}
	}
	p.send(from, envelope(&pb.GossipMessage{Content: &pb.GossipMessage_MembershipResponse{MembershipResponse: resp}}))
}

// handleMembershipResponse takes in the alives and heartbeats of a
// membership response, each as old as the responder says (silence): news
// of a crashed member heard late does not restart its expiry clock.
func (p *Peer) handleMembershipResponse(from identity.PKIID, resp *pb.MembershipResponse) {
	silence := make(map[identity.PKIID]uint64, len(resp.GetAlive()))
	for i, env := range resp.GetAlive() {
		a, ok := p.decodeAlive(from, env)
		if !ok {
			continue
		}
		var s uint64
		if i < len(resp.GetSilence()) {
			s = uint64(resp.GetSilence()[i])
		}
		var cert []byte
		if i < len(resp.GetCertificates()) {
			cert = resp.GetCertificates()[i]
		}
		if id, err := identity.PKIIDFromBytes(a.GetMember().GetPkiId()); err == nil {
			silence[id] = s
		}
		// Not relayed: a joining peer would otherwise flood the
		// network with alives everybody already has.
		p.handleAliveAged(from, env, a, false, s, cert)
	}
	for _, hb := range resp.GetHeartbeats() {
		id, err := identity.PKIIDFromBytes(hb.GetPkiId())
		if err != nil {
			p.tracer.MessageRejected(from, fmt.Errorf("%w: heartbeat: %v", ErrMalformed, err))
			continue
		}
		s, listed := silence[id]
		if !listed {
			continue // a heartbeat is only as old as its member's listed silence says
		}
		p.handleHeartbeat(from, nil, hb, false, s)
	}
	// resp.Dead is advisory only: our own expiry decides who is dead.
}

// decodeAlive unpacks an envelope that must hold an alive message.
func (p *Peer) decodeAlive(from identity.PKIID, env *pb.Envelope) (*pb.AliveMessage, bool) {
	msg := new(pb.GossipMessage)
	if err := unmarshal(env.GetPayload(), msg); err != nil || msg.GetAlive() == nil {
		p.tracer.MessageRejected(from, fmt.Errorf("%w: expected an alive message", ErrMalformed))
		return nil, false
	}
	return msg.GetAlive(), true
}

// orgOf returns a member's org, or "" if unknown.
func (p *Peer) orgOf(id identity.PKIID) string {
	if m := p.members[id]; m != nil {
		return m.info.GetOrg()
	}
	return ""
}
