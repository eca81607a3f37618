package sim

import pb "github.com/blockgossip/blockgossip/protos"

type evKind uint8

const (
	evMsg      evKind = iota // deliver env from peer from to peer to
	evTick                   // tick peer to
	evCut                    // the orderer cuts the next block
	evCrash                  // peer to crashes
	evRestart                // peer to restarts
	evSubTick                // run peer to's tree and pull timers due (gossip.Peer.Wake)
	evLinkDown               // peer to's stream to crashed peer from broke (Options.CrashNotice)
)

// event is one thing that happens at virtual time at (ns). seq breaks ties
// in scheduling order, which makes the run deterministic.
type event struct {
	at       int64
	seq      uint64
	env      *pb.Envelope
	from, to int32
	epoch    uint32
	kind     evKind
}

func (a *event) before(b *event) bool {
	return a.at < b.at || (a.at == b.at && a.seq < b.seq)
}

// eventHeap is a binary min-heap of events by value (no allocation per
// event beyond the slice).
type eventHeap []event

func (h *eventHeap) push(e event) {
	*h = append(*h, e)
	s := *h
	for i := len(s) - 1; i > 0; {
		parent := (i - 1) / 2
		if !s[i].before(&s[parent]) {
			break
		}
		s[i], s[parent] = s[parent], s[i]
		i = parent
	}
}

func (h *eventHeap) pop() event {
	s := *h
	top := s[0]
	last := len(s) - 1
	s[0] = s[last]
	s[last] = event{}
	s = s[:last]
	for i := 0; ; {
		l, r, m := 2*i+1, 2*i+2, i
		if l < len(s) && s[l].before(&s[m]) {
			m = l
		}
		if r < len(s) && s[r].before(&s[m]) {
			m = r
		}
		if m == i {
			break
		}
		s[i], s[m] = s[m], s[i]
		i = m
	}
	*h = s
	return top
}
