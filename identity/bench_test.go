package identity

import (
	"crypto/ed25519"
	"testing"
)

// msg200 is a typical signed gossip payload size.
var msg200 = make([]byte, 200)

func BenchmarkSign(b *testing.B) {
	f := newFixture(b)
	for b.Loop() {
		f.peer1.Sign(msg200)
	}
}

func BenchmarkVerify(b *testing.B) {
	f := newFixture(b)
	pub, sig := f.peer1.PublicKey(), f.peer1.Sign(msg200)
	for b.Loop() {
		if !ed25519.Verify(pub, msg200, sig) {
			b.Fatal("verify failed")
		}
	}
}

// BenchmarkVerifySignature is the MSP path as gossip uses it: a member
// certificate seen before (chain check cached), validity and revocation
// checked, then the ed25519 verify.
func BenchmarkVerifySignature(b *testing.B) {
	f := newFixture(b)
	sig := f.peer1.Sign(msg200)
	for b.Loop() {
		if _, err := f.msp.VerifySignature(f.peer1.CertDER, msg200, sig); err != nil {
			b.Fatal(err)
		}
	}
}

// BenchmarkVerifySignatureCold is the first sight of a certificate: parse,
// chain signature check, then the ed25519 verify.
func BenchmarkVerifySignatureCold(b *testing.B) {
	f := newFixture(b)
	sig := f.peer1.Sign(msg200)
	for b.Loop() {
		f.msp.mu.Lock()
		clear(f.msp.checked)
		f.msp.mu.Unlock()
		if _, err := f.msp.VerifySignature(f.peer1.CertDER, msg200, sig); err != nil {
			b.Fatal(err)
		}
	}
}
