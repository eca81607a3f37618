package identity

import (
	"crypto/ed25519"
	"crypto/x509"
	"fmt"
	"maps"
	"slices"
	"sync"
	"time"
)

// maxCached bounds the cache of chain-checked certificates; it is cleared
// when full. A network has far fewer members than this.
const maxCached = 4096

type trustedCA struct {
	org  string
	cert *x509.Certificate
}

// MSP validates certificates against the network's trusted org CAs: the
// certificate must be signed by the CA of the org it names, be within its
// validity window (and its CA within its own), and not be revoked. The set
// of CAs is fixed at construction; the revocation list and clock may
// change. Safe for concurrent use.
type MSP struct {
	byIssuer map[string]trustedCA // string(CA RawSubject) -> CA
	orgs     []string

	mu      sync.RWMutex
	now     func() time.Time
	revoked map[string]struct{} // serial.Text(16)
	checked map[PKIID]*Member   // chain-verified; trust set is immutable
	subs    map[uint64]func()   // SetRevoked subscribers
	nextSub uint64
}

// NewMSP builds an MSP trusting cas, keyed by org name. Each CA must be a
// self-signed ed25519 CA certificate naming that org.
func NewMSP(cas map[string]*x509.Certificate) (*MSP, error) {
	if len(cas) == 0 {
		return nil, fmt.Errorf("new MSP: no CA certificates: the network description must list every org's CA")
	}
	m := &MSP{
		byIssuer: make(map[string]trustedCA, len(cas)),
		now:      time.Now,
		revoked:  map[string]struct{}{},
		checked:  map[PKIID]*Member{},
		subs:     map[uint64]func(){},
	}
	for org, c := range cas {
		if err := checkCA(org, c); err != nil {
			return nil, fmt.Errorf("new MSP: %w", err)
		}
		if prev, dup := m.byIssuer[string(c.RawSubject)]; dup {
			return nil, fmt.Errorf("new MSP: orgs %s and %s have CAs with the same subject: give each org its own CA", prev.org, org)
		}
		m.byIssuer[string(c.RawSubject)] = trustedCA{org: org, cert: c}
	}
	m.orgs = slices.Sorted(maps.Keys(cas))
	return m, nil
}

// checkCA rejects anything that is not a self-signed ed25519 CA for org.
func checkCA(org string, c *x509.Certificate) error {
	switch {
	case org == "" || c == nil:
		return fmt.Errorf("empty org name or nil CA certificate")
	case !c.IsCA || c.KeyUsage&x509.KeyUsageCertSign == 0:
		return fmt.Errorf("org %s: certificate %q is not a CA (needs IsCA and KeyUsageCertSign)", org, c.Subject.CommonName)
	case len(c.Subject.Organization) == 0 || c.Subject.Organization[0] != org:
		return fmt.Errorf("org %s: CA certificate names organisation %v", org, c.Subject.Organization)
	}
	if _, ok := c.PublicKey.(ed25519.PublicKey); !ok {
		return fmt.Errorf("org %s CA: %w", org, ErrNotEd25519)
	}
	if err := c.CheckSignatureFrom(c); err != nil {
		return fmt.Errorf("org %s: CA certificate is not self-signed: %v", org, err)
	}
	return nil
}

// Orgs returns the trusted org names, sorted.
func (m *MSP) Orgs() []string { return slices.Clone(m.orgs) }

// CA returns the trusted CA certificate of org, or nil.
func (m *MSP) CA(org string) *x509.Certificate {
	for _, ca := range m.byIssuer {
		if ca.org == org {
			return ca.cert
		}
	}
	return nil
}

// SetClock replaces the clock validity windows are checked against (tests).
func (m *MSP) SetClock(now func() time.Time) {
	m.mu.Lock()
	m.now = now
	m.mu.Unlock()
}

// Validate parses a DER certificate and validates it (see ValidateCert).
// A certificate seen before is not parsed or chain-checked again; its
// validity window and revocation are checked on every call.
func (m *MSP) Validate(certDER []byte) (*Member, error) {
	m.mu.RLock()
	cached := m.checked[PKIIDFromCert(certDER)]
	m.mu.RUnlock()
	if cached != nil {
		return m.checkLive(cached)
	}
	c, err := x509.ParseCertificate(certDER)
	if err != nil {
		return nil, fmt.Errorf("parse certificate: %v: %w", err, ErrUnknownCA)
	}
	return m.ValidateCert(c)
}

// ValidateCert checks that c is signed by the CA of the org it names, is
// an ed25519 member certificate with a known role, lies (with its CA)
// within its validity window, and is not revoked.
func (m *MSP) ValidateCert(c *x509.Certificate) (*Member, error) {
	id := PKIIDFromCert(c.Raw)
	m.mu.RLock()
	cached := m.checked[id]
	m.mu.RUnlock()
	if cached == nil {
		mem, err := m.checkChain(c, id)
		if err != nil {
			return nil, err
		}
		m.mu.Lock()
		if len(m.checked) >= maxCached {
			clear(m.checked)
		}
		m.checked[id] = mem
		m.mu.Unlock()
		cached = mem
	}
	return m.checkLive(cached)
}

// checkChain does the checks whose outcome never changes for a given
// certificate: issuer, signature, key type, org and role.
func (m *MSP) checkChain(c *x509.Certificate, id PKIID) (*Member, error) {
	ca, ok := m.byIssuer[string(c.RawIssuer)]
	if !ok {
		return nil, fmt.Errorf("certificate %q issued by %q: %w", c.Subject.CommonName, c.Issuer.String(), ErrUnknownCA)
	}
	if err := c.CheckSignatureFrom(ca.cert); err != nil {
		return nil, fmt.Errorf("certificate %q not signed by the %s CA (%v): %w", c.Subject.CommonName, ca.org, err, ErrUnknownCA)
	}
	if _, ok := c.PublicKey.(ed25519.PublicKey); !ok {
		return nil, fmt.Errorf("certificate %q: %w", c.Subject.CommonName, ErrNotEd25519)
	}
	if c.IsCA {
		return nil, fmt.Errorf("certificate %q is a CA, not a member: %w", c.Subject.CommonName, ErrBadRole)
	}
	org, role, err := orgAndRole(c)
	if err != nil {
		return nil, err
	}
	if org != ca.org {
		return nil, fmt.Errorf("certificate %q claims org %s but is signed by the %s CA: %w", c.Subject.CommonName, org, ca.org, ErrUnknownCA)
	}
	return &Member{ID: id, Org: org, Role: role, Name: c.Subject.CommonName, Cert: c, CertDER: c.Raw}, nil
}

// checkLive does the checks whose outcome changes with time and the
// revocation list, and returns a copy of mem.
func (m *MSP) checkLive(mem *Member) (*Member, error) {
	m.mu.RLock()
	now := m.now()
	_, revoked := m.revoked[mem.Cert.SerialNumber.Text(16)]
	m.mu.RUnlock()
	ca := m.byIssuer[string(mem.Cert.RawIssuer)].cert
	switch {
	case now.Before(mem.Cert.NotBefore):
		return nil, fmt.Errorf("certificate %q valid from %s: %w", mem.Name, mem.Cert.NotBefore.UTC().Format(time.RFC3339), ErrNotYetValid)
	case now.After(mem.Cert.NotAfter):
		return nil, fmt.Errorf("certificate %q expired at %s: %w", mem.Name, mem.Cert.NotAfter.UTC().Format(time.RFC3339), ErrExpired)
	case now.Before(ca.NotBefore):
		return nil, fmt.Errorf("the %s CA is valid from %s: %w", mem.Org, ca.NotBefore.UTC().Format(time.RFC3339), ErrNotYetValid)
	case now.After(ca.NotAfter):
		return nil, fmt.Errorf("the %s CA expired at %s: %w", mem.Org, ca.NotAfter.UTC().Format(time.RFC3339), ErrExpired)
	case revoked:
		return nil, fmt.Errorf("certificate %q serial %x: %w", mem.Name, mem.Cert.SerialNumber, ErrRevoked)
	}
	cp := *mem
	return &cp, nil
}

// VerifySignature validates certDER and checks sig over msg under its key.
func (m *MSP) VerifySignature(certDER, msg, sig []byte) (*Member, error) {
	mem, err := m.Validate(certDER)
	if err != nil {
		return nil, err
	}
	if err := mem.Verify(msg, sig); err != nil {
		return nil, err
	}
	return mem, nil
}
