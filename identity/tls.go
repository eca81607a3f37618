package identity

import (
	"crypto/tls"
	"fmt"
)

// ServerTLSConfig returns a TLS 1.3-only server configuration presenting
// id and requiring a client certificate that m validates. There is no
// hostname or chain check by the tls package: members are identified by
// certificate, not DNS, and the MSP is the only judge.
func ServerTLSConfig(id *Identity, m *MSP) *tls.Config {
	return &tls.Config{
		MinVersion:       tls.VersionTLS13,
		Certificates:     []tls.Certificate{id.TLSCertificate()},
		ClientAuth:       tls.RequireAnyClientCert,
		VerifyConnection: verifyPeer(m),
	}
}

// ClientTLSConfig returns a TLS 1.3-only client configuration presenting
// id and accepting a server only if m validates its certificate. The
// caller learns who answered with MSP.PeerMember on the connection state.
func ClientTLSConfig(id *Identity, m *MSP) *tls.Config {
	return &tls.Config{
		MinVersion:   tls.VersionTLS13,
		Certificates: []tls.Certificate{id.TLSCertificate()},
		// The MSP replaces the tls package's chain and hostname checks;
		// VerifyConnection runs even when this is set.
		InsecureSkipVerify: true,
		VerifyConnection:   verifyPeer(m),
	}
}

// verifyPeer validates the remote leaf certificate through the MSP. The
// TLS 1.3 handshake itself proves the peer holds the certificate's key.
func verifyPeer(m *MSP) func(tls.ConnectionState) error {
	return func(cs tls.ConnectionState) error {
		_, err := m.PeerMember(cs)
		return err
	}
}

// PeerMember validates the remote certificate of a completed (or
// completing) TLS connection and returns the member it belongs to.
func (m *MSP) PeerMember(cs tls.ConnectionState) (*Member, error) {
	if len(cs.PeerCertificates) == 0 {
		return nil, fmt.Errorf("tls peer sent no certificate: %w", ErrUnknownCA)
	}
	mem, err := m.ValidateCert(cs.PeerCertificates[0])
	if err != nil {
		return nil, fmt.Errorf("tls peer: %w", err)
	}
	return mem, nil
}
