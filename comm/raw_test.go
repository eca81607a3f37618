package comm_test

import (
	"context"
	"fmt"
	"testing"
	"time"

	"github.com/stretchr/testify/require"
	"google.golang.org/grpc"
	"google.golang.org/protobuf/proto"

	"github.com/blockgossip/blockgossip/comm"
	"github.com/blockgossip/blockgossip/identity"
	pb "github.com/blockgossip/blockgossip/protos"
)

// rawCodec sends []byte as is and protobuf messages marshalled: a client
// that can put anything on a Gossip stream.
type rawCodec struct{}

func (rawCodec) Name() string { return "proto" }

func (rawCodec) Marshal(v any) ([]byte, error) {
	switch m := v.(type) {
	case []byte:
		return m, nil
	case proto.Message:
		return proto.Marshal(m)
	}
	return nil, fmt.Errorf("rawCodec: cannot marshal %T", v)
}

func (rawCodec) Unmarshal(data []byte, v any) error {
	switch m := v.(type) {
	case *[]byte:
		*m = append([]byte(nil), data...)
		return nil
	case proto.Message:
		return proto.Unmarshal(data, m)
	}
	return fmt.Errorf("rawCodec: cannot unmarshal into %T", v)
}

// rawStream is a hand-driven Gossip stream, as a hostile or broken peer
// would drive it.
type rawStream struct {
	grpc.ClientStream
	cancel func()
}

// openRaw dials addr with id's TLS identity (trusting msp) and opens a
// Gossip stream on which the test sends whatever it likes.
func openRaw(t *testing.T, id *identity.Identity, msp *identity.MSP, addr string) *rawStream {
	t.Helper()
	return openRawWith(t, comm.DefaultConfig(), id, msp, addr)
}

// openRawWith is openRaw dialling with cfg's options (its window, say).
func openRawWith(t *testing.T, cfg comm.Config, id *identity.Identity, msp *identity.MSP, addr string) *rawStream {
	t.Helper()
	cc, err := grpc.NewClient(addr, comm.DialOptions(cfg, id, msp)...)
	require.NoError(t, err)
	ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
	cs, err := cc.NewStream(ctx, &pb.Gossip_ServiceDesc.Streams[0], pb.Gossip_Stream_FullMethodName, grpc.ForceCodec(rawCodec{}))
	require.NoError(t, err)
	rs := &rawStream{ClientStream: cs, cancel: func() { cancel(); _ = cc.Close() }}
	t.Cleanup(rs.cancel)
	return rs
}

// handshake completes a genuine handshake as id and returns the server's.
func (rs *rawStream) handshake(t *testing.T, id *identity.Identity) *pb.Envelope {
	t.Helper()
	hs, err := comm.MakeHandshake(id, id.CertDER)
	require.NoError(t, err)
	require.NoError(t, rs.SendMsg(hs))
	got := new(pb.Envelope)
	require.NoError(t, rs.RecvMsg(got))
	return got
}

// recvErr reads until the stream fails and returns the error.
func (rs *rawStream) recvErr() error {
	for {
		var b []byte
		if err := rs.RecvMsg(&b); err != nil {
			return err
		}
	}
}
