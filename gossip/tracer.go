package gossip

import "github.com/blockgossip/blockgossip/identity"

// Tracer observes protocol events, one method per event. The Peer calls it
// synchronously from its own goroutine: implementations must not block and
// must not call back into the Peer. Metrics, logs and tests hang off it.
type Tracer interface {
	// MemberAlive: a member was heard of for the first time, or came back
	// after being declared dead (readmitted with a newer alive).
	MemberAlive(id identity.PKIID, incarnation uint64, readmitted bool)
	// MemberDead: a member was silent for longer than the expiration.
	MemberDead(id identity.PKIID)
	// BlockAccepted: the first valid copy of a block arrived.
	BlockAccepted(from identity.PKIID, number uint64, via Via, hops uint32)
	// BlockDuplicate: a copy of a block already accepted arrived.
	BlockDuplicate(from identity.PKIID, number uint64, via Via)
	// BlockRejected: a block failed verification (or linkage) and was
	// neither committed nor forwarded.
	BlockRejected(from identity.PKIID, number uint64, via Via, err error)
	// BlockForwarded: a block was pushed to targets peers with hop count hops.
	BlockForwarded(number uint64, hops uint32, targets int)
	// GraftSent: a graft asked peer to for block number, announced but
	// missing. repeat: the block had been grafted before (the hedge's
	// further announcers, or a retry after no answer); reshapes: the graft
	// makes peer to an eager neighbour (Plumtree's graft), rather than
	// asking for this block alone (Graft then Prune: the tree stays as it
	// was).
	GraftSent(to identity.PKIID, number uint64, repeat, reshapes bool)
	// BlockDropped: a valid block could not be buffered (beyond the reorder
	// window).
	BlockDropped(number uint64, err error)
	// BlockCommitted: a block was appended to the ledger.
	BlockCommitted(number uint64, via Via, hops uint32)
	// PeerPenalised: a peer sent an invalid block; banned says it is now
	// disconnected and ignored.
	PeerPenalised(id identity.PKIID, offences int, banned bool)
	// LeaderChanged: the org's leader as this peer sees it changed.
	LeaderChanged(leader identity.PKIID, self bool)
	// MessageRejected: an envelope was malformed or badly signed.
	MessageRejected(from identity.PKIID, err error)
	// LinkBroken: the stream to tree neighbour id broke and the link was
	// dropped (Peer.LinkDown); parent: id was our parent in the tree.
	LinkBroken(id identity.PKIID, parent bool)
}

// NopTracer ignores every event. Embed it to implement only some methods.
type NopTracer struct{}

var _ Tracer = NopTracer{}

func (NopTracer) MemberAlive(identity.PKIID, uint64, bool)          {}
func (NopTracer) MemberDead(identity.PKIID)                         {}
func (NopTracer) BlockAccepted(identity.PKIID, uint64, Via, uint32) {}
func (NopTracer) BlockDuplicate(identity.PKIID, uint64, Via)        {}
func (NopTracer) BlockRejected(identity.PKIID, uint64, Via, error)  {}
func (NopTracer) BlockForwarded(uint64, uint32, int)                {}
func (NopTracer) GraftSent(identity.PKIID, uint64, bool, bool)      {}
func (NopTracer) BlockDropped(uint64, error)                        {}
func (NopTracer) BlockCommitted(uint64, Via, uint32)                {}
func (NopTracer) PeerPenalised(identity.PKIID, int, bool)           {}
func (NopTracer) LeaderChanged(identity.PKIID, bool)                {}
func (NopTracer) MessageRejected(identity.PKIID, error)             {}
func (NopTracer) LinkBroken(identity.PKIID, bool)                   {}
