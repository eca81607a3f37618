package gossip

import (
	"crypto/hmac"
	"crypto/sha256"
	"errors"
	"slices"
	"testing"

	"google.golang.org/protobuf/proto"

	"github.com/blockgossip/blockgossip/identity"
	pb "github.com/blockgossip/blockgossip/protos"
)

// countingCrypto signs with an HMAC keyed by the signer's PKI-ID (a cheap
// stand-in for ed25519 that another member's key cannot reproduce in these
// tests) and counts the signatures and verifications that membership makes
// (of alive messages and heartbeat chains' secrets; leadership messages are
// election's), shared by all the peers of a net.
type countingCrypto struct {
	self identity.PKIID
	c    *cryptoCount
}

type cryptoCount struct{ signs, verifies int }

// membershipPayload says whether payload is an alive message or a chain's
// secret (which starts with a 0 byte).
func membershipPayload(payload []byte) bool {
	if len(payload) > 0 && payload[0] == 0 {
		return true
	}
	msg := new(pb.GossipMessage)
	return proto.Unmarshal(payload, msg) == nil && msg.GetAlive() != nil
}

var errMACMismatch = errors.New("signature does not match the member's key")

func memberMAC(id identity.PKIID, payload []byte) []byte {
	h := hmac.New(sha256.New, append([]byte("key of "), id[:]...))
	h.Write(payload)
	return h.Sum(nil)
}

func (c countingCrypto) Sign(payload []byte) []byte {
	if membershipPayload(payload) {
		c.c.signs++
	}
	return memberMAC(c.self, payload)
}

func (c countingCrypto) Verify(m *pb.Member, payload, sig []byte) error {
	if membershipPayload(payload) {
		c.c.verifies++
	}
	id, err := identity.PKIIDFromBytes(m.GetPkiId())
	if err != nil {
		return err
	}
	if string(m.GetCertificate()) != string(certOf(id)) {
		return errCertMismatch
	}
	if !hmac.Equal(memberMAC(id, payload), sig) {
		return errMACMismatch
	}
	return nil
}

var errCertMismatch = errors.New("no certificate, or not the member's")

// certOf is the stand-in certificate of id: countingCrypto verifies only
// with it.
func certOf(id identity.PKIID) []byte { return append([]byte("certificate of "), id[:]...) }

// rejTracer adds MessageRejected to the harness's recTracer.
type rejTracer struct {
	*recTracer
	rejected []error
}

func (r *rejTracer) MessageRejected(_ identity.PKIID, err error) {
	r.rejected = append(r.rejected, err)
}

// hbNet is a harness net whose peers sign and verify with countingCrypto.
type hbNet struct {
	*simNet
	cfg   Config
	count *cryptoCount
	rej   map[int]*rejTracer
}

// arm gives sp the counting crypto and rejection tracer (before it sends
// anything).
func (n *hbNet) arm(sp *simPeer) {
	sp.p.crypto = countingCrypto{self: sp.p.self.ID, c: n.count}
	sp.p.self.Cert = certOf(sp.p.self.ID)
	rt := &rejTracer{recTracer: sp.tr}
	sp.p.tracer = rt
	n.rej[sp.idx] = rt
}

// steadyHBNet returns n converged peers past their signed start-up rounds,
// with the crypto counters at zero.
func steadyHBNet(t *testing.T, n int, cfg Config, seed uint64) *hbNet {
	t.Helper()
	net := &hbNet{simNet: newNet(t, n, cfg, seed), cfg: cfg, count: &cryptoCount{}, rej: map[int]*rejTracer{}}
	for _, sp := range net.peers {
		net.arm(sp)
	}
	net.bootstrapAll()
	for net.now < 200 && !net.converged() {
		net.tick()
	}
	if !net.converged() {
		t.Fatalf("membership not converged after %d ticks", net.now)
	}
	// Half a round more: the latest round's news, relayed a hop per tick
	// (AliveBatch), has reached everybody.
	net.ticks((signedRounds+1)*cfg.AliveInterval + cfg.AliveInterval/2)
	if !net.converged() {
		t.Fatal("membership lost members while warming up")
	}
	*net.count = cryptoCount{}
	return net
}

func (n *hbNet) rejections(i int, target error) int {
	k := 0
	for _, err := range n.rej[i].rejected {
		if errors.Is(err, target) {
			k++
		}
	}
	return k
}

// membershipItems returns the alives and heartbeats env carries, alone or
// in a MembershipBatch (not those of membership responses).
func membershipItems(t testing.TB, env *pb.Envelope) ([]*pb.AliveMessage, []*pb.Heartbeat) {
	t.Helper()
	msg := new(pb.GossipMessage)
	if proto.Unmarshal(env.GetPayload(), msg) != nil {
		t.Fatal("undecodable envelope")
	}
	var alives []*pb.AliveMessage
	decodeAlive := func(e *pb.Envelope) {
		m := new(pb.GossipMessage)
		if proto.Unmarshal(e.GetPayload(), m) != nil || m.GetAlive() == nil {
			t.Fatal("a batch holds something else than an alive")
		}
		alives = append(alives, m.GetAlive())
	}
	switch {
	case msg.GetAlive() != nil:
		return []*pb.AliveMessage{msg.GetAlive()}, nil
	case msg.GetHeartbeat() != nil:
		return nil, []*pb.Heartbeat{msg.GetHeartbeat()}
	case msg.GetMembershipBatch() != nil:
		for _, e := range msg.GetMembershipBatch().GetAlives() {
			decodeAlive(e)
		}
		return alives, msg.GetMembershipBatch().GetHeartbeats()
	}
	return nil, nil
}

func hbEnvelope(hb *pb.Heartbeat) *pb.Envelope {
	return envelope(&pb.GossipMessage{Content: &pb.GossipMessage_Heartbeat{Heartbeat: hb}})
}

// Steady state: heartbeats alone keep every member alive, with no signature
// made or checked and no certificate on the wire.
func TestHeartbeatsKeepMembersAliveWithoutSignatures(t *testing.T) {
	cfg := DefaultConfig()
	cfg.PullEnabled = false
	net := steadyHBNet(t, 20, cfg, 31)
	heartbeats, signed, maxSize := 0, 0, 0
	net.filter = func(m simMsg) bool {
		alives, hbs := membershipItems(t, m.env)
		heartbeats += len(hbs)
		signed += len(alives)
		for _, hb := range hbs {
			maxSize = max(maxSize, proto.Size(hb))
		}
		return true
	}
	rounds := 3 * cfg.Expiration / cfg.AliveInterval // three expiry periods
	net.ticks(rounds * cfg.AliveInterval)
	if !net.converged() {
		t.Fatal("members lost on heartbeats alone")
	}
	for _, sp := range net.peers {
		if len(sp.tr.dead) != 0 || len(net.rej[sp.idx].rejected) != 0 {
			t.Fatalf("peer %d: dead events %v, rejections %v", sp.idx, sp.tr.dead, net.rej[sp.idx].rejected)
		}
	}
	if net.count.verifies != 0 || net.count.signs != 0 || signed != 0 {
		t.Fatalf("steady state: %d verifications, %d signatures, %d signed alives; want none", net.count.verifies, net.count.signs, signed)
	}
	// Every peer's heartbeat reaches every other each round, relayed once
	// by each to AliveFanout peers.
	if min := rounds * 20 * 19; heartbeats < min {
		t.Fatalf("%d heartbeats in %d rounds, want at least %d", heartbeats, rounds, min)
	}
	if maxSize > 90 {
		t.Fatalf("a heartbeat of %d bytes: no certificate or signature should be in it", maxSize)
	}
	t.Logf("%d rounds of 20 peers: %d heartbeats of at most %d bytes, 0 signatures", rounds, heartbeats, maxSize)
}

// A heartbeat with a wrong element, a replayed one, and fabricated ones
// relayed by a member for a crashed peer change nothing: the crashed peer
// dies on time, and a forged new incarnation does not bring it back.
func TestForgedHeartbeatsDoNotRefreshLiveness(t *testing.T) {
	cfg := DefaultConfig()
	cfg.PullEnabled = false
	net := steadyHBNet(t, 6, cfg, 32)
	p0, victim, attacker := net.peers[0], net.peers[1], net.peers[2]
	vid, aid := victim.p.self.ID, attacker.p.self.ID
	m := p0.p.members[vid]
	seq, heard := m.seq, m.lastHeard
	check := func(what string) {
		t.Helper()
		if m.seq != seq || m.lastHeard != heard {
			t.Fatalf("%s moved the victim from seq %d heard %d to seq %d heard %d", what, seq, heard, m.seq, m.lastHeard)
		}
		if msgs := p0.p.Ready().Messages; len(msgs) != 0 {
			t.Fatalf("%s was relayed or answered (%d messages)", what, len(msgs))
		}
	}

	// A wrong element for the next sequence.
	junk := make([]byte, chainElemLen)
	p0.p.Step(aid, "org1", hbEnvelope(&pb.Heartbeat{PkiId: vid[:], Incarnation: m.inc, Sequence: seq + 1, Element: junk}), 0)
	check("a wrong element")
	// The element we hold, hashed once more (the previous one), claimed as
	// the next.
	prev := chainHash(m.chain.elem)
	p0.p.Step(aid, "org1", hbEnvelope(&pb.Heartbeat{PkiId: vid[:], Incarnation: m.inc, Sequence: seq + 1, Element: prev[:]}), 0)
	check("the previous element")
	if got := net.rejections(0, ErrBadHeartbeat); got != 2 {
		t.Fatalf("%d heartbeats rejected as bad, want 2", got)
	}
	// A replay of the victim's latest genuine heartbeat, a little later.
	last := victim.p.selfHB
	if last == nil || last.GetSequence() != seq {
		t.Fatalf("victim's latest heartbeat %v, want sequence %d", last, seq)
	}
	p0.p.Tick()
	net.collect(p0) // the tick's own news and relays
	p0.p.Step(aid, "org1", hbEnvelope(last), 0)
	check("a replayed heartbeat")

	// The victim crashes; the attacker keeps replaying its last heartbeat
	// and making up the next ones, to everybody, every tick.
	victim.down = true
	crashedAt := net.now
	for net.now < crashedAt+cfg.Expiration+cfg.Expiration/10 {
		for _, sp := range net.peers {
			if sp.down || sp == attacker {
				continue
			}
			mm := sp.p.members[vid]
			if mm == nil {
				continue
			}
			next := chainHash(mm.chain.elem)
			for _, hb := range []*pb.Heartbeat{
				last,
				{PkiId: vid[:], Incarnation: mm.inc, Sequence: mm.seq + 1, Element: junk},
				{PkiId: vid[:], Incarnation: mm.inc, Sequence: mm.seq + 2, Element: next[:]},
			} {
				sp.p.Step(aid, "org1", hbEnvelope(hb), 0)
				net.collect(sp)
			}
		}
		net.tick()
	}
	for _, sp := range net.peers {
		if sp.down || sp == attacker {
			continue
		}
		if sp.tr.dead[vid] != 1 || sp.p.IsAlive(vid) {
			t.Fatalf("peer %d: victim dead events %d, alive %v, %d ticks after its crash", sp.idx, sp.tr.dead[vid], sp.p.IsAlive(vid), net.now-crashedAt)
		}
		if net.rejections(sp.idx, ErrBadHeartbeat) == 0 {
			t.Fatalf("peer %d rejected none of the fabricated heartbeats", sp.idx)
		}
	}

	// A new incarnation: a heartbeat for it makes p0 ask for the signed
	// alive (from whoever sent it) but readmits nobody; a signed alive the
	// attacker made is rejected.
	m = p0.p.members[vid]
	p0.p.Step(aid, "org1", hbEnvelope(&pb.Heartbeat{PkiId: vid[:], Incarnation: m.inc + 1, Sequence: 1, Element: junk}), 0)
	forged := envelope(&pb.GossipMessage{Content: &pb.GossipMessage_Alive{Alive: &pb.AliveMessage{
		Member:      &pb.Member{PkiId: vid[:], Endpoint: victim.p.self.Endpoint, Org: "org1"},
		Incarnation: m.inc + 1, Sequence: 1, ChainElement: junk, ChainEnd: 100,
	}}})
	forged.Signature = memberMAC(aid, forged.Payload)
	p0.p.Step(aid, "org1", forged, 0)
	if p0.p.IsAlive(vid) || net.rejections(0, ErrBadSignature) != 1 {
		t.Fatalf("forged incarnation: alive %v, bad signatures %d", p0.p.IsAlive(vid), net.rejections(0, ErrBadSignature))
	}
	p0.p.Tick()
	var asked bool
	for _, o := range p0.p.Ready().Messages {
		msg := new(pb.GossipMessage)
		_ = proto.Unmarshal(o.Env.GetPayload(), msg)
		if w := msg.GetMembershipRequest().GetWant(); o.To.ID == aid && len(w) == 1 && string(w[0]) == string(vid[:]) {
			asked = true
		}
	}
	if !asked {
		t.Fatal("a heartbeat of an unknown incarnation did not make p0 ask its sender for the signed alive")
	}
}

// A crashed peer is declared dead by everyone within Expiration plus one
// expiry scan (and not before Expiration minus an alive interval); after a
// restart with a new incarnation it is readmitted and its heartbeats keep
// it alive.
func TestCrashAndRestartWithHeartbeats(t *testing.T) {
	cfg := DefaultConfig()
	cfg.PullEnabled = false
	net := steadyHBNet(t, 20, cfg, 33)
	const victim = 7
	vid := fakeID(victim)
	net.peers[victim].down = true
	crashedAt := net.now
	for net.now < crashedAt+cfg.Expiration+cfg.Expiration/10 {
		net.tick()
		for _, sp := range net.peers {
			if !sp.down && sp.tr.dead[vid] > 0 && net.now < crashedAt+cfg.Expiration-cfg.AliveInterval {
				t.Fatalf("peer %d declared the victim dead %d ticks after the crash", sp.idx, net.now-crashedAt)
			}
		}
	}
	for _, sp := range net.peers {
		if !sp.down && (sp.tr.dead[vid] != 1 || sp.p.IsAlive(vid)) {
			t.Fatalf("peer %d: victim dead events %d, alive %v", sp.idx, sp.tr.dead[vid], sp.p.IsAlive(vid))
		}
	}
	restarted := net.add(victim, "org1", cfg, 2)
	net.arm(restarted)
	restarted.p.AddBootstrap(peerOf(net.peers[0]))
	net.collect(restarted)
	net.deliver()
	restartAt := net.now
	for net.now < restartAt+3*cfg.AliveInterval && !net.converged() {
		net.tick()
	}
	if !net.converged() {
		t.Fatalf("restarted peer not readmitted by everyone within %d ticks", 3*cfg.AliveInterval)
	}
	net.ticks(2 * cfg.Expiration) // past its signed start-up rounds, on heartbeats
	if !net.converged() {
		t.Fatal("restarted peer not kept alive by its heartbeats")
	}
	for _, sp := range net.peers {
		if sp.idx != victim && (sp.tr.alive[vid] != 2 || sp.tr.dead[vid] != 1) {
			t.Fatalf("peer %d: victim incarnation %d, dead events %d", sp.idx, sp.tr.alive[vid], sp.tr.dead[vid])
		}
	}
}

// When a chain runs out the member signs a new alive anchoring the next
// one, and nobody misses a beat.
func TestHeartbeatChainExhaustionReanchors(t *testing.T) {
	cfg := DefaultConfig()
	cfg.PullEnabled = false
	cfg.HeartbeatChain = 4
	net := steadyHBNet(t, 8, cfg, 34)
	starts := make([]uint64, len(net.peers))
	for i, sp := range net.peers {
		starts[i] = sp.p.chain.start
	}
	const rounds = 25
	net.ticks(rounds*cfg.AliveInterval + 2) // +2: any want request answered
	if !net.converged() {
		t.Fatal("members lost across chain renewals")
	}
	for i, sp := range net.peers {
		if len(sp.tr.dead) != 0 || len(net.rej[i].rejected) != 0 {
			t.Fatalf("peer %d: dead events %v, rejections %v", i, sp.tr.dead, net.rej[i].rejected)
		}
		if renewals := (sp.p.chain.start - starts[i]) / uint64(cfg.HeartbeatChain+1); renewals < 4 {
			t.Fatalf("peer %d renewed its chain %d times in %d rounds of a %d-round chain", i, renewals, rounds, cfg.HeartbeatChain)
		}
		for id, m := range sp.p.members {
			// The current chain; the latest round or the one before
			// (a relay round can miss a peer: ~6% with fanout 3).
			// If that round renewed the chain, the previous chain.
			other := net.byID[id].p
			missedRenewal := m.seq+1 == other.seq && other.seq == other.chain.start
			if (m.chain.end != other.chain.end && !missedRenewal) || m.seq+1 < other.seq {
				t.Fatalf("peer %d holds chain end %d seq %d of %d, which is at end %d seq %d", i, m.chain.end, m.seq, net.byID[id].idx, other.chain.end, other.seq)
			}
		}
	}
	// One signed alive per renewal: a chain of K heartbeats costs each
	// member one signature (and one for the chain's secret), each receiver
	// one verification.
	perPeer := float64(net.count.signs) / float64(len(net.peers))
	if want := 2 * float64(rounds) / float64(cfg.HeartbeatChain+1); perPeer > want+2 {
		t.Fatalf("%.1f signatures per peer in %d rounds, want about %.1f", perPeer, rounds, want)
	}
}

// A member's height is believed from its own heartbeat, not from a relayed
// copy; signed alives carry it to everyone within HeightInterval.
func TestHeartbeatHeightTrustedOnlyFromItsMember(t *testing.T) {
	cfg := DefaultConfig()
	cfg.PullEnabled = false
	net := steadyHBNet(t, 4, cfg, 35)
	p0, p1, p2 := net.peers[0], net.peers[1], net.peers[2]
	id1 := p1.p.self.ID
	m := p0.p.members[id1]
	next := func() *pb.Heartbeat {
		s := m.seq + 1
		e := p1.p.chain.element(s)
		return &pb.Heartbeat{PkiId: id1[:], Incarnation: m.inc, Sequence: s, Element: e[:], LedgerHeight: 999}
	}
	p0.p.Step(p2.p.self.ID, "org1", hbEnvelope(next()), 0) // relayed, height altered on the way
	if m.height == 999 || m.seq != p1.p.seq+1 {
		t.Fatalf("relayed heartbeat: height %d (must not be believed), seq %d (must be accepted)", m.height, m.seq)
	}
	p0.p.Step(id1, "org1", hbEnvelope(next()), 0) // straight from the member
	if m.height != 999 {
		t.Fatalf("direct heartbeat's height not believed: %d", m.height)
	}

	// A block raises every height; signed alives spread it, without the
	// certificate every member already holds.
	n := steadyHBNet(t, 10, cfg, 36)
	withCert, without := 0, 0
	n.filter = func(m simMsg) bool {
		alives, _ := membershipItems(t, m.env)
		for _, a := range alives {
			if a.GetCertificateOmitted() && len(a.GetMember().GetCertificate()) == 0 {
				without++
			} else {
				withCert++
			}
		}
		return true
	}
	n.inject(0, makeChain(testOrderer, 1, 36)[0])
	start := n.now
	limit := cfg.HeightInterval + 2*cfg.AliveInterval
	for n.now < start+limit {
		n.tick()
	}
	for _, sp := range n.peers {
		for id, mm := range sp.p.members {
			if mm.height != 1 {
				t.Fatalf("peer %d sees %v at height %d %d ticks after the block", sp.idx, id, mm.height, limit)
			}
		}
	}
	if n.count.verifies == 0 || without == 0 || withCert != 0 {
		t.Fatalf("heights spread with %d verifications, %d alives without the certificate, %d with", n.count.verifies, without, withCert)
	}
	// A newcomer learns every member from one membership response,
	// certificates beside the alives that omit them.
	n.filter = nil
	joiner := n.add(10, "org1", cfg, 1)
	n.arm(joiner)
	joiner.p.AddBootstrap(peerOf(n.peers[0]))
	n.collect(joiner)
	n.deliver()
	if got := len(joiner.p.LivePeers()); got != 10 || len(n.rej[10].rejected) != 0 {
		t.Fatalf("newcomer knows %d members after bootstrapping (rejections %v), want 10", got, n.rej[10].rejected)
	}
	for id, mm := range joiner.p.members {
		if mm.height != 1 || string(mm.info.GetCertificate()) != string(certOf(id)) {
			t.Fatalf("newcomer holds %v at height %d with certificate %q", id, mm.height, mm.info.GetCertificate())
		}
	}
}

// News of a crashed member heard late, through a membership response, does
// not restart its expiry clock: it is as old as the responder says.
func TestLateNewsDoesNotRestartExpiry(t *testing.T) {
	cfg := DefaultConfig()
	cfg.PullEnabled = false
	net := steadyHBNet(t, 6, cfg, 37)
	p0, victim, p2 := net.peers[0], net.peers[1], net.peers[2]
	vid := victim.p.self.ID
	// p0 misses the victim's last round, and any sync meanwhile.
	net.filter = func(m simMsg) bool { // (a batch with it goes entirely)
		if m.to != p0.p.self.ID {
			return true
		}
		msg := new(pb.GossipMessage)
		if proto.Unmarshal(m.env.GetPayload(), msg) != nil || msg.GetMembershipResponse() != nil {
			return false
		}
		_, hbs := membershipItems(t, m.env)
		return !slices.ContainsFunc(hbs, func(hb *pb.Heartbeat) bool { return string(hb.GetPkiId()) == string(vid[:]) })
	}
	net.ticks(cfg.AliveInterval)
	net.filter = nil
	victim.down = true
	if p0.p.members[vid].seq == victim.p.seq {
		t.Fatal("fixture: p0 heard the victim's last heartbeat")
	}
	net.ticks(cfg.Expiration / 2)
	p0.p.send(p2.p.self.ID, p0.p.membershipRequest())
	net.collect(p0)
	net.deliver()
	m0, m2 := p0.p.members[vid], p2.p.members[vid]
	if m0.seq != victim.p.seq {
		t.Fatalf("p0 did not learn the victim's last heartbeat from the response (seq %d, want %d)", m0.seq, victim.p.seq)
	}
	if m0.lastHeard != m2.lastHeard {
		t.Fatalf("p0 dates the victim's last heartbeat at tick %d, p2 heard it at %d", m0.lastHeard, m2.lastHeard)
	}
}

// The membership want request answers with the named members only.
func TestWantRequestAnswersNamedMembers(t *testing.T) {
	cfg := DefaultConfig()
	cfg.PullEnabled = false
	net := steadyHBNet(t, 5, cfg, 38)
	p0 := net.peers[0]
	want := [][]byte{fakeID(3).Bytes(), fakeID(0).Bytes(), fakeID(999).Bytes()}
	p0.p.Step(fakeID(1), "org1", envelope(&pb.GossipMessage{Content: &pb.GossipMessage_MembershipRequest{
		MembershipRequest: &pb.MembershipRequest{Want: want}}}), 0)
	msgs := p0.p.Ready().Messages
	if len(msgs) != 1 || msgs[0].To.ID != fakeID(1) {
		t.Fatalf("%d answers", len(msgs))
	}
	msg := new(pb.GossipMessage)
	if err := proto.Unmarshal(msgs[0].Env.GetPayload(), msg); err != nil {
		t.Fatal(err)
	}
	resp := msg.GetMembershipResponse()
	if len(resp.GetAlive()) != 2 || len(resp.GetSilence()) != 2 || len(resp.GetHeartbeats()) != 2 {
		t.Fatalf("response: %d alives, %d silences, %d heartbeats; want 2 each (3 and the responder)",
			len(resp.GetAlive()), len(resp.GetSilence()), len(resp.GetHeartbeats()))
	}
}

func TestHeartbeatConfigValidate(t *testing.T) {
	for name, mut := range map[string]func(*Config){
		"negative chain": func(c *Config) { c.HeartbeatChain = -1 },
		"long chain":     func(c *Config) { c.HeartbeatChain = MaxHeartbeatChain + 1 },
		"height":         func(c *Config) { c.HeightInterval = -1 },
	} {
		c := DefaultConfig()
		mut(&c)
		if err := c.Validate(); !errors.Is(err, ErrInvalidConfig) {
			t.Errorf("%s: %v", name, err)
		}
	}
	if FabricConfig().HeartbeatChain != 0 {
		t.Error("FabricConfig must sign every alive, as Fabric does")
	}
}
