package comm

import (
	"sync/atomic"

	"github.com/blockgossip/blockgossip/identity"
)

// Counter counts envelopes and their bytes (proto.Size of the envelope).
type Counter struct {
	Msgs  uint64
	Bytes uint64
}

// Add counts one envelope of size bytes.
func (c *Counter) Add(size int) {
	c.Msgs++
	c.Bytes += uint64(size)
}

// Plus returns the sum of two counters.
func (c Counter) Plus(d Counter) Counter {
	return Counter{Msgs: c.Msgs + d.Msgs, Bytes: c.Bytes + d.Bytes}
}

// PeerStats counts the traffic with one peer (or, in Stats.Total, all).
//
// Every envelope given to Send ends up in exactly one of the sender's Sent
// or Dropped (once its queue empties), and every envelope Sent in exactly
// one of the receiver's Received or Dropped, unless a connection fails
// with it in flight (a crash, a cut network: never a duplicate dial or an
// orderly close). So over a quiet, healthy network the Send calls made
// equal the sum of Received and Dropped over all members.
type PeerStats struct {
	// Sent counts envelopes written to the peer's stream.
	Sent Counter
	// Received counts envelopes from the peer handed to Incoming.
	Received Counter
	// Dropped counts envelopes given up on: Send with a full queue or to
	// an unknown peer, a queue discarded by Disconnect, Close or an
	// exhausted redial backoff, or an arrival while Incoming was full.
	Dropped Counter
	// BadStreams counts streams closed because the peer broke the
	// protocol: malformed, oversized or unknown messages, or a failed
	// handshake.
	BadStreams uint64
}

func (s PeerStats) plus(t PeerStats) PeerStats {
	return PeerStats{
		Sent:       s.Sent.Plus(t.Sent),
		Received:   s.Received.Plus(t.Received),
		Dropped:    s.Dropped.Plus(t.Dropped),
		BadStreams: s.BadStreams + t.BadStreams,
	}
}

// Stats is a snapshot of the transport's counters.
type Stats struct {
	// Peers holds the counters of every peer ever exchanged with.
	Peers map[identity.PKIID]PeerStats
	// Total sums Peers and what could not be attributed to a peer (a Send
	// to an unknown peer, a handshake that failed before naming one).
	Total PeerStats
	// HandshakeFailures counts streams refused during the handshake, in
	// either direction.
	HandshakeFailures uint64
	// EventsDropped counts events lost because Events was full.
	EventsDropped uint64
	// Streams is how many streams are open now, active or draining.
	Streams int
	// StreamsReaped counts streams this transport dialled and retired
	// after Config.IdleTimeout without an envelope either way.
	StreamsReaped uint64
}

// counters is the live, atomically updated form of PeerStats.
type counters struct {
	sentMsgs, sentBytes         atomic.Uint64
	receivedMsgs, receivedBytes atomic.Uint64
	droppedMsgs, droppedBytes   atomic.Uint64
	badStreams                  atomic.Uint64
}

func (c *counters) sent(size int) {
	c.sentMsgs.Add(1)
	c.sentBytes.Add(uint64(size))
}

func (c *counters) received(size int) {
	c.receivedMsgs.Add(1)
	c.receivedBytes.Add(uint64(size))
}

func (c *counters) dropped(size int) {
	c.droppedMsgs.Add(1)
	c.droppedBytes.Add(uint64(size))
}

func (c *counters) snapshot() PeerStats {
	return PeerStats{
		Sent:       Counter{c.sentMsgs.Load(), c.sentBytes.Load()},
		Received:   Counter{c.receivedMsgs.Load(), c.receivedBytes.Load()},
		Dropped:    Counter{c.droppedMsgs.Load(), c.droppedBytes.Load()},
		BadStreams: c.badStreams.Load(),
	}
}

// Stats returns a snapshot of the counters.
func (t *GRPC) Stats() Stats {
	t.mu.Lock()
	defer t.mu.Unlock()
	s := Stats{
		Peers:             make(map[identity.PKIID]PeerStats, len(t.stats)),
		Total:             t.unattributed.snapshot(),
		HandshakeFailures: t.handshakeFailures.Load(),
		EventsDropped:     t.eventsDropped.Load(),
		Streams:           len(t.conns),
		StreamsReaped:     t.reapedStreams.Load(),
	}
	for id, c := range t.stats {
		ps := c.snapshot()
		s.Peers[id] = ps
		s.Total = s.Total.plus(ps)
	}
	return s
}

// countersLocked returns the peer's counters, creating them. t.mu held.
func (t *GRPC) countersLocked(id identity.PKIID) *counters {
	c, ok := t.stats[id]
	if !ok {
		c = new(counters)
		t.stats[id] = c
	}
	return c
}
