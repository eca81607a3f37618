package gossip

import (
	"bytes"
	"errors"
	"fmt"

	"github.com/blockgossip/blockgossip/identity"
	pb "github.com/blockgossip/blockgossip/protos"
)

// MSPCrypto is the production Crypto: it signs with this peer's identity
// and verifies other members' certificates and signatures with the MSP.
type MSPCrypto struct {
	self *identity.Identity
	msp  *identity.MSP
}

var _ Crypto = (*MSPCrypto)(nil)

// NewMSPCrypto returns the Crypto of self, trusting the orgs msp knows.
func NewMSPCrypto(self *identity.Identity, msp *identity.MSP) *MSPCrypto {
	return &MSPCrypto{self: self, msp: msp}
}

// ErrMemberMismatch: an alive or leadership message names a PKI-ID, org or
// role its certificate does not carry. The sender is forging; it is ignored.
var ErrMemberMismatch = errors.New("member does not match its certificate")

// Sign signs payload with this peer's key.
func (c *MSPCrypto) Sign(payload []byte) []byte { return c.self.Sign(payload) }

// Verify validates m's certificate with the MSP (trusted CA, validity,
// revocation), checks that it is a peer certificate whose PKI-ID and org
// are those m claims, and checks signature over payload.
func (c *MSPCrypto) Verify(m *pb.Member, payload, signature []byte) error {
	mem, err := c.msp.VerifySignature(m.GetCertificate(), payload, signature)
	if err != nil {
		return err
	}
	switch {
	case !bytes.Equal(mem.ID[:], m.GetPkiId()):
		return fmt.Errorf("%w: pki-id %x, certificate's %v", ErrMemberMismatch, m.GetPkiId(), mem.ID)
	case mem.Org != m.GetOrg():
		return fmt.Errorf("%w: org %q, certificate's %q", ErrMemberMismatch, m.GetOrg(), mem.Org)
	case mem.Role != identity.RolePeer:
		return fmt.Errorf("%w: role %q, want %q", ErrMemberMismatch, mem.Role, identity.RolePeer)
	}
	return nil
}

// SelfFromIdentity describes a peer from its identity and the endpoint
// others should dial.
func SelfFromIdentity(id *identity.Identity, endpoint string) Self {
	return Self{ID: id.ID, Endpoint: endpoint, Org: id.Org, Cert: id.CertDER}
}
