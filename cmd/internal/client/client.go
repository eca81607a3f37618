// Package client dials blockgossip nodes as an operator: mutual TLS with a
// member certificate (usually an org admin's), the server checked against
// the trusted org CAs. `submit`, `ledger height` and the `network up` table
// and feeder use it.
package client

import (
	"context"
	"crypto/x509"
	"encoding/pem"
	"errors"
	"fmt"
	"os"
	"strings"
	"time"

	"github.com/blockgossip/blockgossip/identity"
	pb "github.com/blockgossip/blockgossip/protos"
	"google.golang.org/grpc"
	"google.golang.org/grpc/credentials"
)

// Credentials locate the files a client needs.
type Credentials struct {
	Cert string // member certificate (PEM)
	Key  string // its ed25519 key (PEM PKCS#8)
	// CA is either a PEM file of one or more org CA certificates (each
	// trusted for the org its certificate names), or a network description
	// JSON (network-description.json), which lists every org's CA.
	CA string
}

// ErrCredentials means the credential files are missing or unusable.
var ErrCredentials = errors.New("unusable client credentials")

// Validate says which file is missing.
func (c Credentials) Validate() error {
	for _, f := range []struct{ flag, path string }{{"--cert", c.Cert}, {"--key", c.Key}, {"--ca", c.CA}} {
		if f.path == "" {
			return fmt.Errorf("%w: %s is required (or pass --network DIR of a network started by `network up`)", ErrCredentials, f.flag)
		}
	}
	return nil
}

// Load reads the identity and builds the MSP that judges servers.
func (c Credentials) Load() (*identity.Identity, *identity.MSP, error) {
	if err := c.Validate(); err != nil {
		return nil, nil, err
	}
	id, err := identity.LoadIdentity(c.Cert, c.Key)
	if err != nil {
		return nil, nil, fmt.Errorf("%w: %v", ErrCredentials, err)
	}
	msp, err := LoadTrust(c.CA)
	if err != nil {
		return nil, nil, err
	}
	return id, msp, nil
}

// LoadTrust builds an MSP from a CA bundle or a network description.
func LoadTrust(path string) (*identity.MSP, error) {
	raw, err := os.ReadFile(path)
	if err != nil {
		return nil, fmt.Errorf("%w: read CA file: %v", ErrCredentials, err)
	}
	if strings.HasPrefix(strings.TrimSpace(string(raw)), "{") {
		nd, err := identity.ParseNetworkDescription(raw)
		if err != nil {
			return nil, fmt.Errorf("%w: %s: %v", ErrCredentials, path, err)
		}
		msp, err := nd.MSP()
		if err != nil {
			return nil, fmt.Errorf("%w: %s: %v", ErrCredentials, path, err)
		}
		return msp, nil
	}
	cas := map[string]*x509.Certificate{}
	for rest := raw; ; {
		var block *pem.Block
		block, rest = pem.Decode(rest)
		if block == nil {
			break
		}
		if block.Type != "CERTIFICATE" {
			continue
		}
		cert, err := x509.ParseCertificate(block.Bytes)
		if err != nil {
			return nil, fmt.Errorf("%w: %s: bad certificate: %v", ErrCredentials, path, err)
		}
		if len(cert.Subject.Organization) == 0 {
			return nil, fmt.Errorf("%w: %s: CA certificate %q names no organisation", ErrCredentials, path, cert.Subject.CommonName)
		}
		cas[cert.Subject.Organization[0]] = cert
	}
	if len(cas) == 0 {
		return nil, fmt.Errorf("%w: %s holds no PEM certificate (want org CA certificates or a network-description.json)", ErrCredentials, path)
	}
	msp, err := identity.NewMSP(cas)
	if err != nil {
		return nil, fmt.Errorf("%w: %s: %v", ErrCredentials, path, err)
	}
	return msp, nil
}

// WriteBundle writes the CA certificates of a network description as one
// PEM file, the form Credentials.CA expects.
func WriteBundle(path string, nd *identity.NetworkDescription) error {
	var b strings.Builder
	for _, org := range nd.Orgs {
		b.WriteString(strings.TrimSpace(org.CACertPEM))
		b.WriteString("\n")
	}
	return os.WriteFile(path, []byte(b.String()), 0o644)
}

// Dial connects to addr with mutual TLS. The connection is lazy: errors
// surface on the first call, which the caller bounds with a context.
func Dial(addr string, id *identity.Identity, msp *identity.MSP) (*grpc.ClientConn, error) {
	conn, err := grpc.NewClient(addr,
		grpc.WithTransportCredentials(credentials.NewTLS(identity.ClientTLSConfig(id, msp))),
		grpc.WithDefaultCallOptions(grpc.MaxCallRecvMsgSize(64<<20), grpc.MaxCallSendMsgSize(64<<20)),
	)
	if err != nil {
		return nil, fmt.Errorf("dial %s: %w", addr, err)
	}
	return conn, nil
}

// LedgerInfo asks a node's Admin service for its height and tip.
func LedgerInfo(ctx context.Context, conn *grpc.ClientConn, timeout time.Duration) (*pb.LedgerInfoResponse, error) {
	ctx, cancel := context.WithTimeout(ctx, timeout)
	defer cancel()
	resp, err := pb.NewAdminClient(conn).LedgerInfo(ctx, &pb.LedgerInfoRequest{})
	if err != nil {
		return nil, fmt.Errorf("ledger info from %s: %w", conn.Target(), err)
	}
	return resp, nil
}
