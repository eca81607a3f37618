package identity

import (
	"crypto/ed25519"
	"crypto/rand"
	"crypto/x509"
	"errors"
	"math/big"
	"sync"
	"testing"
	"time"
)

func TestValidateAcceptsMember(t *testing.T) {
	f := newFixture(t)
	m, err := f.msp.Validate(f.peer1.CertDER)
	if err != nil {
		t.Fatal(err)
	}
	if m.ID != f.peer1.ID || m.Org != "org1" || m.Role != RolePeer || m.Name != "org1-peer0" {
		t.Fatalf("member = %+v, want org1-peer0 peer of org1 with the identity's PKI-ID", m)
	}
	// Cached path gives the same answer, as a copy the caller may keep.
	m2, err := f.msp.ValidateCert(f.peer1.Cert)
	if err != nil || m2.ID != m.ID || m2 == m {
		t.Fatalf("second validation: %v, %p vs %p", err, m2, m)
	}
}

func TestValidateRejects(t *testing.T) {
	f := newFixture(t)
	foreign := mustIssue(t, mustCA(t, "org3"), "org3-peer0", RolePeer)
	// A CA that copies org1's subject but has its own key: same issuer
	// name, wrong signature.
	impostor := mustIssue(t, mustCA(t, "org1"), "org1-peer9", RolePeer)
	early, _ := f.ca1.Issue("early", RolePeer, t0.Add(time.Hour), t0.AddDate(0, 1, 0))
	late, _ := f.ca1.Issue("late", RolePeer, t0.AddDate(0, -1, 0), t0.Add(-time.Second))
	revoked := mustIssue(t, f.ca1, "revoked", RolePeer)
	f.msp.SetRevoked([]*big.Int{revoked.Cert.SerialNumber})

	for _, tc := range []struct {
		name string
		der  []byte
		want error
	}{
		{"unknown CA", foreign.CertDER, ErrUnknownCA},
		{"impostor CA with a trusted name", impostor.CertDER, ErrUnknownCA},
		{"not yet valid", early.CertDER, ErrNotYetValid},
		{"expired", late.CertDER, ErrExpired},
		{"revoked", revoked.CertDER, ErrRevoked},
		{"garbage", []byte("not a certificate"), ErrUnknownCA},
		{"empty", nil, ErrUnknownCA},
		{"CA certificate as a member", f.ca1.CertDER, ErrBadRole},
	} {
		t.Run(tc.name, func(t *testing.T) {
			if _, err := f.msp.Validate(tc.der); !errors.Is(err, tc.want) {
				t.Fatalf("Validate = %v, want %v", err, tc.want)
			}
		})
	}
}

func TestValidateChecksCAValidity(t *testing.T) {
	f := newFixture(t)
	// A member cert outliving its CA is rejected once the CA expires.
	long, err := f.ca1.Issue("long", RolePeer, t0, t0.AddDate(5, 0, 0))
	if err != nil {
		t.Fatal(err)
	}
	f.msp.SetClock(func() time.Time { return t0.AddDate(2, 0, 0) })
	if _, err := f.msp.Validate(long.CertDER); !errors.Is(err, ErrExpired) {
		t.Fatalf("Validate after CA expiry = %v, want ErrExpired", err)
	}
}

func TestValidateRejectsCrossOrgClaim(t *testing.T) {
	f := newFixture(t)
	// org1's CA signs a cert claiming to be in org2.
	pub, _, _ := ed25519.GenerateKey(rand.Reader)
	tmpl := *f.peer1.Cert
	tmpl.RawSubject = nil // else CreateCertificate reuses it
	tmpl.Subject.Organization = []string{"org2"}
	der, err := x509.CreateCertificate(rand.Reader, &tmpl, f.ca1.Cert, pub, f.ca1.Key)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := f.msp.Validate(der); !errors.Is(err, ErrUnknownCA) {
		t.Fatalf("Validate = %v, want ErrUnknownCA", err)
	}
}

func TestVerifySignature(t *testing.T) {
	f := newFixture(t)
	msg := []byte("block 7 digest")
	sig := f.peer1.Sign(msg)
	if m, err := f.msp.VerifySignature(f.peer1.CertDER, msg, sig); err != nil || m.ID != f.peer1.ID {
		t.Fatalf("VerifySignature = %v, %v", m, err)
	}
	if _, err := f.msp.VerifySignature(f.peer1.CertDER, []byte("block 8 digest"), sig); !errors.Is(err, ErrBadSignature) {
		t.Fatalf("other bytes: %v, want ErrBadSignature", err)
	}
	if _, err := f.msp.VerifySignature(f.peer2.CertDER, msg, sig); !errors.Is(err, ErrBadSignature) {
		t.Fatalf("other signer's cert: %v, want ErrBadSignature", err)
	}
	if _, err := f.msp.VerifySignature(f.peer1.CertDER, msg, sig[:10]); !errors.Is(err, ErrBadSignature) {
		t.Fatalf("truncated signature: %v, want ErrBadSignature", err)
	}
	f.msp.SetRevoked([]*big.Int{f.peer1.Cert.SerialNumber})
	if _, err := f.msp.VerifySignature(f.peer1.CertDER, msg, sig); !errors.Is(err, ErrRevoked) {
		t.Fatalf("after revocation: %v, want ErrRevoked", err)
	}
}

func TestRevocationReloadAndSubscribe(t *testing.T) {
	f := newFixture(t)
	if _, err := f.msp.Validate(f.peer1.CertDER); err != nil { // now cached
		t.Fatal(err)
	}
	var calls []string
	cancelA := f.msp.Subscribe(func() { calls = append(calls, "a") })
	cancelB := f.msp.Subscribe(func() {
		calls = append(calls, "b")
		// Subscribers re-check inside the callback and see the new list.
		if _, err := f.msp.Validate(f.peer1.CertDER); !errors.Is(err, ErrRevoked) {
			t.Errorf("re-check in callback = %v, want ErrRevoked", err)
		}
	})
	f.msp.SetRevoked([]*big.Int{f.peer1.Cert.SerialNumber})
	cancelA()
	cancelA() // idempotent
	f.msp.SetRevoked([]*big.Int{f.peer1.Cert.SerialNumber})
	if got := len(calls); got != 3 || calls[0] != "a" || calls[1] != "b" || calls[2] != "b" {
		t.Fatalf("calls = %v, want [a b b]", calls)
	}
	if !f.msp.IsRevoked(f.peer1.Cert.SerialNumber) {
		t.Fatal("IsRevoked = false")
	}
	cancelB()
	f.msp.SetRevoked(nil) // reload replaces, it does not add
	if _, err := f.msp.Validate(f.peer1.CertDER); err != nil {
		t.Fatalf("after un-revoking: %v", err)
	}
}

func TestNewMSPRejectsBadCAs(t *testing.T) {
	f := newFixture(t)
	for name, cas := range map[string]map[string]*x509.Certificate{
		"none":           {},
		"leaf as CA":     {"org1": f.peer1.Cert},
		"org name wrong": {"org9": f.ca1.Cert},
		"nil cert":       {"org1": nil},
	} {
		if _, err := NewMSP(cas); err == nil {
			t.Errorf("%s: NewMSP accepted it", name)
		}
	}
	if got := f.msp.Orgs(); len(got) != 2 || got[0] != "org1" || got[1] != "org2" {
		t.Fatalf("Orgs = %v", got)
	}
	if f.msp.CA("org2") != f.ca2.Cert || f.msp.CA("org9") != nil {
		t.Fatal("CA lookup wrong")
	}
}

// TestConcurrentUse is for -race: validation, revocation reloads and
// subscriptions from many goroutines at once.
func TestConcurrentUse(t *testing.T) {
	f := newFixture(t)
	msg := []byte("m")
	sig := f.peer2.Sign(msg)
	var wg sync.WaitGroup
	for i := range 4 {
		wg.Go(func() {
			for j := range 50 {
				if _, err := f.msp.VerifySignature(f.peer2.CertDER, msg, sig); err != nil {
					t.Error(err)
					return
				}
				if i == 0 && j%10 == 0 {
					cancel := f.msp.Subscribe(func() {})
					f.msp.SetRevoked([]*big.Int{big.NewInt(int64(j))})
					cancel()
				}
			}
		})
	}
	wg.Wait()
}
