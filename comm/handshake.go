package comm

import (
	"bytes"
	"context"
	"crypto/sha256"
	"crypto/tls"
	"errors"
	"fmt"
	"time"

	"google.golang.org/grpc/credentials"
	"google.golang.org/grpc/peer"
	"google.golang.org/protobuf/proto"

	"github.com/blockgossip/blockgossip/identity"
	pb "github.com/blockgossip/blockgossip/protos"
)

// Handshake and stream errors. Handshake failures wrap ErrHandshake and
// one more specific cause (these, or identity's ErrUnknownCA, ErrRevoked,
// ErrBadSignature...).
var (
	ErrHandshake        = errors.New("handshake refused")
	ErrHandshakeTimeout = errors.New("no handshake within HandshakeTimeout: the peer is stalled or not a blockgossip peer")
	ErrNotHandshake     = errors.New("first message is not a well-formed ConnEstablish")
	ErrTLSBinding       = errors.New("handshake names a TLS certificate other than the one the TLS session presented")
	ErrPKIIDMismatch    = errors.New("handshake PKI-ID is not the SHA-256 of its certificate")
	ErrNotPeer          = errors.New("only peer certificates may open gossip streams: issue the node a peer certificate")
	ErrWrongPeer        = errors.New("reached another member than the PKI-ID dialled: the endpoint changed hands; refresh membership")
	ErrNoTLS            = errors.New("stream is not over TLS: serve the transport with comm.NewServer")
	ErrBadMessage       = errors.New("malformed or unknown message")
	ErrDuplicateStream  = errors.New("a preferred stream to this peer already exists")

	errDrainTimeout = errors.New("superseded stream not drained in time")
	errDisconnected = errors.New("disconnected")
)

// makeHandshake builds our signed ConnEstablish for a stream on which we
// present tlsCert.
func makeHandshake(self *identity.Identity, tlsCertDER []byte, now time.Time) (*pb.Envelope, error) {
	h := sha256.Sum256(tlsCertDER)
	payload, err := proto.Marshal(&pb.GossipMessage{Content: &pb.GossipMessage_Handshake{Handshake: &pb.ConnEstablish{
		PkiId:             self.ID.Bytes(),
		Certificate:       self.CertDER,
		TlsCertHash:       h[:],
		TimestampUnixNano: now.UnixNano(),
	}}})
	if err != nil {
		return nil, err
	}
	return &pb.Envelope{Payload: payload, Signature: self.Sign(payload)}, nil
}

// verifyHandshake checks a remote handshake received on a stream whose
// TLS session presented remoteTLS: TLS binding first (cheap, and it is what
// stops a relayed handshake), then signature and membership, then the
// PKI-ID and the peer role. want, if not zero, is the member we meant to
// reach.
func verifyHandshake(msp *identity.MSP, env *pb.Envelope, remoteTLS tls.ConnectionState, want identity.PKIID) (*identity.Member, error) {
	fail := func(err error) (*identity.Member, error) {
		return nil, fmt.Errorf("%w: %w", ErrHandshake, err)
	}
	msg := new(pb.GossipMessage)
	if env == nil || proto.Unmarshal(env.GetPayload(), msg) != nil || msg.GetHandshake() == nil {
		return fail(ErrNotHandshake)
	}
	h := msg.GetHandshake()
	if len(remoteTLS.PeerCertificates) == 0 {
		return fail(ErrNoTLS)
	}
	seen := sha256.Sum256(remoteTLS.PeerCertificates[0].Raw)
	if !bytes.Equal(seen[:], h.GetTlsCertHash()) {
		return fail(ErrTLSBinding)
	}
	mem, err := msp.VerifySignature(h.GetCertificate(), env.GetPayload(), env.GetSignature())
	if err != nil {
		return fail(err)
	}
	id, err := identity.PKIIDFromBytes(h.GetPkiId())
	if err != nil || id != mem.ID {
		return fail(ErrPKIIDMismatch)
	}
	if mem.Role != identity.RolePeer {
		return fail(fmt.Errorf("%w (got role %q)", ErrNotPeer, mem.Role))
	}
	if !want.IsZero() && id != want {
		return fail(fmt.Errorf("%w: wanted %v, found %v", ErrWrongPeer, want, id))
	}
	return mem, nil
}

// tlsState returns the TLS session state of a stream's context.
func tlsState(ctx context.Context) (tls.ConnectionState, error) {
	p, ok := peer.FromContext(ctx)
	if !ok {
		return tls.ConnectionState{}, ErrNoTLS
	}
	info, ok := p.AuthInfo.(credentials.TLSInfo)
	if !ok {
		return tls.ConnectionState{}, ErrNoTLS
	}
	return info.State, nil
}

type recvResult struct {
	env *pb.Envelope
	err error
}

// recvWithin receives one envelope, giving up after d or when ctx ends.
// On giving up, the caller must end the stream: that is what makes the
// helper goroutine's Recv return. The goroutine is counted in t.wg.
func (t *GRPC) recvWithin(ctx context.Context, d time.Duration, recv func() (*pb.Envelope, error)) (*pb.Envelope, error) {
	ch := make(chan recvResult, 1)
	if !t.goTracked(func() {
		env, err := recv()
		ch <- recvResult{env, err}
	}) {
		return nil, ErrClosed
	}
	timer := time.NewTimer(d)
	defer timer.Stop()
	select {
	case r := <-ch:
		return r.env, r.err
	case <-timer.C:
		return nil, ErrHandshakeTimeout
	case <-ctx.Done():
		return nil, ctx.Err()
	case <-t.ctx.Done():
		return nil, ErrClosed
	}
}
