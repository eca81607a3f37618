package identity

import (
	"crypto/sha256"
	"encoding/hex"
	"fmt"
)

// PKIID identifies a member on the network: the SHA-256 of its DER
// certificate. It is a value type, usable as a map key.
type PKIID [32]byte

// PKIIDFromCert returns the PKI-ID of a DER-encoded certificate.
func PKIIDFromCert(der []byte) PKIID { return sha256.Sum256(der) }

// PKIIDFromBytes converts a wire-format PKI-ID, rejecting a wrong length.
func PKIIDFromBytes(b []byte) (PKIID, error) {
	var id PKIID
	if len(b) != len(id) {
		return id, fmt.Errorf("pki-id has %d bytes, want %d", len(b), len(id))
	}
	copy(id[:], b)
	return id, nil
}

// String returns the first 8 bytes in hex: enough to tell peers apart in
// logs, short enough to read.
func (p PKIID) String() string { return hex.EncodeToString(p[:8]) }

// Bytes returns the wire form.
func (p PKIID) Bytes() []byte { return append([]byte(nil), p[:]...) }

// Less orders PKI-IDs bytewise (used by election and tie-breaks).
func (p PKIID) Less(q PKIID) bool {
	for i := range p {
		if p[i] != q[i] {
			return p[i] < q[i]
		}
	}
	return false
}

// IsZero reports whether p is the zero PKI-ID.
func (p PKIID) IsZero() bool { return p == PKIID{} }
