package gossip

import (
	"bytes"
	"crypto/sha256"
	"encoding/binary"
	"errors"
	"fmt"

	"github.com/blockgossip/blockgossip/identity"
	pb "github.com/blockgossip/blockgossip/protos"
)

// Heartbeats: liveness without a signature per round.
//
// A signed alive commits to the element, for its own sequence number s0, of
// a fresh hash chain (S/KEY style): element(s) = H^(end-s)(secret) for
// s0 <= s <= end, with end = s0 + HeartbeatChain and H = SHA-256 cut to 16
// bytes. In every later alive round the member sends, instead of a new
// signed alive, a Heartbeat revealing element(s) for the round's sequence s.
// A receiver holding element(s') for an earlier s' of the same chain checks
// it by hashing s-s' times (a fraction of a microsecond each, against ~100
// us for an ed25519 verification) and keeps element(s) for the next one, so
// a few missed rounds cost a few more hashes. Nobody but the member knows
// the elements not revealed yet: a member cannot keep a crashed peer alive
// (it would need the next element) nor forge a new incarnation (that needs
// a signed alive); a replayed or older heartbeat changes nothing. When the
// chain runs out the member signs a new alive anchoring the next one.
//
// A receiver that hears a heartbeat it cannot check (unknown member, newer
// incarnation, a chain whose anchor it missed) asks the peer it came from
// for the member's signed alive (MembershipRequest.want), at most once per
// AliveInterval per member. A heartbeat is relayed only by peers that
// checked it, so a peer signs its first few alives (signedRounds) for a
// network that starts all at once to learn of it quickly.
//
// The ledger height is not bound by the chain. It travels authenticated in
// signed alives, which a member sends, besides at chain renewal, when its
// height changed and HeightInterval ticks passed since its last one: while
// blocks flow, one signature per member per HeightInterval instead of per
// AliveInterval; while the ledger is still, none. A heartbeat carries the
// height too, but a receiver believes it only when the heartbeat comes
// straight from the member over its own authenticated stream (a relay could
// alter it): in MaxView mode, where every heartbeat goes direct, heights are
// fresh every round. With full membership heights are therefore up to about
// HeightInterval + AliveInterval stale. That is safe: pull asks by height
// but learns what a peer holds from its digest and verifies every block,
// and a stale height only ever understates. It is not free: election's
// PreferUpToDate may take an up-to-date candidate for one more than MaxLag
// blocks behind until its next signed alive (its own leadership messages
// carry a fresh height, which their stream vouches for).
//
// Certificates: heartbeats carry none, and a signed alive that only
// refreshes the height leaves it out too (certificate_omitted): receivers
// verify it with the certificate they hold from the member's alive that
// started its chain. Membership responses carry the certificate beside any
// alive that omits it; a peer that holds none asks, like for an unknown
// chain.
//
// Old news: a membership response says how long the responder had not
// heard of each member it lists (silence), and news learnt from it is that
// old, so a crashed member's last heartbeat heard late does not restart its
// expiry clock, and second-hand news never readmits a dead member (the
// member's own alive or heartbeat does). A member that withholds another's
// genuine heartbeat and delivers it late can stretch that member's life at
// one receiver by at most the delay, never past the last element revealed.
//
// The chain's secret is derived from this peer's signature over a
// domain-separated message naming its PKI-ID, incarnation and the chain's
// first sequence: deterministic (no entropy source in the core) and as
// unguessable as the signing key. With NopCrypto it is guessable, like
// everything else there.

// chainElemLen is the size of a hash-chain element: 128 bits keep a
// preimage out of reach and save 16 bytes per heartbeat over full SHA-256.
const chainElemLen = 16

// MaxHeartbeatChain bounds Config.HeartbeatChain, and so the hashing a
// receiver does to check one heartbeat (about 0.3 ms at most, a few
// signature verifications' worth): a heartbeat further ahead of what a
// receiver holds is ignored.
const MaxHeartbeatChain = 1024

// ErrBadHeartbeat: a heartbeat whose element does not hash to the one we
// hold for its member: forged or corrupted. It is dropped, not relayed and
// does not refresh the member's liveness.
var ErrBadHeartbeat = errors.New("bad heartbeat chain element")

type chainElem [chainElemLen]byte

func chainHash(x chainElem) chainElem {
	sum := sha256.Sum256(x[:])
	var out chainElem
	copy(out[:], sum[:chainElemLen])
	return out
}

// hbChain is our own current hash chain: elems[s-start] is the element of
// sequence s, for start <= s <= end.
type hbChain struct {
	start, end uint64
	elems      []chainElem
}

func (c *hbChain) element(seq uint64) chainElem { return c.elems[seq-c.start] }

// newChain builds the chain whose first sequence is start.
func (p *Peer) newChain(start uint64) *hbChain {
	k := uint64(p.cfg.HeartbeatChain)
	msg := []byte{0} // a marshalled GossipMessage never starts with 0: this signature is of nothing else
	msg = append(msg, "blockgossip heartbeat chain v1"...)
	msg = append(msg, p.self.ID[:]...)
	msg = binary.BigEndian.AppendUint64(msg, p.self.Incarnation)
	msg = binary.BigEndian.AppendUint64(msg, start)
	seed := sha256.Sum256(append(msg, p.crypto.Sign(msg)...))
	c := &hbChain{start: start, end: start + k, elems: make([]chainElem, k+1)}
	copy(c.elems[k][:], seed[:chainElemLen])
	c.elems[k] = chainHash(c.elems[k]) // never reveal the secret itself
	for i := int(k) - 1; i >= 0; i-- {
		c.elems[i] = chainHash(c.elems[i+1])
	}
	return c
}

// memberChain is what a receiver holds of a member's chain: the element of
// sequence seq (the latest verified) and the chain's last sequence.
type memberChain struct {
	ok       bool
	seq, end uint64
	elem     chainElem
}

// heartbeatEnvelope returns the heartbeat of sequence p.seq (within the
// current chain).
func (p *Peer) heartbeatEnvelope() *pb.Envelope {
	e := p.chain.element(p.seq)
	p.selfHB = &pb.Heartbeat{
		PkiId: p.self.ID.Bytes(), Incarnation: p.self.Incarnation,
		Sequence: p.seq, Element: e[:], LedgerHeight: p.height,
	}
	return envelope(&pb.GossipMessage{Content: &pb.GossipMessage_Heartbeat{Heartbeat: p.selfHB}})
}

// signedRounds is how many alive rounds a peer signs after it starts: a
// heartbeat is relayed only by peers that know its member already, so while
// a whole network starts at once self-contained signed alives spread
// membership faster (and the want requests of heartbeat.go heal the rest).
const signedRounds = 3

// needSignedAlive says whether this round's alive must be signed: always
// without heartbeats, for the first signedRounds, at chain renewal, and
// when the height changed and HeightInterval ticks passed since the last
// signed one.
func (p *Peer) needSignedAlive() bool {
	return p.cfg.HeartbeatChain == 0 || p.selfAlive == nil || p.chain == nil || p.seq > p.chain.end || p.seq <= signedRounds ||
		(p.height != p.signedHeight && p.now-p.lastSigned >= uint64(p.cfg.HeightInterval))
}

// handleHeartbeat checks a heartbeat against the member's chain and, if it
// is new and genuine, refreshes the member (heard silence ticks ago, as
// told by a membership response; 0 otherwise) and, if relay, relays it
// (env is its envelope when it came alone, else nil).
func (p *Peer) handleHeartbeat(from identity.PKIID, env *pb.Envelope, hb *pb.Heartbeat, relay bool, silence uint64) {
	id, err := identity.PKIIDFromBytes(hb.GetPkiId())
	if err != nil || len(hb.GetElement()) != chainElemLen {
		p.tracer.MessageRejected(from, fmt.Errorf("%w: heartbeat: pki-id of %d bytes, element of %d (want %d)",
			ErrMalformed, len(hb.GetPkiId()), len(hb.GetElement()), chainElemLen))
		return
	}
	if id == p.self.ID || p.isBanned(id) {
		return
	}
	m := p.members[id]
	seq := hb.GetSequence()
	switch {
	case m == nil:
		if p.cfg.MaxView == 0 || len(p.members) < p.cfg.MaxView {
			p.wantAlive(from, id)
		}
		return
	case hb.GetIncarnation() < m.inc, hb.GetIncarnation() == m.inc && seq <= m.seq:
		return // old news
	case hb.GetIncarnation() > m.inc, !m.chain.ok, seq > m.chain.end, seq-m.chain.seq > MaxHeartbeatChain:
		p.wantAlive(from, id) // a chain we do not hold the anchor of
		return
	}
	var x chainElem
	copy(x[:], hb.GetElement())
	elem := x
	for range seq - m.chain.seq {
		x = chainHash(x)
	}
	if !bytes.Equal(x[:], m.chain.elem[:]) {
		p.tracer.MessageRejected(from, fmt.Errorf("%w: member %v sequence %d", ErrBadHeartbeat, id, seq))
		return
	}
	m.seq, m.chain.seq, m.chain.elem, m.hb = seq, seq, elem, hb
	if from == id && m.height != hb.GetLedgerHeight() { // straight from the member: the stream vouches for the height
		m.height = hb.GetLedgerHeight()
		p.heightsChanged = true
	}
	p.heard(m, silence)
	if relay && p.cfg.MaxView == 0 {
		p.relay(from, id, env, hb)
	}
}

// wantAlive notes that we need id's signed alive (to check its heartbeats)
// and will ask from, which has it, at the next tick: at most once per
// AliveInterval per member.
func (p *Peer) wantAlive(from, id identity.PKIID) {
	if t, ok := p.wanted[id]; (ok && p.now-t < uint64(p.cfg.AliveInterval)) || len(p.wanted) >= p.cfg.MaxResponseMembers {
		return // asked lately, or too many asks out (a member making up members): the next heartbeat asks again
	}
	if p.wanted == nil {
		p.wanted = make(map[identity.PKIID]uint64)
		p.wants = make(map[identity.PKIID][]identity.PKIID)
	}
	p.wanted[id] = p.now
	p.wants[from] = append(p.wants[from], id)
}

// askWanted sends the membership requests wantAlive queued, one per peer
// asked, and forgets old wants.
func (p *Peer) askWanted() {
	if len(p.wants) > 0 {
		froms := make([]identity.PKIID, 0, len(p.wants))
		for from := range p.wants {
			froms = append(froms, from)
		}
		sortIDs(froms)
		for _, from := range froms {
			ids := p.wants[from]
			want := make([][]byte, len(ids))
			for i, id := range ids {
				want[i] = id.Bytes()
			}
			p.send(from, envelope(&pb.GossipMessage{Content: &pb.GossipMessage_MembershipRequest{
				MembershipRequest: &pb.MembershipRequest{Want: want}}}))
			delete(p.wants, from)
		}
	}
	for id, t := range p.wanted {
		if p.now-t >= uint64(p.cfg.AliveInterval) {
			delete(p.wanted, id)
		}
	}
}

// answerWant answers a membership request that wants given members only.
func (p *Peer) answerWant(from identity.PKIID, want [][]byte) {
	resp := &pb.MembershipResponse{}
	for _, b := range want {
		if len(resp.Alive) >= p.cfg.MaxResponseMembers {
			break
		}
		id, err := identity.PKIIDFromBytes(b)
		if err != nil {
			p.tracer.MessageRejected(from, fmt.Errorf("%w: membership request: %v", ErrMalformed, err))
			return
		}
		if id == p.self.ID {
			p.listSelf(resp)
		} else if m := p.members[id]; m != nil && !m.dead && !p.isBanned(id) {
			p.listMember(resp, m)
		}
	}
	if len(resp.Alive) > 0 {
		p.send(from, envelope(&pb.GossipMessage{Content: &pb.GossipMessage_MembershipResponse{MembershipResponse: resp}}))
	}
}

// listSelf adds our own signed alive, certificate and latest heartbeat to
// a membership response.
func (p *Peer) listSelf(resp *pb.MembershipResponse) {
	env := p.aliveEnvelope()
	var cert []byte
	if p.selfCertOmitted {
		cert = p.self.Cert
	}
	resp.Alive, resp.Silence, resp.Certificates = append(resp.Alive, env), append(resp.Silence, 0), append(resp.Certificates, cert)
	if p.selfHB != nil {
		resp.Heartbeats = append(resp.Heartbeats, p.selfHB)
	}
}

// listMember adds m's latest signed alive (with the certificate it omits),
// how long we have not heard of m, and m's latest heartbeat to a
// membership response.
func (p *Peer) listMember(resp *pb.MembershipResponse, m *member) {
	var cert []byte
	if m.certOmitted {
		cert = m.info.GetCertificate()
	}
	resp.Alive = append(resp.Alive, m.env)
	resp.Silence = append(resp.Silence, uint32(min(p.now-m.lastHeard, 1<<32-1)))
	resp.Certificates = append(resp.Certificates, cert)
	if m.hb != nil {
		resp.Heartbeats = append(resp.Heartbeats, m.hb)
	}
}

// heard records news of m that was silence ticks old, readmitting it if it
// was dead. Old news never moves its expiry clock back, nor forward past
// what it is worth: a crashed member's last alive heard late through a
// membership response does not give it a new Expiration.
func (p *Peer) heard(m *member, silence uint64) {
	at := p.now - min(silence, p.now)
	m.lastHeard = max(m.lastHeard, at)
	if m.dead {
		if silence > 0 || p.now-m.lastHeard > uint64(p.cfg.Expiration) {
			return // second-hand news does not bring the dead back: the member itself will
		}
		m.dead = false
		p.syncLive(m.id)
		p.tracer.MemberAlive(m.id, m.inc, true)
		p.out.Reachable = append(p.out.Reachable, m.id)
	}
}
