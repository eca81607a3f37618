package identity

import (
	"bytes"
	"errors"
	"math/rand/v2"
	"testing"
)

// validateOrReject checks the MSP's contract for arbitrary remote bytes:
// no panic, and either a member whose certificate is signed exactly as the
// original was, or an error wrapping one of the package's sentinels.
func validateOrReject(t *testing.T, f *fixture, der []byte) {
	t.Helper()
	m, err := f.msp.Validate(der)
	if err == nil {
		if !bytes.Equal(m.Cert.RawTBSCertificate, f.peer1.Cert.RawTBSCertificate) {
			t.Fatalf("accepted a certificate whose signed body differs from the original")
		}
		return
	}
	for _, s := range []error{ErrUnknownCA, ErrExpired, ErrNotYetValid, ErrRevoked, ErrNotEd25519, ErrBadRole} {
		if errors.Is(err, s) {
			return
		}
	}
	t.Fatalf("rejection %v wraps no sentinel", err)
}

// TestValidateMutatedCerts flips, truncates and extends a valid
// certificate's bytes (seeded, so reproducible).
func TestValidateMutatedCerts(t *testing.T) {
	f := newFixture(t)
	rng := rand.New(rand.NewPCG(1, 2))
	orig := f.peer1.CertDER
	for range 2000 {
		der := bytes.Clone(orig)
		switch rng.IntN(3) {
		case 0:
			for range 1 + rng.IntN(4) {
				der[rng.IntN(len(der))] ^= byte(1 + rng.IntN(255))
			}
		case 1:
			der = der[:rng.IntN(len(der))]
		case 2:
			der = append(der, byte(rng.IntN(256)))
		}
		validateOrReject(t, f, der)
	}
}

// FuzzValidate runs the same contract on fuzzer input (`go test -fuzz`);
// in a plain test run it covers the seeds only.
func FuzzValidate(fz *testing.F) {
	f := newFixture(fz)
	fz.Add(f.peer1.CertDER)
	fz.Add(f.ca1.CertDER)
	fz.Add([]byte{0x30, 0x82})
	fz.Fuzz(func(t *testing.T, der []byte) { validateOrReject(t, f, der) })
}
