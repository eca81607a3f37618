package identity

import (
	"crypto"
	"crypto/ed25519"
	"crypto/tls"
	"crypto/x509"
	"encoding/pem"
	"errors"
	"fmt"
	"os"
)

// Role is what a member does on the network, as written in its
// certificate's OrganizationalUnit[0].
type Role string

// The roles a certificate may carry.
const (
	RolePeer    Role = "peer"
	RoleOrderer Role = "orderer"
	RoleAdmin   Role = "admin"
	RoleClient  Role = "client"
)

// Valid reports whether r is one of the four known roles.
func (r Role) Valid() bool {
	switch r {
	case RolePeer, RoleOrderer, RoleAdmin, RoleClient:
		return true
	}
	return false
}

// Identity is a member's own identity: one ed25519 key and one x509
// certificate, used both as gossip identity and as TLS certificate.
type Identity struct {
	Name    string // cert CommonName, e.g. "org1-peer0"
	Org     string // cert Organization[0]
	Role    Role   // cert OrganizationalUnit[0]
	Cert    *x509.Certificate
	CertDER []byte
	Key     ed25519.PrivateKey
	ID      PKIID // PKIIDFromCert(CertDER)
}

// NewIdentity builds an Identity from a DER certificate and its private
// key, checking that the key matches the certificate and that the
// certificate names an organisation and a known role.
func NewIdentity(certDER []byte, key ed25519.PrivateKey) (*Identity, error) {
	cert, err := x509.ParseCertificate(certDER)
	if err != nil {
		return nil, fmt.Errorf("parse certificate: %w", err)
	}
	pub, ok := cert.PublicKey.(ed25519.PublicKey)
	if !ok {
		return nil, fmt.Errorf("certificate %q has a %T key: %w", cert.Subject.CommonName, cert.PublicKey, ErrNotEd25519)
	}
	if len(key) != ed25519.PrivateKeySize || !pub.Equal(key.Public()) {
		return nil, fmt.Errorf("certificate %q: %w", cert.Subject.CommonName, ErrKeyMismatch)
	}
	org, role, err := orgAndRole(cert)
	if err != nil {
		return nil, err
	}
	return &Identity{
		Name: cert.Subject.CommonName, Org: org, Role: role,
		Cert: cert, CertDER: certDER, Key: key, ID: PKIIDFromCert(certDER),
	}, nil
}

// Sign signs msg with the identity's ed25519 key.
func (i *Identity) Sign(msg []byte) []byte { return ed25519.Sign(i.Key, msg) }

// PublicKey returns the identity's public key.
func (i *Identity) PublicKey() ed25519.PublicKey { return i.Key.Public().(ed25519.PublicKey) }

// TLSCertificate returns the identity as a TLS certificate (leaf only; the
// remote side trusts the org CA directly).
func (i *Identity) TLSCertificate() tls.Certificate {
	return tls.Certificate{
		Certificate: [][]byte{i.CertDER},
		PrivateKey:  crypto.Signer(i.Key),
		Leaf:        i.Cert,
	}
}

// Member returns the identity as others see it once validated.
func (i *Identity) Member() *Member {
	return &Member{ID: i.ID, Org: i.Org, Role: i.Role, Name: i.Name, Cert: i.Cert, CertDER: i.CertDER}
}

// CertPEM returns the certificate in PEM form.
func (i *Identity) CertPEM() []byte { return certPEM(i.CertDER) }

// KeyPEM returns the private key in PEM PKCS#8 form. Keep it secret.
func (i *Identity) KeyPEM() ([]byte, error) { return keyPEM(i.Key) }

// LoadIdentity reads a PEM certificate and a PEM PKCS#8 ed25519 key, as
// written by Generate.
func LoadIdentity(certPath, keyPath string) (*Identity, error) {
	certDER, err := readPEM(certPath, "CERTIFICATE")
	if err != nil {
		return nil, err
	}
	keyDER, err := readPEM(keyPath, "PRIVATE KEY")
	if err != nil {
		return nil, err
	}
	k, err := x509.ParsePKCS8PrivateKey(keyDER)
	if err != nil {
		return nil, fmt.Errorf("key %s is not a PKCS#8 private key (%v): regenerate it with `blockgossip crypto generate`", keyPath, err)
	}
	key, ok := k.(ed25519.PrivateKey)
	if !ok {
		return nil, fmt.Errorf("key %s holds a %T key: %w", keyPath, k, ErrNotEd25519)
	}
	id, err := NewIdentity(certDER, key)
	if err != nil {
		return nil, fmt.Errorf("identity %s + %s: %w", certPath, keyPath, err)
	}
	return id, nil
}

// readPEM reads the first PEM block of file path and checks its type.
func readPEM(path, typ string) ([]byte, error) {
	b, err := os.ReadFile(path)
	if err != nil {
		return nil, fmt.Errorf("read %s: %w (check the path, or generate material with `blockgossip crypto generate`)", path, err)
	}
	return decodePEM(b, typ, path)
}

// decodePEM returns the DER bytes of the first PEM block in b, which must
// be of type typ; what names the source in errors.
func decodePEM(b []byte, typ, what string) ([]byte, error) {
	blk, _ := pem.Decode(b)
	if blk == nil {
		return nil, fmt.Errorf("%s: no PEM block found: %w", what, ErrBadPEM)
	}
	if blk.Type != typ {
		return nil, fmt.Errorf("%s: PEM block is %q, want %q: %w", what, blk.Type, typ, ErrBadPEM)
	}
	return blk.Bytes, nil
}

func certPEM(der []byte) []byte {
	return pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: der})
}

func keyPEM(key ed25519.PrivateKey) ([]byte, error) {
	der, err := x509.MarshalPKCS8PrivateKey(key)
	if err != nil {
		return nil, err
	}
	return pem.EncodeToMemory(&pem.Block{Type: "PRIVATE KEY", Bytes: der}), nil
}

// orgAndRole reads a member certificate's organisation and role.
func orgAndRole(c *x509.Certificate) (string, Role, error) {
	if len(c.Subject.Organization) == 0 || c.Subject.Organization[0] == "" {
		return "", "", fmt.Errorf("certificate %q names no organisation: %w", c.Subject.CommonName, ErrBadRole)
	}
	if len(c.Subject.OrganizationalUnit) == 0 || !Role(c.Subject.OrganizationalUnit[0]).Valid() {
		return "", "", fmt.Errorf("certificate %q has OU %v, want one of peer, orderer, admin, client: %w",
			c.Subject.CommonName, c.Subject.OrganizationalUnit, ErrBadRole)
	}
	return c.Subject.Organization[0], Role(c.Subject.OrganizationalUnit[0]), nil
}

// Errors about local material (keys and files), as opposed to the MSP's
// verdicts on remote certificates.
var (
	ErrNotEd25519  = errors.New("key is not ed25519: blockgossip uses ed25519 only")
	ErrKeyMismatch = errors.New("private key does not match the certificate")
	ErrBadPEM      = errors.New("malformed PEM")
	ErrBadRole     = errors.New("certificate lacks a valid organisation or role")
)
