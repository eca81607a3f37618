package bench

import (
	"context"
	"sync"
	"sync/atomic"

	"github.com/blockgossip/blockgossip/comm"
	"github.com/blockgossip/blockgossip/gossip"
	"github.com/blockgossip/blockgossip/identity"
	pb "github.com/blockgossip/blockgossip/protos"
	"google.golang.org/protobuf/encoding/protowire"
	"google.golang.org/protobuf/proto"
)

// counters are one peer's received traffic. Writers are the peer's
// counting transport, deliver source and tracer; the runner reads them.
type counters struct {
	blockBytes   atomic.Uint64 // block bodies, from peers and the orderer
	controlBytes atomic.Uint64 // every other envelope
	ordererBytes atomic.Uint64 // DeliverResponses from the orderer
	duplicates   atomic.Uint64 // copies of blocks already accepted
	grafts       atomic.Uint64 // grafts sent (gossip.Tracer.GraftSent)
	graftRepeats atomic.Uint64 // ... for a block grafted before
	treeGrafts   atomic.Uint64 // ... that made an eager neighbour
	takeovers    atomic.Uint64 // times this peer became its org's leader
}

// snapshot sums counters.
func snapshot(cs []*counters) Traffic {
	var t Traffic
	for _, c := range cs {
		t.BlockBytes += c.blockBytes.Load()
		t.ControlBytes += c.controlBytes.Load()
		t.OrdererEgressBytes += c.ordererBytes.Load()
		t.Duplicates += c.duplicates.Load()
		t.Grafts += c.grafts.Load()
		t.GraftRepeats += c.graftRepeats.Load()
		t.TreeGrafts += c.treeGrafts.Load()
		t.LeaderTakeovers += c.takeovers.Load()
	}
	return t
}

// minus is t - u, field by field (u taken earlier than t).
func (t Traffic) minus(u Traffic) Traffic {
	return Traffic{
		BlockBytes:         t.BlockBytes - u.BlockBytes,
		ControlBytes:       t.ControlBytes - u.ControlBytes,
		OrdererEgressBytes: t.OrdererEgressBytes - u.OrdererEgressBytes,
		Duplicates:         t.Duplicates - u.Duplicates,
		Grafts:             t.Grafts - u.Grafts,
		GraftRepeats:       t.GraftRepeats - u.GraftRepeats,
		TreeGrafts:         t.TreeGrafts - u.TreeGrafts,
		LeaderTakeovers:    t.LeaderTakeovers - u.LeaderTakeovers,
	}
}

// The GossipMessage oneof fields that carry block bodies (gossip.proto).
const (
	fieldBlock         = 5  // BlockMessage
	fieldPullResponse  = 9  // PullResponse
	fieldStateResponse = 11 // StateResponse
)

// carriesBlocks tells from an envelope's payload, without decoding it,
// whether it carries block bodies: a GossipMessage has one oneof field set,
// so its first tag names the message type. Anything unreadable is control.
func carriesBlocks(env *pb.Envelope) bool {
	num, _, n := protowire.ConsumeTag(env.GetPayload())
	if n < 0 {
		return false
	}
	return num == fieldBlock || num == fieldPullResponse || num == fieldStateResponse
}

// countingTransport wraps a peer's transport and counts what it receives,
// by class, before the Node sees it. gossip has no per-message tracer
// event, so the bench counts here, in its own package. One forwarder
// goroutine, started by start and stopped by Close, moves envelopes from
// the inner transport to the Node.
type countingTransport struct {
	comm.Transport
	c    *counters
	in   chan comm.Message
	stop chan struct{}
	done chan struct{}
	once sync.Once
	// started is set by start: only then is there a forwarder to wait for.
	started atomic.Bool
}

func newCountingTransport(t comm.Transport, c *counters) *countingTransport {
	return &countingTransport{
		Transport: t, c: c,
		in:   make(chan comm.Message, 1024),
		stop: make(chan struct{}),
		done: make(chan struct{}),
	}
}

// start runs the forwarder until Close.
func (t *countingTransport) start() {
	t.started.Store(true)
	go func() {
		defer close(t.done)
		src := t.Transport.Incoming()
		for {
			select {
			case m, ok := <-src:
				if !ok {
					return
				}
				if carriesBlocks(m.Env) {
					t.c.blockBytes.Add(uint64(m.Size))
				} else {
					t.c.controlBytes.Add(uint64(m.Size))
				}
				select {
				case t.in <- m:
				case <-t.stop:
					return
				}
			case <-t.stop:
				return
			}
		}
	}()
}

// Incoming delivers the counted envelopes. It is never closed: the Node
// must stop before the transport does.
func (t *countingTransport) Incoming() <-chan comm.Message { return t.in }

// Close stops the forwarder (if started) and closes the inner transport.
func (t *countingTransport) Close() error {
	t.once.Do(func() { close(t.stop) })
	if t.started.Load() {
		<-t.done
	}
	return t.Transport.Close()
}

// countingSource wraps a peer's orderer deliver client and counts the
// DeliverResponse bytes each block cost the orderer.
type countingSource struct {
	src gossip.BlockSource
	c   *counters
}

func (s countingSource) Run(ctx context.Context, from uint64, deliver func(*pb.Block)) error {
	return s.src.Run(ctx, from, func(b *pb.Block) {
		n := uint64(proto.Size(&pb.DeliverResponse{Block: b}))
		s.c.blockBytes.Add(n)
		s.c.ordererBytes.Add(n)
		deliver(b)
	})
}

// dupTracer counts duplicate block copies, grafts and leadership
// takeovers.
type dupTracer struct {
	gossip.NopTracer
	c *counters
}

func (t dupTracer) BlockDuplicate(identity.PKIID, uint64, gossip.Via) { t.c.duplicates.Add(1) }

func (t dupTracer) GraftSent(_ identity.PKIID, _ uint64, repeat, reshapes bool) {
	t.c.grafts.Add(1)
	if repeat {
		t.c.graftRepeats.Add(1)
	}
	if reshapes {
		t.c.treeGrafts.Add(1)
	}
}

func (t dupTracer) LeaderChanged(_ identity.PKIID, self bool) {
	if self {
		t.c.takeovers.Add(1)
	}
}
