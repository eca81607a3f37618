package comm_test

import (
	"context"
	"testing"

	"google.golang.org/protobuf/proto"

	"github.com/blockgossip/blockgossip/comm"
	"github.com/blockgossip/blockgossip/comm/transporttest"
	pb "github.com/blockgossip/blockgossip/protos"
)

// benchThroughput streams b.N envelopes of about size bytes from one peer
// to another over mutual-TLS gRPC on 127.0.0.1, keeping at most window in
// flight so that nothing is dropped.
func benchThroughput(b *testing.B, size, window int) {
	pn := newPeerNet(b)
	cfg := comm.DefaultConfig()
	cfg.SendQueue, cfg.RecvQueue = window, window
	a, c := pn.node(0, &cfg), pn.node(1, &cfg)
	env := &pb.Envelope{Payload: transporttest.Env(0).Payload, Signature: make([]byte, size)}
	require := func(err error) {
		if err != nil {
			b.Fatal(err)
		}
	}
	require(a.tr.Send(c.peer(), env)) // connect before timing
	<-c.tr.Incoming()

	credits := make(chan struct{}, window)
	done := make(chan struct{})
	go func() {
		defer close(done)
		for range b.N {
			<-c.tr.Incoming()
			<-credits
		}
	}()
	b.SetBytes(int64(proto.Size(env)))
	b.ResetTimer()
	for range b.N {
		credits <- struct{}{}
		require(a.tr.Send(c.peer(), env))
	}
	<-done
	b.StopTimer()
	b.ReportMetric(float64(b.N)/b.Elapsed().Seconds(), "msgs/s")
}

func BenchmarkThroughput1KiB(b *testing.B) { benchThroughput(b, 1<<10, 256) }
func BenchmarkThroughput1MiB(b *testing.B) { benchThroughput(b, 1<<20, 16) }

// BenchmarkHandshake measures a fresh connection: TCP, TLS 1.3 with client
// certificates, and the signed handshake both ways.
func BenchmarkHandshake(b *testing.B) {
	pn := newPeerNet(b)
	a, c := pn.node(0, nil), pn.node(1, nil)
	ctx := context.Background()
	b.ResetTimer()
	for range b.N {
		id, err := a.tr.Connect(ctx, c.addr)
		if err != nil || id != c.id.ID {
			b.Fatal(id, err)
		}
		a.tr.Disconnect(id)
	}
}
