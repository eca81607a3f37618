package comm_test

import (
	"context"
	"crypto/rand"
	"crypto/sha256"
	"crypto/x509"
	"errors"
	"net"
	"os"
	"testing"
	"time"

	"github.com/stretchr/testify/require"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/status"
	"google.golang.org/protobuf/encoding/protowire"
	"google.golang.org/protobuf/proto"

	"github.com/blockgossip/blockgossip/comm"
	"github.com/blockgossip/blockgossip/comm/transporttest"
	"github.com/blockgossip/blockgossip/identity"
	pb "github.com/blockgossip/blockgossip/protos"
)

// liveLink connects a well-behaved peer to srv and returns it; the tests
// below check that whatever else happens, this link keeps working.
func liveLink(t *testing.T, pn *peerNet, srv *gnode) *gnode {
	t.Helper()
	good := pn.node(1, nil)
	ping(t, good, srv, 1)
	return good
}

// ping sends a tagged envelope from a to b and waits for it.
func ping(t *testing.T, a, b *gnode, tag int) {
	t.Helper()
	require.NoError(t, a.tr.Send(b.peer(), transporttest.Env(tag)))
	m := transporttest.Recv(t, b.tr)
	require.Equal(t, a.id.ID, m.From)
	require.Equal(t, tag, transporttest.Tag(t, m.Env))
}

func signedHandshake(t *testing.T, signer *identity.Identity, h *pb.ConnEstablish) *pb.Envelope {
	payload, err := proto.Marshal(&pb.GossipMessage{Content: &pb.GossipMessage_Handshake{Handshake: h}})
	require.NoError(t, err)
	return &pb.Envelope{Payload: payload, Signature: signer.Sign(payload)}
}

func TestForgedHandshakesAreRefused(t *testing.T) {
	pn := newPeerNet(t)
	srv := pn.node(0, nil)
	good := liveLink(t, pn, srv)
	attacker, victim := pn.ident(0), pn.ident(1)
	orderer, err := pn.cas[0].NewIdentity("org1-orderer", identity.RoleOrderer)
	require.NoError(t, err)
	hash := func(der []byte) []byte { h := sha256.Sum256(der); return h[:] }

	cases := []struct {
		name string
		env  func() *pb.Envelope
		want string // the refusal's reason, as the status message says it
	}{
		{"names another PKI-ID", func() *pb.Envelope {
			return signedHandshake(t, attacker, &pb.ConnEstablish{PkiId: victim.ID.Bytes(), Certificate: attacker.CertDER, TlsCertHash: hash(attacker.CertDER)})
		}, comm.ErrPKIIDMismatch.Error()},
		{"claims another member's certificate", func() *pb.Envelope {
			return signedHandshake(t, attacker, &pb.ConnEstablish{PkiId: victim.ID.Bytes(), Certificate: victim.CertDER, TlsCertHash: hash(attacker.CertDER)})
		}, identity.ErrBadSignature.Error()},
		{"relays another member's genuine handshake", func() *pb.Envelope {
			env, err := comm.MakeHandshake(victim, victim.CertDER)
			require.NoError(t, err)
			return env
		}, comm.ErrTLSBinding.Error()},
		{"wrong TLS certificate hash", func() *pb.Envelope {
			env, err := comm.MakeHandshake(attacker, victim.CertDER)
			require.NoError(t, err)
			return env
		}, comm.ErrTLSBinding.Error()},
		{"bad signature", func() *pb.Envelope {
			env, err := comm.MakeHandshake(attacker, attacker.CertDER)
			require.NoError(t, err)
			env.Signature[0] ^= 1
			return env
		}, identity.ErrBadSignature.Error()},
		{"not a peer", func() *pb.Envelope {
			env, err := comm.MakeHandshake(orderer, orderer.CertDER)
			require.NoError(t, err)
			return env
		}, comm.ErrNotPeer.Error()},
		{"not a handshake", func() *pb.Envelope { return transporttest.Env(3) }, comm.ErrNotHandshake.Error()},
		{"garbage", func() *pb.Envelope { return &pb.Envelope{Payload: []byte{0xff, 0xff, 0xff}} }, comm.ErrNotHandshake.Error()},
	}
	for i, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			tlsID := attacker
			if tc.name == "not a peer" {
				tlsID = orderer
			}
			rs := openRaw(t, tlsID, pn.msp(), srv.addr)
			require.NoError(t, rs.SendMsg(tc.env()))
			err := rs.recvErr()
			require.Equal(t, codes.PermissionDenied, status.Code(err), "%v", err)
			require.Contains(t, status.Convert(err).Message(), tc.want)
			require.Equal(t, uint64(i+1), srv.tr.Stats().HandshakeFailures)
			ping(t, good, srv, 10+i) // the server keeps serving
		})
	}
	_, known := srv.tr.ActiveDialer(attacker.ID)
	require.False(t, known, "no refused handshake ever became a stream")
	require.Equal(t, comm.Event{Peer: good.id.ID, Org: "org2", Up: true}, transporttest.NextEvent(t, srv.tr))
	select {
	case ev := <-srv.tr.Events():
		t.Fatalf("unexpected event %+v", ev)
	default:
	}
}

func TestSilentPeerTimesOutInHandshake(t *testing.T) {
	pn := newPeerNet(t)
	cfg := comm.DefaultConfig()
	cfg.HandshakeTimeout = 100 * time.Millisecond
	srv := pn.node(0, &cfg)
	rs := openRaw(t, pn.ident(0), pn.msp(), srv.addr)
	require.NoError(t, rs.SendMsg([]byte{})) // opens the stream; an empty message is no handshake...
	err := rs.recvErr()
	require.Equal(t, codes.PermissionDenied, status.Code(err), "%v", err)

	rs = openRaw(t, pn.ident(0), pn.msp(), srv.addr) // ...whereas silence waits out the timeout
	err = rs.recvErr()
	require.Equal(t, codes.DeadlineExceeded, status.Code(err), "%v", err)
	require.Contains(t, err.Error(), comm.ErrHandshakeTimeout.Error())
}

func TestDialerRefusesAnotherPKIIDThanDialled(t *testing.T) {
	pn := newPeerNet(t)
	a, b, c := pn.node(0, nil), pn.node(1, nil), pn.node(0, nil)
	// Membership says c lives at b's address (say, b took over the port).
	require.NoError(t, a.tr.Send(comm.Peer{ID: c.id.ID, Endpoint: b.addr}, transporttest.Env(1)))
	require.Eventually(t, func() bool { return a.tr.Stats().HandshakeFailures == 1 }, 20*time.Second, time.Millisecond)
	_, up := a.tr.ActiveDialer(c.id.ID)
	require.False(t, up)
	select {
	case m := <-b.tr.Incoming():
		t.Fatalf("b got an envelope meant for c: %v", m)
	default:
	}
	// Dialled under its true identity, b answers.
	ping(t, a, b, 2)
}

func TestForeignCAClientIsRefused(t *testing.T) {
	pn := newPeerNet(t)
	srv := pn.node(0, nil)
	good := liveLink(t, pn, srv)

	foreignCA, err := identity.NewCA("evilorg", 0)
	require.NoError(t, err)
	foreign, err := foreignCA.NewIdentity("evil-peer", identity.RolePeer)
	require.NoError(t, err)
	// The intruder trusts our CAs (so it would accept the server) and its own.
	m, err := identity.NewMSP(map[string]*x509.Certificate{"org1": pn.cas[0].Cert, "org2": pn.cas[1].Cert, "evilorg": foreignCA.Cert})
	require.NoError(t, err)
	intruder := pn.serve(foreign, m, comm.DefaultConfig())
	ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
	defer cancel()
	_, err = intruder.tr.Connect(ctx, srv.addr)
	require.Error(t, err)
	require.NotErrorIs(t, err, context.DeadlineExceeded, "refused by TLS, not timed out")
	_, up := srv.tr.ActiveDialer(foreign.ID)
	require.False(t, up)
	ping(t, good, srv, 2)
}

func TestRandomTCPGarbageDoesNotDisturbServer(t *testing.T) {
	pn := newPeerNet(t)
	srv := pn.node(0, nil)
	good := liveLink(t, pn, srv)
	rng := make([]byte, 4096)
	for i := range 5 {
		_, _ = rand.Read(rng)
		conn, err := net.Dial("tcp", srv.addr)
		require.NoError(t, err)
		_, _ = conn.Write(rng)
		require.NoError(t, conn.SetReadDeadline(time.Now().Add(20*time.Second)))
		_, err = conn.Read(make([]byte, 1<<16))
		for err == nil {
			_, err = conn.Read(make([]byte, 1<<16))
		}
		require.False(t, errors.Is(err, os.ErrDeadlineExceeded), "server hung up on garbage")
		_ = conn.Close()
		ping(t, good, srv, 2+i)
	}
}

// TestBadMessagesCloseOnlyTheirStream sends, after a genuine handshake,
// each kind of bad message; each closes its own stream, counted, while
// another peer's stream carries on.
func TestBadMessagesCloseOnlyTheirStream(t *testing.T) {
	pn := newPeerNet(t)
	cfg := comm.DefaultConfig()
	cfg.MaxMessageBytes = 64 << 10
	srv := pn.node(0, &cfg)
	good := liveLink(t, pn, srv)

	unknownField := protowire.AppendTag(nil, 99, protowire.BytesType)
	unknownField = protowire.AppendBytes(unknownField, []byte("x"))
	hs, err := comm.MakeHandshake(good.id, good.id.CertDER)
	require.NoError(t, err)
	random := make([]byte, 512)
	_, _ = rand.Read(random)
	cases := []struct {
		name string
		msg  any
		code codes.Code
	}{
		{"bytes that are no Envelope", []byte{0x0a, 0xff, 0xff, 0xff, 0xff, 0x0f}, codes.Internal},
		{"random payload", &pb.Envelope{Payload: random}, codes.InvalidArgument},
		{"empty payload", &pb.Envelope{}, codes.InvalidArgument},
		{"unknown message type", &pb.Envelope{Payload: unknownField}, codes.InvalidArgument},
		{"malformed nested message", &pb.Envelope{Payload: []byte{0x2a, 0x03, 0x0a, 0x05, 0x01}}, codes.InvalidArgument},
		{"second handshake", hs, codes.InvalidArgument},
		{"oversized", &pb.Envelope{Payload: make([]byte, 100<<10)}, codes.ResourceExhausted},
	}
	for i, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			peer := pn.ident(i % 2)
			rs := openRaw(t, peer, pn.msp(), srv.addr)
			rs.handshake(t, peer)
			require.NoError(t, rs.SendMsg(tc.msg))
			err := rs.recvErr()
			require.Equal(t, tc.code, status.Code(err), "%v", err)
			require.Eventually(t, func() bool { return srv.tr.Stats().Peers[peer.ID].BadStreams == 1 }, 20*time.Second, time.Millisecond)
			_, up := srv.tr.ActiveDialer(peer.ID)
			require.False(t, up)
			ping(t, good, srv, 100+i)
			ping(t, srv, good, 200+i)
		})
	}
	require.Equal(t, uint64(len(cases)), srv.tr.Stats().Total.BadStreams)
	_, up := srv.tr.ActiveDialer(good.id.ID)
	require.True(t, up)
}
