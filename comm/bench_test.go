package comm_test

import (
	"context"
	"fmt"
	"testing"

	"google.golang.org/protobuf/proto"

	"github.com/blockgossip/blockgossip/comm"
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
	env := blockEnvelope(size)
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

// blockEnvelope is a block push carrying one transaction of size bytes,
// as a leader would send it: the receive check decodes all of it.
func blockEnvelope(size int) *pb.Envelope {
	payload, err := proto.Marshal(&pb.GossipMessage{Content: &pb.GossipMessage_Block{Block: &pb.BlockMessage{
		Block: &pb.Block{Header: make([]byte, 80), Data: &pb.BlockData{Transactions: [][]byte{make([]byte, size)}}},
		Hops:  1,
	}}})
	if err != nil {
		panic(err)
	}
	return &pb.Envelope{Payload: payload}
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

// BenchmarkCheckEnvelope is the receive path's validation of one envelope.
func BenchmarkCheckEnvelope(b *testing.B) {
	for _, size := range []int{1 << 10, 1 << 20} {
		env := blockEnvelope(size)
		b.Run(byteSize(size), func(b *testing.B) {
			b.SetBytes(int64(proto.Size(env)))
			for b.Loop() {
				if err := comm.CheckEnvelope(env); err != nil {
					b.Fatal(err)
				}
			}
		})
	}
}

func byteSize(n int) string {
	if n >= 1<<20 {
		return fmt.Sprintf("%dMiB", n>>20)
	}
	return fmt.Sprintf("%dKiB", n>>10)
}
