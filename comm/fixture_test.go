package comm_test

import (
	"crypto/x509"
	"fmt"
	"log/slog"
	"net"
	"os"
	"testing"

	"github.com/stretchr/testify/require"
	"google.golang.org/grpc"

	"github.com/blockgossip/blockgossip/comm"
	"github.com/blockgossip/blockgossip/identity"
)

// peerNet mints identities from two org CAs and runs gRPC nodes on
// 127.0.0.1, each with its own MSP (so revoking at one node is local).
type peerNet struct {
	t   testing.TB
	cas []*identity.CA
	n   int
}

func newPeerNet(t testing.TB) *peerNet {
	t.Helper()
	pn := &peerNet{t: t}
	for _, org := range []string{"org1", "org2"} {
		ca, err := identity.NewCA(org, 0)
		require.NoError(t, err)
		pn.cas = append(pn.cas, ca)
	}
	return pn
}

// ident issues a fresh peer identity in org index org (0 or 1).
func (pn *peerNet) ident(org int) *identity.Identity {
	pn.n++
	ca := pn.cas[org]
	id, err := ca.NewIdentity(fmt.Sprintf("%s-peer%d", ca.Org, pn.n), identity.RolePeer)
	require.NoError(pn.t, err)
	return id
}

func (pn *peerNet) msp() *identity.MSP {
	cas := map[string]*x509.Certificate{}
	for _, ca := range pn.cas {
		cas[ca.Org] = ca.Cert
	}
	m, err := identity.NewMSP(cas)
	require.NoError(pn.t, err)
	return m
}

// gnode is one member: its transport served by its own gRPC server.
type gnode struct {
	id     *identity.Identity
	msp    *identity.MSP
	tr     *comm.GRPC
	srv    *grpc.Server
	addr   string
	served chan struct{}
}

func (n *gnode) peer() comm.Peer { return comm.Peer{ID: n.id.ID, Endpoint: n.addr} }

// node starts a member of org with cfg (nil: defaults).
func (pn *peerNet) node(org int, cfg *comm.Config) *gnode {
	c := comm.DefaultConfig()
	if cfg != nil {
		c = *cfg
	}
	return pn.serve(pn.ident(org), pn.msp(), c)
}

func (pn *peerNet) serve(id *identity.Identity, msp *identity.MSP, cfg comm.Config) *gnode {
	t := pn.t
	var logger *slog.Logger
	if os.Getenv("COMM_TEST_LOG") != "" {
		logger = slog.New(slog.NewTextHandler(os.Stderr, &slog.HandlerOptions{Level: slog.LevelDebug}))
	}
	tr, err := comm.NewGRPC(cfg, id, msp, logger)
	require.NoError(t, err)
	lis, err := net.Listen("tcp", "127.0.0.1:0")
	require.NoError(t, err)
	n := &gnode{id: id, msp: msp, tr: tr, srv: comm.NewServer(cfg, id, msp), addr: lis.Addr().String(), served: make(chan struct{})}
	tr.Register(n.srv)
	go func() {
		defer close(n.served)
		_ = n.srv.Serve(lis)
	}()
	t.Cleanup(n.stop)
	return n
}

// stop closes the transport, then the server; idempotent.
func (n *gnode) stop() {
	_ = n.tr.Close()
	n.srv.Stop()
	<-n.served
}
