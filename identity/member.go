package identity

import (
	"crypto/ed25519"
	"crypto/x509"
	"errors"
	"fmt"
)

// The MSP's verdicts on a remote certificate or signature. Every rejection
// wraps exactly one of these (or ErrNotEd25519 / ErrBadRole for a
// certificate no blockgossip CA would issue), so callers can use errors.Is.
var (
	ErrUnknownCA    = errors.New("certificate does not chain to a trusted org CA: add the org's CA to the network description or re-issue the certificate")
	ErrExpired      = errors.New("certificate expired: issue a new one")
	ErrNotYetValid  = errors.New("certificate not yet valid: check the clocks or the certificate's NotBefore")
	ErrRevoked      = errors.New("certificate revoked")
	ErrBadSignature = errors.New("signature does not verify under the certificate's key")
)

// Member is what validating a remote certificate yields.
type Member struct {
	ID      PKIID
	Org     string
	Role    Role
	Name    string
	Cert    *x509.Certificate
	CertDER []byte
}

// PublicKey returns the member's ed25519 key.
func (m *Member) PublicKey() ed25519.PublicKey { return m.Cert.PublicKey.(ed25519.PublicKey) }

// Verify checks sig over msg under the member's key. It does not re-check
// the certificate: use MSP.VerifySignature for that.
func (m *Member) Verify(msg, sig []byte) error {
	if !ed25519.Verify(m.PublicKey(), msg, sig) {
		return fmt.Errorf("member %s (%s): %w", m.Name, m.Org, ErrBadSignature)
	}
	return nil
}
