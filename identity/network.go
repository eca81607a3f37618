package identity

import (
	"crypto/ed25519"
	"crypto/x509"
	"encoding/json"
	"errors"
	"fmt"
	"math/big"
	"os"
)

// NetworkDescription is what every member must agree on (the "genesis"):
// the trusted org CAs, the orderer's certificate (hence its public key)
// pinned, and the revoked serials. It is JSON-encoded; the orderer stub
// puts it in genesis block 0.
type NetworkDescription struct {
	Orgs           []OrgDescription `json:"orgs"` // every org incl. the orderer org
	OrdererOrg     string           `json:"orderer_org"`
	OrdererCertPEM string           `json:"orderer_cert_pem"`
	Revoked        []string         `json:"revoked_serials,omitempty"` // hex serials
}

// OrgDescription names an org and its CA certificate (PEM).
type OrgDescription struct {
	Name      string `json:"name"`
	CACertPEM string `json:"ca_cert_pem"`
}

// ErrBadNetwork wraps every reason a network description is rejected.
var ErrBadNetwork = errors.New("invalid network description")

// ParseNetworkDescription decodes and validates a JSON network description:
// at least one org, unique names, parseable CA certificates, an orderer org
// that is listed, an orderer certificate issued by it with role orderer,
// and hex revoked serials.
func ParseNetworkDescription(b []byte) (*NetworkDescription, error) {
	var n NetworkDescription
	if err := json.Unmarshal(b, &n); err != nil {
		return nil, fmt.Errorf("%w: not JSON of the expected shape: %v", ErrBadNetwork, err)
	}
	if err := n.Validate(); err != nil {
		return nil, err
	}
	return &n, nil
}

// LoadNetworkDescription reads and parses the network description at path.
func LoadNetworkDescription(path string) (*NetworkDescription, error) {
	b, err := os.ReadFile(path)
	if err != nil {
		return nil, fmt.Errorf("read network description: %w (generate one with `blockgossip crypto generate`)", err)
	}
	n, err := ParseNetworkDescription(b)
	if err != nil {
		return nil, fmt.Errorf("%s: %w", path, err)
	}
	return n, nil
}

// Marshal encodes n as indented JSON, after validating it.
func (n *NetworkDescription) Marshal() ([]byte, error) {
	if err := n.Validate(); err != nil {
		return nil, err
	}
	return json.MarshalIndent(n, "", "  ")
}

// Validate checks n as ParseNetworkDescription does.
func (n *NetworkDescription) Validate() error {
	_, err := n.OrdererVerifier()
	return err
}

// CAs parses the org CA certificates, keyed by org name.
func (n *NetworkDescription) CAs() (map[string]*x509.Certificate, error) {
	if len(n.Orgs) == 0 {
		return nil, fmt.Errorf("%w: no orgs", ErrBadNetwork)
	}
	cas := make(map[string]*x509.Certificate, len(n.Orgs))
	for i, o := range n.Orgs {
		if o.Name == "" {
			return nil, fmt.Errorf("%w: org #%d has no name", ErrBadNetwork, i)
		}
		if _, dup := cas[o.Name]; dup {
			return nil, fmt.Errorf("%w: org %s listed twice", ErrBadNetwork, o.Name)
		}
		der, err := decodePEM([]byte(o.CACertPEM), "CERTIFICATE", "org "+o.Name+" ca_cert_pem")
		if err != nil {
			return nil, fmt.Errorf("%w: %v", ErrBadNetwork, err)
		}
		c, err := x509.ParseCertificate(der)
		if err != nil {
			return nil, fmt.Errorf("%w: org %s CA certificate: %v", ErrBadNetwork, o.Name, err)
		}
		cas[o.Name] = c
	}
	return cas, nil
}

// RevokedSerials parses the revoked serials.
func (n *NetworkDescription) RevokedSerials() ([]*big.Int, error) {
	out := make([]*big.Int, 0, len(n.Revoked))
	for _, s := range n.Revoked {
		v, ok := new(big.Int).SetString(s, 16)
		if !ok || v.Sign() < 0 {
			return nil, fmt.Errorf("%w: revoked serial %q is not a hex number", ErrBadNetwork, s)
		}
		out = append(out, v)
	}
	return out, nil
}

// MSP builds the MSP the description defines, revocation list included.
func (n *NetworkDescription) MSP() (*MSP, error) {
	cas, err := n.CAs()
	if err != nil {
		return nil, err
	}
	revoked, err := n.RevokedSerials()
	if err != nil {
		return nil, err
	}
	m, err := NewMSP(cas)
	if err != nil {
		return nil, fmt.Errorf("%w: %v", ErrBadNetwork, err)
	}
	m.SetRevoked(revoked)
	return m, nil
}

// OrdererVerifier returns the verifier of block signatures by the pinned
// orderer, after checking its certificate against the orderer org's CA
// (validity window and revocation are not checked here: old blocks stay
// verifiable after the orderer's certificate expires).
func (n *NetworkDescription) OrdererVerifier() (OrdererVerifier, error) {
	m, err := n.MSP()
	if err != nil {
		return OrdererVerifier{}, err
	}
	der, err := decodePEM([]byte(n.OrdererCertPEM), "CERTIFICATE", "orderer_cert_pem")
	if err != nil {
		return OrdererVerifier{}, fmt.Errorf("%w: %v", ErrBadNetwork, err)
	}
	c, err := x509.ParseCertificate(der)
	if err != nil {
		return OrdererVerifier{}, fmt.Errorf("%w: orderer certificate: %v", ErrBadNetwork, err)
	}
	mem, err := m.checkChain(c, PKIIDFromCert(der))
	if err != nil {
		return OrdererVerifier{}, fmt.Errorf("%w: orderer certificate: %v", ErrBadNetwork, err)
	}
	if mem.Org != n.OrdererOrg || mem.Role != RoleOrderer {
		return OrdererVerifier{}, fmt.Errorf("%w: orderer certificate is %s %s, want an orderer of org %q",
			ErrBadNetwork, mem.Org, mem.Role, n.OrdererOrg)
	}
	return OrdererVerifier{Key: mem.PublicKey()}, nil
}

// OrdererVerifier checks the orderer's signature over block headers. It
// satisfies ledger.BlockVerifier.
type OrdererVerifier struct{ Key ed25519.PublicKey }

// VerifyBlockSignature checks signature over the exact header bytes.
func (v OrdererVerifier) VerifyBlockSignature(header, signature []byte) error {
	if len(v.Key) != ed25519.PublicKeySize {
		return fmt.Errorf("orderer verifier has a %d-byte key, want %d: build it from the network description", len(v.Key), ed25519.PublicKeySize)
	}
	if !ed25519.Verify(v.Key, header, signature) {
		return fmt.Errorf("block header: %w", ErrBadSignature)
	}
	return nil
}
