package identity

import (
	"crypto/ed25519"
	"crypto/rand"
	"crypto/x509"
	"crypto/x509/pkix"
	"fmt"
	"math/big"
	"net"
	"time"
)

// DefaultHosts are the SANs given to member certificates when none are
// asked for: enough to run a whole network on one machine.
var DefaultHosts = []string{"127.0.0.1", "localhost", "::1"}

// DefaultValidity is how long generated certificates stay valid: long
// enough that nobody meets an expiry while developing or benchmarking.
const DefaultValidity = 10 * 365 * 24 * time.Hour

// synctestEpoch is where a testing/synctest bubble's clock starts. NewCA
// backdates certificates before it so that identities minted in tests stay
// valid inside bubbles.
var synctestEpoch = time.Date(2000, 1, 1, 0, 0, 0, 0, time.UTC)

// CA is an organisation's certificate authority: it issues the
// certificates of the org's members.
type CA struct {
	Org     string
	Cert    *x509.Certificate
	CertDER []byte
	Key     ed25519.PrivateKey
}

// NewCA creates a self-signed ed25519 CA for org, valid from before
// 2000-01-01 (the testing/synctest epoch, so in-memory test identities work
// inside bubbles) until now+validity. A zero validity means DefaultValidity.
// Use NewCAValidBetween for an exact window.
func NewCA(org string, validity time.Duration) (*CA, error) {
	if validity <= 0 {
		validity = DefaultValidity
	}
	return NewCAValidBetween(org, synctestEpoch.Add(-24*time.Hour), time.Now().Add(validity))
}

// NewCAValidBetween creates a self-signed ed25519 CA for org valid in
// [notBefore, notAfter].
func NewCAValidBetween(org string, notBefore, notAfter time.Time) (*CA, error) {
	if org == "" {
		return nil, fmt.Errorf("new CA: empty org name")
	}
	pub, key, err := ed25519.GenerateKey(rand.Reader)
	if err != nil {
		return nil, err
	}
	serial, err := randomSerial()
	if err != nil {
		return nil, err
	}
	subject := pkix.Name{CommonName: org + "-ca", Organization: []string{org}}
	tmpl := &x509.Certificate{
		SerialNumber:          serial,
		Subject:               subject,
		NotBefore:             notBefore,
		NotAfter:              notAfter,
		IsCA:                  true,
		BasicConstraintsValid: true,
		MaxPathLenZero:        true, // a CA issues members only, no sub-CAs
		KeyUsage:              x509.KeyUsageCertSign | x509.KeyUsageDigitalSignature | x509.KeyUsageCRLSign,
	}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, tmpl, pub, key)
	if err != nil {
		return nil, fmt.Errorf("new CA %s: %w", org, err)
	}
	cert, err := x509.ParseCertificate(der)
	if err != nil {
		return nil, err
	}
	return &CA{Org: org, Cert: cert, CertDER: der, Key: key}, nil
}

// Issue creates a fresh ed25519 key and a certificate for it signed by the
// CA, valid in [notBefore, notAfter], with SANs DefaultHosts.
func (ca *CA) Issue(name string, role Role, notBefore, notAfter time.Time) (*Identity, error) {
	return ca.IssueHosts(name, role, notBefore, notAfter, DefaultHosts)
}

// NewIdentity issues a certificate valid for the CA's whole lifetime: the
// convenient way for tests to make members in memory.
func (ca *CA) NewIdentity(name string, role Role) (*Identity, error) {
	return ca.Issue(name, role, ca.Cert.NotBefore, ca.Cert.NotAfter)
}

// IssueHosts is Issue with explicit SANs: each host is an IP address or a
// DNS name.
func (ca *CA) IssueHosts(name string, role Role, notBefore, notAfter time.Time, hosts []string) (*Identity, error) {
	if name == "" || !role.Valid() {
		return nil, fmt.Errorf("issue %q as %q: need a name and one of peer, orderer, admin, client: %w", name, role, ErrBadRole)
	}
	pub, key, err := ed25519.GenerateKey(rand.Reader)
	if err != nil {
		return nil, err
	}
	serial, err := randomSerial()
	if err != nil {
		return nil, err
	}
	tmpl := &x509.Certificate{
		SerialNumber: serial,
		Subject: pkix.Name{
			CommonName:         name,
			Organization:       []string{ca.Org},
			OrganizationalUnit: []string{string(role)},
		},
		NotBefore:             notBefore,
		NotAfter:              notAfter,
		BasicConstraintsValid: true,
		KeyUsage:              x509.KeyUsageDigitalSignature,
		ExtKeyUsage:           []x509.ExtKeyUsage{x509.ExtKeyUsageServerAuth, x509.ExtKeyUsageClientAuth},
	}
	for _, h := range hosts {
		if ip := net.ParseIP(h); ip != nil {
			tmpl.IPAddresses = append(tmpl.IPAddresses, ip)
		} else {
			tmpl.DNSNames = append(tmpl.DNSNames, h)
		}
	}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, ca.Cert, pub, ca.Key)
	if err != nil {
		return nil, fmt.Errorf("issue %s for %s: %w", name, ca.Org, err)
	}
	return NewIdentity(der, key)
}

// CertPEM returns the CA certificate in PEM form.
func (ca *CA) CertPEM() []byte { return certPEM(ca.CertDER) }

// randomSerial returns a random positive 128-bit serial number.
func randomSerial() (*big.Int, error) {
	limit := new(big.Int).Lsh(big.NewInt(1), 128)
	for {
		n, err := rand.Int(rand.Reader, limit)
		if err != nil {
			return nil, fmt.Errorf("random serial: %w", err)
		}
		if n.Sign() > 0 {
			return n, nil
		}
	}
}
