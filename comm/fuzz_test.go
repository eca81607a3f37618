package comm

import (
	"crypto/sha256"
	"crypto/tls"
	"crypto/x509"
	"errors"
	"testing"
	"time"

	"google.golang.org/protobuf/proto"

	"github.com/blockgossip/blockgossip/identity"
	pb "github.com/blockgossip/blockgossip/protos"
)

// FuzzCheckEnvelope feeds arbitrary payload bytes to the post-handshake
// envelope vetting. Contract: no panic; a rejection wraps ErrBadMessage;
// an accepted payload never decodes to a handshake and, when it decodes at
// all, carries some content.
func FuzzCheckEnvelope(f *testing.F) {
	for _, m := range []*pb.GossipMessage{
		{Content: &pb.GossipMessage_Alive{Alive: &pb.AliveMessage{Member: &pb.Member{Endpoint: "x:1", Org: "org1"}, Incarnation: 3}}},
		{Content: &pb.GossipMessage_PullDigest{PullDigest: &pb.PullDigest{Nonce: 9, Ranges: []*pb.BlockRange{{Start: 1, End: 4}}}}},
		{Content: &pb.GossipMessage_Block{Block: &pb.BlockMessage{Block: &pb.Block{Header: []byte{8, 1}}, Hops: 2}}},
		{Content: &pb.GossipMessage_Handshake{Handshake: &pb.ConnEstablish{PkiId: make([]byte, 32)}}},
		{Content: &pb.GossipMessage_Prune{Prune: &pb.Prune{}}},
	} {
		b, err := proto.Marshal(m)
		if err != nil {
			f.Fatal(err)
		}
		f.Add(b)
	}
	f.Add([]byte{})
	f.Add([]byte{0xff, 0xff, 0xff})
	f.Fuzz(func(t *testing.T, payload []byte) {
		err := checkEnvelope(&pb.Envelope{Payload: payload})
		if err != nil {
			if !errors.Is(err, ErrBadMessage) {
				t.Fatalf("rejection %q does not wrap ErrBadMessage", err)
			}
			return
		}
		msg := new(pb.GossipMessage)
		if proto.Unmarshal(payload, msg) != nil {
			return // deeper damage is the interpreter's to find
		}
		if msg.GetHandshake() != nil {
			t.Fatalf("accepted a handshake after the stream was established: %x", payload)
		}
		if msg.Content == nil {
			t.Fatalf("accepted a payload with no content: %x", payload)
		}
	})
}

// handshakeFixture is a member whose TLS certificate a stream presented,
// and a member of an org our MSP does not trust.
type handshakeFixture struct {
	msp     *identity.MSP
	self    *identity.Identity
	foreign *identity.Identity
	state   tls.ConnectionState
}

func newHandshakeFixture(tb testing.TB) *handshakeFixture {
	tb.Helper()
	ca, err := identity.NewCA("org1", 0)
	if err != nil {
		tb.Fatal(err)
	}
	other, err := identity.NewCA("evil", 0)
	if err != nil {
		tb.Fatal(err)
	}
	self, err := ca.NewIdentity("org1-peer0", identity.RolePeer)
	if err != nil {
		tb.Fatal(err)
	}
	foreign, err := other.NewIdentity("evil-peer0", identity.RolePeer)
	if err != nil {
		tb.Fatal(err)
	}
	msp, err := identity.NewMSP(map[string]*x509.Certificate{"org1": ca.Cert})
	if err != nil {
		tb.Fatal(err)
	}
	return &handshakeFixture{msp: msp, self: self, foreign: foreign,
		state: tls.ConnectionState{PeerCertificates: []*x509.Certificate{self.Cert}}}
}

// FuzzVerifyHandshake feeds a stream's first envelope, as a remote peer
// controls it, to verifyHandshake on a stream whose TLS session presented
// self's certificate. mode picks the signature: 0 the raw fuzzed bytes,
// 1 self's real signature over the payload (so the fuzzer explores past the
// signature check), 2 a foreign-CA member's signature. Contract: no panic;
// rejections wrap ErrHandshake; an accepted handshake names self, is
// signed by self and binds the presented TLS certificate.
func FuzzVerifyHandshake(f *testing.F) {
	fx := newHandshakeFixture(f)
	good, err := makeHandshake(fx.self, fx.self.CertDER, time.Unix(1e9, 0))
	if err != nil {
		f.Fatal(err)
	}
	evil, err := makeHandshake(fx.foreign, fx.self.CertDER, time.Unix(1e9, 0))
	if err != nil {
		f.Fatal(err)
	}
	f.Add(good.Payload, good.Signature, uint8(0))
	f.Add(good.Payload, []byte(nil), uint8(1))
	f.Add(evil.Payload, []byte(nil), uint8(2))
	f.Add([]byte{0x0a, 0x00}, []byte{1, 2, 3}, uint8(1))
	f.Fuzz(func(t *testing.T, payload, sig []byte, mode uint8) {
		switch mode % 3 {
		case 1:
			sig = fx.self.Sign(payload)
		case 2:
			sig = fx.foreign.Sign(payload)
		}
		mem, err := verifyHandshake(fx.msp, &pb.Envelope{Payload: payload, Signature: sig}, fx.state, identity.PKIID{})
		if err != nil {
			if !errors.Is(err, ErrHandshake) {
				t.Fatalf("rejection %q does not wrap ErrHandshake", err)
			}
			return
		}
		if mem.ID != fx.self.ID {
			t.Fatalf("accepted a handshake as %v, the stream presented %v", mem.ID, fx.self.ID)
		}
		msg := new(pb.GossipMessage)
		if proto.Unmarshal(payload, msg) != nil || msg.GetHandshake() == nil {
			t.Fatalf("accepted a payload that is no handshake: %x", payload)
		}
		h := sha256.Sum256(fx.self.Cert.Raw)
		if string(msg.GetHandshake().GetTlsCertHash()) != string(h[:]) {
			t.Fatalf("accepted a handshake bound to another TLS certificate")
		}
		// The same bytes on a stream expecting someone else are refused.
		if _, err := verifyHandshake(fx.msp, &pb.Envelope{Payload: payload, Signature: sig}, fx.state, fx.foreign.ID); !errors.Is(err, ErrWrongPeer) {
			t.Fatalf("handshake from %v accepted when %v was dialled: %v", fx.self.ID, fx.foreign.ID, err)
		}
	})
}
