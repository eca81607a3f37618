package memnet

import (
	"github.com/blockgossip/blockgossip/comm"
	"github.com/blockgossip/blockgossip/identity"
)

// Counter counts messages and their bytes (proto.Size of the envelope),
// as the gRPC transport's counters do.
type Counter = comm.Counter

// MemberStats counts one member's traffic since it first joined (restarts
// keep counting). Over the whole network, once nothing is in flight:
// Sent == Received + Dropped + Lost.
type MemberStats struct {
	// Sent counts every Send the member made while alive.
	Sent Counter
	// Received counts envelopes put on the member's Incoming queue.
	Received Counter
	// Dropped counts envelopes that reached the member while its Incoming
	// queue was full.
	Dropped Counter
	// Lost counts envelopes the member sent that the wire lost: unknown,
	// crashed or partitioned peer, random loss, or a connection torn down
	// while they were in flight.
	Lost Counter
	// DroppedEvents counts events lost because Events was full.
	DroppedEvents uint64
}

func (s MemberStats) plus(t MemberStats) MemberStats {
	return MemberStats{
		Sent:          s.Sent.Plus(t.Sent),
		Received:      s.Received.Plus(t.Received),
		Dropped:       s.Dropped.Plus(t.Dropped),
		Lost:          s.Lost.Plus(t.Lost),
		DroppedEvents: s.DroppedEvents + t.DroppedEvents,
	}
}

// Stats is a snapshot of the network's counters.
type Stats struct {
	Members map[identity.PKIID]MemberStats
	Total   MemberStats
	// InFlight is the number of messages waiting out their latency.
	InFlight int
}

// Stats returns a snapshot of every member's counters.
func (n *Network) Stats() Stats {
	n.mu.Lock()
	defer n.mu.Unlock()
	s := Stats{Members: make(map[identity.PKIID]MemberStats, len(n.stats))}
	for id, m := range n.stats {
		s.Members[id] = *m
		s.Total = s.Total.plus(*m)
	}
	for _, ls := range n.links {
		s.InFlight += len(ls.pending)
	}
	return s
}

func (n *Network) stat(id identity.PKIID) *MemberStats {
	s, ok := n.stats[id]
	if !ok {
		s = new(MemberStats)
		n.stats[id] = s
	}
	return s
}
