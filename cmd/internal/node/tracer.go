package node

import (
	"log/slog"
	"sync/atomic"

	"github.com/blockgossip/blockgossip/gossip"
	"github.com/blockgossip/blockgossip/identity"
)

// tracer turns the gossip node's protocol events into log lines and keeps
// the highest block number heard of, so /readyz can tell how far behind
// the peer is. The Node calls it from its own goroutine; readers use the
// atomic.
type tracer struct {
	log     *slog.Logger
	maxSeen atomic.Uint64 // highest block number heard of, plus one (0: none)
}

var _ gossip.Tracer = (*tracer)(nil)

func (t *tracer) saw(number uint64) {
	for {
		cur := t.maxSeen.Load()
		if number+1 <= cur || t.maxSeen.CompareAndSwap(cur, number+1) {
			return
		}
	}
}

// heardHeight is the chain height the network has shown this peer.
func (t *tracer) heardHeight() uint64 { return t.maxSeen.Load() }

func (t *tracer) MemberAlive(id identity.PKIID, incarnation uint64, readmitted bool) {
	t.log.Info("member alive", "peer", id, "incarnation", incarnation, "readmitted", readmitted)
}

func (t *tracer) MemberDead(id identity.PKIID) { t.log.Warn("member declared dead", "peer", id) }

func (t *tracer) BlockAccepted(from identity.PKIID, number uint64, via gossip.Via, hops uint32) {
	t.saw(number)
}

func (t *tracer) BlockDuplicate(from identity.PKIID, number uint64, via gossip.Via) { t.saw(number) }

func (t *tracer) BlockRejected(from identity.PKIID, number uint64, via gossip.Via, err error) {
	t.log.Warn("block rejected", "from", from, "number", number, "via", via, "err", err)
}

func (t *tracer) BlockForwarded(number uint64, hops uint32, targets int) {}

func (t *tracer) GraftSent(to identity.PKIID, number uint64, repeat, reshapes bool) {
	t.log.Debug("graft sent", "to", to, "number", number, "repeat", repeat, "reshapes", reshapes)
}

func (t *tracer) BlockDropped(number uint64, err error) {
	t.saw(number)
	t.log.Debug("block dropped", "number", number, "err", err)
}

func (t *tracer) BlockCommitted(number uint64, via gossip.Via, hops uint32) {
	t.saw(number)
	t.log.Debug("block committed", "number", number, "via", via, "hops", hops)
}

func (t *tracer) PeerPenalised(id identity.PKIID, offences int, banned bool) {
	t.log.Warn("peer penalised for an invalid block", "peer", id, "offences", offences, "banned", banned)
}

func (t *tracer) LeaderChanged(leader identity.PKIID, self bool) {
	t.log.Info("org leader changed", "leader", leader, "self", self)
}

func (t *tracer) MessageRejected(from identity.PKIID, err error) {
	t.log.Debug("message rejected", "from", from, "err", err)
}

func (t *tracer) LinkBroken(id identity.PKIID, parent bool) {
	t.log.Info("tree link broken: neighbour dropped", "peer", id, "parent", parent)
}
