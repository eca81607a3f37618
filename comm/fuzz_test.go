package comm_test

import (
	"testing"

	"github.com/stretchr/testify/require"
	"google.golang.org/protobuf/proto"

	"github.com/blockgossip/blockgossip/comm"
	pb "github.com/blockgossip/blockgossip/protos"
)

// Every content a peer may send after the handshake passes the receive
// check; the handshake itself does not.
func TestCheckEnvelopeAcceptsEveryGossipContent(t *testing.T) {
	contents := []*pb.GossipMessage{
		{Content: &pb.GossipMessage_Alive{Alive: &pb.AliveMessage{}}},
		{Content: &pb.GossipMessage_MembershipRequest{MembershipRequest: &pb.MembershipRequest{}}},
		{Content: &pb.GossipMessage_MembershipResponse{MembershipResponse: &pb.MembershipResponse{}}},
		{Content: &pb.GossipMessage_Block{Block: &pb.BlockMessage{Hops: 1}}},
		{Content: &pb.GossipMessage_PullHello{PullHello: &pb.PullHello{Nonce: 1}}},
		{Content: &pb.GossipMessage_PullDigest{PullDigest: &pb.PullDigest{}}},
		{Content: &pb.GossipMessage_PullRequest{PullRequest: &pb.PullRequest{}}},
		{Content: &pb.GossipMessage_PullResponse{PullResponse: &pb.PullResponse{}}},
		{Content: &pb.GossipMessage_StateRequest{StateRequest: &pb.StateRequest{}}},
		{Content: &pb.GossipMessage_StateResponse{StateResponse: &pb.StateResponse{}}},
		{Content: &pb.GossipMessage_Leadership{Leadership: &pb.LeadershipMessage{}}},
		{Content: &pb.GossipMessage_Ihave{Ihave: &pb.IHave{}}},
		{Content: &pb.GossipMessage_Graft{Graft: &pb.Graft{}}},
		{Content: &pb.GossipMessage_Prune{Prune: &pb.Prune{}}},
	}
	for _, c := range contents {
		payload, err := proto.Marshal(c)
		require.NoError(t, err)
		require.NoError(t, comm.CheckEnvelope(&pb.Envelope{Payload: payload}), "%T", c.GetContent())
	}
	payload, err := proto.Marshal(&pb.GossipMessage{Content: &pb.GossipMessage_Handshake{Handshake: &pb.ConnEstablish{}}})
	require.NoError(t, err)
	require.ErrorIs(t, comm.CheckEnvelope(&pb.Envelope{Payload: payload}), comm.ErrBadMessage)
}

// FuzzCheckEnvelope: any bytes are either accepted as a GossipMessage that
// decodes, or refused with ErrBadMessage; never a panic.
func FuzzCheckEnvelope(f *testing.F) {
	for _, seed := range [][]byte{nil, {0x2a, 0x00}, {0x0a, 0x00}, {0xff}, {0x2a, 0x05, 0x01},
		[]byte("2\b10000000"),                         // malformed inside a known content
		[]byte("2\x0f0\xff000\x80\xff\xff\xff000000"), // field number beyond 2^29-1
	} {
		f.Add(seed)
	}
	f.Fuzz(func(t *testing.T, b []byte) {
		err := comm.CheckEnvelope(&pb.Envelope{Payload: b})
		if err == nil {
			require.NoError(t, proto.Unmarshal(b, new(pb.GossipMessage)), "accepted bytes decode")
		} else {
			require.ErrorIs(t, err, comm.ErrBadMessage)
		}
	})
}
