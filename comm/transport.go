// Package comm is the one seam between protocol and network. Transport is
// implemented over mutual-TLS gRPC streams (this package) and by an
// in-memory network for tests and simulation (comm/memnet); both pass the
// same contract tests. comm moves envelopes between authenticated peers; it
// knows nothing of blocks.
package comm

import (
	"context"
	"errors"

	"github.com/blockgossip/blockgossip/identity"
	pb "github.com/blockgossip/blockgossip/protos"
)

// Peer names a remote member: who it is and where to reach it.
type Peer struct {
	ID       identity.PKIID
	Endpoint string
}

// Message is an envelope received from an authenticated peer.
type Message struct {
	// From is the PKI-ID the transport authenticated for the stream the
	// envelope arrived on (for a relayed message, the relayer, not the
	// originator).
	From identity.PKIID
	// Org is From's organisation, as its certificate says.
	Org string
	// Cert is From's DER certificate.
	Cert []byte
	Env  *pb.Envelope
	// Size is the envelope's size on the wire, in bytes.
	Size int
}

// Event tells that a connection to a peer came up or went down.
type Event struct {
	Peer identity.PKIID
	Org  string
	Up   bool
	// Broken, with Up false: the stream failed (the peer's process ended,
	// its host or the network went away) or we ended it (Disconnect, a
	// revoked or expired certificate), not retired for idleness nor
	// replaced by a newer stream. It is news of a peer gone (to us)
	// seconds before the membership can tell. A stream the peer ended on
	// purpose (its Disconnect or Close: a shutdown, a restart) is Broken
	// too: only a retirement half-closes a stream.
	Broken bool
}

// Errors returned by Send. Both mean the envelope was not queued; the
// transport has counted the drop.
var (
	ErrQueueFull = errors.New("send queue full")
	ErrClosed    = errors.New("transport closed")
	ErrUnknown   = errors.New("peer unknown and no endpoint given")
)

// Transport sends envelopes to peers and delivers theirs.
//
// Send never blocks: it queues the envelope on the peer's bounded queue,
// connecting first (asynchronously) if needed, and returns ErrQueueFull
// when the queue is full. The caller must not modify env after Send.
//
// Incoming and Events are read by one goroutine, the node's loop. A slow
// reader makes the transport drop (and count) incoming envelopes; it never
// blocks other peers.
type Transport interface {
	// Self is this member's PKI-ID.
	Self() identity.PKIID
	// Send queues env for delivery to the peer.
	Send(to Peer, env *pb.Envelope) error
	// Connect dials endpoint, completes the handshake and returns the
	// PKI-ID found there. Used for bootstrap peers, whose PKI-IDs are not
	// known in advance.
	Connect(ctx context.Context, endpoint string) (identity.PKIID, error)
	// Disconnect closes any stream to the peer (a penalised or dead peer).
	Disconnect(id identity.PKIID)
	// Reachable tells the transport that the peer is alive again as far
	// as the caller knows (membership readmitted it, or it restarted):
	// dials to it that back off after failures may try again at once.
	// Nothing happens for a peer not backing off.
	Reachable(id identity.PKIID)
	// Incoming delivers received envelopes.
	Incoming() <-chan Message
	// Events delivers connection up and down events.
	Events() <-chan Event
	// Close stops every goroutine the transport started and closes all
	// streams. It is idempotent.
	Close() error
}
