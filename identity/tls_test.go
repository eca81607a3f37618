package identity

import (
	"crypto/tls"
	"errors"
	"io"
	"math/big"
	"net"
	"testing"
)

type side struct {
	err  error
	peer *Member // who the other end is, per the MSP
	ver  uint16
}

// handshake runs a TLS handshake over net.Pipe, then the server sends one
// byte so the client also learns of a rejection of its certificate.
// Closing the raw pipe ends both sides without close_notify exchanges.
func handshake(t *testing.T, m *MSP, srvCfg, cliCfg *tls.Config) (srv, cli side) {
	t.Helper()
	c1, c2 := net.Pipe()
	done := make(chan side)
	go func() {
		defer c1.Close()
		s := tls.Server(c1, srvCfg)
		var r side
		if r.err = s.Handshake(); r.err == nil {
			cs := s.ConnectionState()
			r.ver = cs.Version
			r.peer, r.err = m.PeerMember(cs)
			_, _ = s.Write([]byte("k"))
		}
		done <- r
	}()
	c := tls.Client(c2, cliCfg)
	if cli.err = c.Handshake(); cli.err == nil {
		cs := c.ConnectionState()
		cli.ver = cs.Version
		cli.peer, cli.err = m.PeerMember(cs)
		if cli.err == nil {
			_, cli.err = io.ReadFull(c, make([]byte, 1))
		}
	}
	c2.Close()
	return <-done, cli
}

func TestTLSMembersConnect(t *testing.T) {
	f := newFixture(t)
	srv, cli := handshake(t, f.msp, ServerTLSConfig(f.peer1, f.msp), ClientTLSConfig(f.peer2, f.msp))
	if srv.err != nil || cli.err != nil {
		t.Fatalf("handshake: server %v, client %v", srv.err, cli.err)
	}
	if srv.ver != tls.VersionTLS13 || cli.ver != tls.VersionTLS13 {
		t.Fatalf("versions %x %x, want TLS 1.3", srv.ver, cli.ver)
	}
	if srv.peer.ID != f.peer2.ID || cli.peer.ID != f.peer1.ID {
		t.Fatalf("server saw %s, client saw %s", srv.peer.Name, cli.peer.Name)
	}
}

func TestTLSRejects(t *testing.T) {
	f := newFixture(t)
	foreign := mustIssue(t, mustCA(t, "org3"), "org3-peer0", RolePeer)
	revoked := mustIssue(t, f.ca2, "org2-peer1", RolePeer)
	f.msp.SetRevoked([]*big.Int{revoked.Cert.SerialNumber})
	noCert := ClientTLSConfig(f.peer2, f.msp)
	noCert.Certificates = nil
	tls12 := ClientTLSConfig(f.peer2, f.msp)
	tls12.MinVersion, tls12.MaxVersion = tls.VersionTLS12, tls.VersionTLS12

	for _, tc := range []struct {
		name      string
		srv, cli  *tls.Config
		srvWant   error // nil: any error
		cliWant   error
		srvFailed bool // the server is the side that must refuse
	}{
		{"foreign-CA client", ServerTLSConfig(f.peer1, f.msp), ClientTLSConfig(foreign, f.msp), ErrUnknownCA, nil, true},
		{"revoked client", ServerTLSConfig(f.peer1, f.msp), ClientTLSConfig(revoked, f.msp), ErrRevoked, nil, true},
		{"client without certificate", ServerTLSConfig(f.peer1, f.msp), noCert, nil, nil, true},
		{"TLS 1.2 client", ServerTLSConfig(f.peer1, f.msp), tls12, nil, nil, true},
		{"foreign-CA server", ServerTLSConfig(foreign, f.msp), ClientTLSConfig(f.peer2, f.msp), nil, ErrUnknownCA, false},
	} {
		t.Run(tc.name, func(t *testing.T) {
			srv, cli := handshake(t, f.msp, tc.srv, tc.cli)
			if srv.err == nil || cli.err == nil {
				t.Fatalf("handshake succeeded: server %v, client %v", srv.err, cli.err)
			}
			if tc.srvWant != nil && !errors.Is(srv.err, tc.srvWant) {
				t.Fatalf("server error %v, want %v", srv.err, tc.srvWant)
			}
			if tc.cliWant != nil && !errors.Is(cli.err, tc.cliWant) {
				t.Fatalf("client error %v, want %v", cli.err, tc.cliWant)
			}
		})
	}
}
