package gossip

import (
	"errors"
	"os"
	"path/filepath"
	"testing"
	"time"

	"github.com/blockgossip/blockgossip/identity"
	pb "github.com/blockgossip/blockgossip/protos"
)

func TestMsgStoreBoundsAndExpiry(t *testing.T) {
	s := newMsgStore(3, 10)
	k := func(n uint64) blockKey { return blockKey{number: n} }
	for n := range uint64(5) {
		s.add(k(n), n)
	}
	if s.len() != 3 || s.has(k(0)) || s.has(k(1)) || !s.has(k(4)) {
		t.Fatalf("size bound: len %d, has0 %v has4 %v", s.len(), s.has(k(0)), s.has(k(4)))
	}
	s.expire(12) // entries from ticks 2 and below are 10 ticks old
	if s.has(k(2)) || !s.has(k(3)) {
		t.Fatalf("expiry: has2 %v has3 %v", s.has(k(2)), s.has(k(3)))
	}
	s.expire(100)
	if s.len() != 0 {
		t.Fatalf("len %d after full expiry", s.len())
	}
	for n := range uint64(1000) { // the FIFO is compacted, not grown forever
		s.add(k(n), 200+n)
		s.expire(200 + n)
	}
	if len(s.fifo) > 200 {
		t.Fatalf("fifo holds %d slots for %d entries", len(s.fifo), s.len())
	}
}

func TestFileIncarnationGrowsAcrossRestartsAndClockSteps(t *testing.T) {
	path := filepath.Join(t.TempDir(), "incarnation")
	s := &FileIncarnationStore{Path: path}
	now := time.Unix(1_700_000_000, 0)
	a, err := s.Next(now)
	if err != nil || a != uint64(now.UnixNano()) {
		t.Fatalf("first: %d, %v", a, err)
	}
	// A restart with the clock stepped back an hour still grows.
	b, err := (&FileIncarnationStore{Path: path}).Next(now.Add(-time.Hour))
	if err != nil || b != a+1 {
		t.Fatalf("after clock step back: %d, want %d (%v)", b, a+1, err)
	}
	c, err := (&FileIncarnationStore{Path: path}).Next(now.Add(time.Hour))
	if err != nil || c != uint64(now.Add(time.Hour).UnixNano()) {
		t.Fatalf("after clock step forward: %d (%v)", c, err)
	}
	if err := os.WriteFile(path, []byte("garbage"), 0o600); err != nil {
		t.Fatal(err)
	}
	if _, err := s.Next(now); !errors.Is(err, ErrCorruptIncarnation) {
		t.Fatalf("corrupt file: %v", err)
	}
}

func TestConfigValidate(t *testing.T) {
	for name, c := range map[string]Config{"default": DefaultConfig(), "fabric": FabricConfig()} {
		if err := c.Validate(); err != nil {
			t.Errorf("%s: %v", name, err)
		}
	}
	f := FabricConfig()
	if f.Fanout != 3 || f.AliveInterval != 50 || f.Expiration != 250 || f.Pull.PullInterval != 40 ||
		f.Pull.PullPeers != 3 || f.Pull.DigestWindow != 10 {
		t.Errorf("FabricConfig is not Fabric's defaults: %+v", f)
	}
	for name, mut := range map[string]func(*Config){
		"fanout":   func(c *Config) { c.Fanout = 0 },
		"expiry":   func(c *Config) { c.Expiration = c.AliveInterval },
		"window":   func(c *Config) { c.ReorderWindow = 10 },
		"batch":    func(c *Config) { c.PushBatch = -1 },
		"pull":     func(c *Config) { c.Pull.PullInterval = 0 },
		"election": func(c *Config) { c.Election.ElectionDuration = 0 },
		"quorum":   func(c *Config) { c.GraftQuorum = -1 },
		"quorum8":  func(c *Config) { c.GraftQuorum = maxAnnouncers + 1 },
		"hedge":    func(c *Config) { c.GraftHedge = -1 },
		"hedge8":   func(c *Config) { c.GraftHedge = maxAnnouncers + 1 },
		"ack":      func(c *Config) { c.AckResend = -1 },
	} {
		c := DefaultConfig()
		mut(&c)
		if err := c.Validate(); err == nil {
			t.Errorf("%s: invalid config accepted", name)
		}
	}
}

func TestMSPCryptoRejectsForgedAlive(t *testing.T) {
	b, err := identity.NewBundle(identity.GenerateSpec{Orgs: 2, PeersPerOrg: 2})
	if err != nil {
		t.Fatal(err)
	}
	msp, err := b.MSP()
	if err != nil {
		t.Fatal(err)
	}
	alice, bob := b.Peers[0], b.Peers[1]
	c := NewMSPCrypto(alice, msp)
	member := &pb.Member{PkiId: bob.ID.Bytes(), Org: bob.Org, Certificate: bob.CertDER}
	payload := []byte("alive")
	if err := c.Verify(member, payload, bob.Sign(payload)); err != nil {
		t.Fatalf("genuine alive rejected: %v", err)
	}
	if err := c.Verify(member, payload, alice.Sign(payload)); !errors.Is(err, identity.ErrBadSignature) {
		t.Fatalf("alive signed by someone else: %v", err)
	}
	spoof := &pb.Member{PkiId: alice.ID.Bytes(), Org: bob.Org, Certificate: bob.CertDER}
	if err := c.Verify(spoof, payload, bob.Sign(payload)); !errors.Is(err, ErrMemberMismatch) {
		t.Fatalf("alive claiming another PKI-ID: %v", err)
	}
	otherOrg := &pb.Member{PkiId: bob.ID.Bytes(), Org: "org2", Certificate: bob.CertDER}
	if err := c.Verify(otherOrg, payload, bob.Sign(payload)); !errors.Is(err, ErrMemberMismatch) {
		t.Fatalf("alive claiming another org: %v", err)
	}
}

// A relayed alive whose signature does not verify is dropped, not relayed
// and admits no one.
func TestBadlySignedAliveIsNotRelayed(t *testing.T) {
	b, err := identity.NewBundle(identity.GenerateSpec{Orgs: 1, PeersPerOrg: 3})
	if err != nil {
		t.Fatal(err)
	}
	msp, err := b.MSP()
	if err != nil {
		t.Fatal(err)
	}
	net := newSimNet(t, 20)
	sp := net.add(0, b.Peers[0].Org, DefaultConfig(), 1)
	sp.p.crypto = NewMSPCrypto(b.Peers[0], msp)
	bob := b.Peers[1]
	alive := &pb.GossipMessage{Content: &pb.GossipMessage_Alive{Alive: &pb.AliveMessage{
		Member:      &pb.Member{PkiId: bob.ID.Bytes(), Org: bob.Org, Certificate: bob.CertDER},
		Incarnation: 1, Sequence: 1,
	}}}
	env := envelope(alive)
	env.Signature = b.Peers[2].Sign(env.Payload) // not bob's key
	sp.p.Step(b.Peers[2].ID, bob.Org, env, 0)
	if len(sp.p.Members()) != 0 || len(sp.p.Ready().Messages) != 0 {
		t.Fatal("forged alive admitted or relayed")
	}
	env.Signature = bob.Sign(env.Payload)
	sp.p.Step(b.Peers[2].ID, bob.Org, env, 0)
	if !sp.p.IsAlive(bob.ID) {
		t.Fatal("genuine relayed alive not admitted")
	}
}
