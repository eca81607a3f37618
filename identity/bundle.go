package identity

import (
	"fmt"
	"time"
)

// OrdererOrg and OrdererName are the names Generate gives the orderer's
// org and node.
const (
	OrdererOrg  = "ordererorg"
	OrdererName = "orderer"
)

// GenerateSpec says what crypto material to make.
type GenerateSpec struct {
	Orgs        int           // peer orgs, named org1..orgN
	PeersPerOrg int           // peers per org, named orgK-peer0..
	Validity    time.Duration // certificate lifetime; 0 means DefaultValidity (10 years)
	Hosts       []string      // SANs of member certs; nil means DefaultHosts
}

// DefaultGenerateSpec is a small local network.
func DefaultGenerateSpec() GenerateSpec {
	return GenerateSpec{
		Orgs:        2,               // the least that exercises cross-org gossip and one leader per org
		PeersPerOrg: 4,               // enough for push, pull and election to matter, small for a laptop
		Validity:    DefaultValidity, // nobody meets an expiry while developing
		Hosts:       DefaultHosts,    // the whole network runs on this machine
	}
}

// Validate rejects specs Generate cannot honour; zero Validity and nil
// Hosts are fine (they mean the defaults).
func (s GenerateSpec) Validate() error {
	if s.Orgs < 1 || s.PeersPerOrg < 1 {
		return fmt.Errorf("generate: need at least 1 org and 1 peer per org, got %d orgs x %d peers", s.Orgs, s.PeersPerOrg)
	}
	if s.Validity < 0 {
		return fmt.Errorf("generate: negative validity %v", s.Validity)
	}
	for _, h := range s.Hosts {
		if h == "" {
			return fmt.Errorf("generate: empty host name in %q", s.Hosts)
		}
	}
	return nil
}

// withDefaults validates s and fills in zero fields.
func (s GenerateSpec) withDefaults() (GenerateSpec, error) {
	if err := s.Validate(); err != nil {
		return s, err
	}
	if s.Validity == 0 {
		s.Validity = DefaultValidity
	}
	if s.Hosts == nil {
		s.Hosts = DefaultHosts
	}
	return s, nil
}

// Bundle is a whole network's crypto material in memory: what Generate
// writes to disk, and a convenient fixture for tests that want real
// certificates without files.
type Bundle struct {
	Network *NetworkDescription
	CAs     map[string]*CA // org name -> CA, incl. OrdererOrg
	Orderer *Identity
	Peers   []*Identity          // org-major: org1-peer0, org1-peer1, ..., org2-peer0, ...
	Admins  map[string]*Identity // org name -> admin, incl. OrdererOrg
	Clients map[string]*Identity // peer org name -> client
}

// NewBundle creates the CAs and identities spec describes, in memory.
// Like NewCA, it backdates certificates to before 2000-01-01 so that they
// are valid inside testing/synctest bubbles too; they expire spec.Validity
// from now. Generate, which makes real material, does not backdate.
func NewBundle(spec GenerateSpec) (*Bundle, error) {
	spec, err := spec.withDefaults()
	if err != nil {
		return nil, err
	}
	return newBundle(spec, synctestEpoch.Add(-24*time.Hour), time.Now().Add(spec.Validity))
}

// newBundle creates the material of spec (defaults filled in), every
// certificate valid in [notBefore, notAfter].
func newBundle(spec GenerateSpec, notBefore, notAfter time.Time) (*Bundle, error) {
	b := &Bundle{
		Network: &NetworkDescription{OrdererOrg: OrdererOrg},
		CAs:     map[string]*CA{}, Admins: map[string]*Identity{}, Clients: map[string]*Identity{},
	}
	issue := func(ca *CA, name string, role Role) (*Identity, error) {
		return ca.IssueHosts(name, role, notBefore, notAfter, spec.Hosts)
	}
	orgs := []string{OrdererOrg}
	for k := 1; k <= spec.Orgs; k++ {
		orgs = append(orgs, fmt.Sprintf("org%d", k))
	}
	for _, org := range orgs {
		ca, err := NewCAValidBetween(org, notBefore, notAfter)
		if err != nil {
			return nil, err
		}
		b.CAs[org] = ca
		b.Network.Orgs = append(b.Network.Orgs, OrgDescription{Name: org, CACertPEM: string(ca.CertPEM())})
		if b.Admins[org], err = issue(ca, org+"-admin", RoleAdmin); err != nil {
			return nil, err
		}
		if org == OrdererOrg {
			if b.Orderer, err = issue(ca, OrdererName, RoleOrderer); err != nil {
				return nil, err
			}
			b.Network.OrdererCertPEM = string(b.Orderer.CertPEM())
			continue
		}
		if b.Clients[org], err = issue(ca, org+"-client", RoleClient); err != nil {
			return nil, err
		}
		for p := range spec.PeersPerOrg {
			peer, err := issue(ca, fmt.Sprintf("%s-peer%d", org, p), RolePeer)
			if err != nil {
				return nil, err
			}
			b.Peers = append(b.Peers, peer)
		}
	}
	if err := b.Network.Validate(); err != nil {
		return nil, fmt.Errorf("generate: produced an invalid network (a bug): %w", err)
	}
	return b, nil
}

// MSP returns a fresh MSP for the bundle's network.
func (b *Bundle) MSP() (*MSP, error) { return b.Network.MSP() }
