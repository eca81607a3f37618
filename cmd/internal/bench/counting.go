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
	links        atomic.Uint64 // distinct peers heard from so far
	// messages counts envelopes received by the GossipMessage oneof field
	// that names their type; index 0 is anything unreadable.
	messages [maxMessageField + 1]atomic.Uint64
}

// maxMessageField bounds the GossipMessage oneof field numbers counted one
// by one (gossip.proto); higher ones count as unreadable.
const maxMessageField = 31

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
		t.Links += c.links.Load()
		for f := range c.messages {
			if n := c.messages[f].Load(); n > 0 {
				if t.Messages == nil {
					t.Messages = map[string]uint64{}
				}
				t.Messages[messageName(f)] += n
			}
		}
	}
	return t
}

// messageName is the gossip.proto name of the GossipMessage oneof field f
// ("block", "ihave", ...), or "unreadable".
func messageName(f int) string {
	if f <= 0 || f > maxMessageField {
		return "unreadable"
	}
	return messageNames()[f]
}

// messageNames are the names of fields 0..maxMessageField, looked up once.
var messageNames = sync.OnceValue(func() (names [maxMessageField + 1]string) {
	fields := (&pb.GossipMessage{}).ProtoReflect().Descriptor().Fields()
	for f := range names {
		names[f] = "unreadable"
		if fd := fields.ByNumber(protowire.Number(f)); f > 0 && fd != nil {
			names[f] = string(fd.Name())
		}
	}
	return names
})

// ClassifyMessage names the GossipMessage type of env (gossip.proto's
// oneof field name: "block", "ihave", ...; "unreadable" if none) without
// decoding it, and tells whether such messages carry block bodies. The
// simulator counts its traffic with it, as the bench does.
func ClassifyMessage(env *pb.Envelope) (name string, blocks bool) {
	f := messageField(env)
	return messageName(int(f)), carriesBlocks(f)
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
		Links:              t.Links - u.Links,
		LinksHeld:          t.Links,
		Messages:           minusCounts(t.Messages, u.Messages),
	}
}

// minusCounts is t - u key by key, without the keys that come to 0.
func minusCounts(t, u map[string]uint64) map[string]uint64 {
	var d map[string]uint64
	for k, n := range t {
		if n > u[k] {
			if d == nil {
				d = map[string]uint64{}
			}
			d[k] = n - u[k]
		}
	}
	return d
}

// The GossipMessage oneof fields that carry block bodies (gossip.proto).
const (
	fieldBlock         = 5  // BlockMessage
	fieldPullResponse  = 9  // PullResponse
	fieldStateResponse = 11 // StateResponse
)

// messageField tells from an envelope's payload, without decoding it, the
// GossipMessage oneof field set in it: a GossipMessage has one, so its
// first tag names the message type. 0 means unreadable.
func messageField(env *pb.Envelope) protowire.Number {
	num, _, n := protowire.ConsumeTag(env.GetPayload())
	if n < 0 {
		return 0
	}
	return num
}

// carriesBlocks tells whether messages of field f carry block bodies.
// Anything unreadable is control.
func carriesBlocks(f protowire.Number) bool {
	return f == fieldBlock || f == fieldPullResponse || f == fieldStateResponse
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
		heard := map[identity.PKIID]bool{}
		for {
			select {
			case m, ok := <-src:
				if !ok {
					return
				}
				f := messageField(m.Env)
				if f > maxMessageField {
					f = 0
				}
				t.c.messages[f].Add(1)
				if !heard[m.From] {
					heard[m.From] = true
					t.c.links.Store(uint64(len(heard)))
				}
				if carriesBlocks(f) {
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
