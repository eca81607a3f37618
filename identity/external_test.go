package identity_test

import (
	"crypto/x509"
	"errors"
	"fmt"
	"testing"
	"testing/synctest"
	"time"

	"github.com/blockgossip/blockgossip/identity"
	"github.com/blockgossip/blockgossip/ledger"
)

// OrdererVerifier must satisfy the ledger's seam without identity
// importing ledger.
var _ ledger.BlockVerifier = identity.OrdererVerifier{}

func TestOrdererVerifierWithLedger(t *testing.T) {
	b, err := identity.NewBundle(identity.GenerateSpec{Orgs: 1, PeersPerOrg: 1})
	if err != nil {
		t.Fatal(err)
	}
	v, err := b.Network.OrdererVerifier()
	if err != nil {
		t.Fatal(err)
	}
	blk := ledger.NewBlock(1, make([]byte, 32), [][]byte{[]byte("tx")}, 0)
	ledger.SignBlock(blk, b.Orderer.Sign)
	if _, err := ledger.VerifyBlock(blk, v); err != nil {
		t.Fatalf("orderer-signed block rejected: %v", err)
	}
	ledger.SignBlock(blk, b.Peers[0].Sign) // a peer posing as the orderer
	if _, err := ledger.VerifyBlock(blk, v); !errors.Is(err, ledger.ErrBadSignature) {
		t.Fatalf("peer-signed block: %v, want ledger.ErrBadSignature", err)
	}
}

// TestNewCAInsideSynctest shows identities minted with NewCA,
// CA.NewIdentity and NewBundle stay valid inside a testing/synctest bubble, whose clock
// starts at 2000-01-01, and expire when that fake clock passes NotAfter.
func TestNewCAInsideSynctest(t *testing.T) {
	ca, err := identity.NewCA("org1", 0)
	if err != nil {
		t.Fatal(err)
	}
	peer, err := ca.NewIdentity("org1-peer0", identity.RolePeer)
	if err != nil {
		t.Fatal(err)
	}
	short, err := ca.Issue("org1-peer1", identity.RolePeer, ca.Cert.NotBefore, time.Date(2000, 1, 1, 0, 1, 0, 0, time.UTC))
	if err != nil {
		t.Fatal(err)
	}
	b, err := identity.NewBundle(identity.GenerateSpec{Orgs: 1, PeersPerOrg: 1})
	if err != nil {
		t.Fatal(err)
	}
	synctest.Test(t, func(t *testing.T) {
		bm, err := b.MSP()
		if err != nil {
			t.Fatal(err)
		}
		if _, err := bm.Validate(b.Peers[0].CertDER); err != nil {
			t.Fatalf("bundle peer in bubble: %v", err)
		}
		m, err := identity.NewMSP(map[string]*x509.Certificate{"org1": ca.Cert})
		if err != nil {
			t.Fatal(err)
		}
		if _, err := m.Validate(peer.CertDER); err != nil {
			t.Fatalf("in bubble at %v: %v", time.Now(), err)
		}
		if _, err := m.Validate(short.CertDER); err != nil {
			t.Fatal(err)
		}
		time.Sleep(2 * time.Minute) // virtual time: the short cert's NotAfter passes
		if _, err := m.Validate(short.CertDER); !errors.Is(err, identity.ErrExpired) {
			t.Fatalf("after fake clock passed NotAfter: %v, want ErrExpired", err)
		}
	})
	// Outside the bubble, with the real clock, they are valid too.
	m, _ := identity.NewMSP(map[string]*x509.Certificate{"org1": ca.Cert})
	if _, err := m.Validate(peer.CertDER); err != nil {
		t.Fatal(err)
	}
}

// Making members in memory for a test: one CA per org, identities from it,
// an MSP trusting the CAs, and the TLS configs the transport uses.
func ExampleCA_NewIdentity() {
	ca1, _ := identity.NewCA("org1", 0)
	ca2, _ := identity.NewCA("org2", 0)
	alice, _ := ca1.NewIdentity("org1-peer0", identity.RolePeer)
	bob, _ := ca2.NewIdentity("org2-peer0", identity.RolePeer)
	msp, _ := identity.NewMSP(map[string]*x509.Certificate{"org1": ca1.Cert, "org2": ca2.Cert})

	_ = identity.ServerTLSConfig(alice, msp) // alice listens
	_ = identity.ClientTLSConfig(bob, msp)   // bob dials

	msg := []byte("hello")
	m, err := msp.VerifySignature(alice.CertDER, msg, alice.Sign(msg))
	fmt.Println(m.Name, m.Org, m.Role, err)
	_, err = msp.VerifySignature(bob.CertDER, msg, alice.Sign(msg))
	fmt.Println(errors.Is(err, identity.ErrBadSignature))
	// Output:
	// org1-peer0 org1 peer <nil>
	// true
}

func TestGenerateSpecValidate(t *testing.T) {
	if err := identity.DefaultGenerateSpec().Validate(); err != nil {
		t.Fatal(err)
	}
	for _, s := range []identity.GenerateSpec{
		{Orgs: 0, PeersPerOrg: 1}, {Orgs: 1, PeersPerOrg: 0},
		{Orgs: 1, PeersPerOrg: 1, Validity: -time.Hour}, {Orgs: 1, PeersPerOrg: 1, Hosts: []string{""}},
	} {
		if s.Validate() == nil {
			t.Errorf("%+v accepted", s)
		}
		if _, err := identity.NewBundle(s); err == nil {
			t.Errorf("NewBundle(%+v) accepted", s)
		}
	}
}
