package comm

import (
	"errors"
	"fmt"
	"time"
)

// ErrInvalidConfig wraps every Config.Validate complaint.
var ErrInvalidConfig = errors.New("invalid comm config")

// Config tunes the gRPC transport, its server and its dial options.
type Config struct {
	// MaxMessageBytes bounds one envelope on the wire, both ways. A larger
	// incoming envelope closes the stream that carried it.
	MaxMessageBytes int
	// SendQueue is the number of envelopes queued per peer; Send drops
	// (ErrQueueFull) beyond it rather than block.
	SendQueue int
	// RecvQueue is the capacity of Incoming, shared by all peers; envelopes
	// arriving while it is full are dropped and counted.
	RecvQueue int
	// EventQueue is the capacity of Events; events beyond it are dropped.
	EventQueue int
	// ConnectTimeout bounds dialling a peer and opening the stream.
	ConnectTimeout time.Duration
	// HandshakeTimeout bounds the exchange of handshakes on a new stream,
	// and how long a superseded stream may take to drain.
	HandshakeTimeout time.Duration
	// BackoffMin and BackoffMax bound the wait before redialling a peer
	// whose last dial failed; it doubles on each failure.
	BackoffMin, BackoffMax time.Duration
	// WindowBytes is the HTTP/2 flow-control window of a stream (the
	// connection's is twice that): how much may be in flight unread.
	WindowBytes int32
	// MaxConcurrentStreams bounds the streams a remote may open on one
	// connection.
	MaxConcurrentStreams uint32
	// KeepaliveTime is how long a connection may stay silent before a ping
	// checks it; KeepaliveTimeout is how long the ping may go unanswered
	// before the connection is declared dead.
	KeepaliveTime, KeepaliveTimeout time.Duration
	// KeepaliveMinTime is the most frequent ping a server tolerates from a
	// client; must not exceed KeepaliveTime or members would evict each
	// other.
	KeepaliveMinTime time.Duration
	// IdleTimeout retires a stream that carried no envelope in either
	// direction for this long: the side that dialled it drains it and the
	// next envelope either way opens a new one. 0 keeps streams until they
	// fail. A peer never told our endpoint cannot dial us back: after such
	// a silence its Send waits for our next dial, or fails with ErrUnknown.
	IdleTimeout time.Duration
}

// DefaultConfig suits a LAN or WAN network of up to a few thousand peers
// moving blocks of up to a few MiB.
func DefaultConfig() Config {
	return Config{
		MaxMessageBytes:      16 << 20,               // a 1 MiB block fits many times over, and pull responses carry several
		SendQueue:            256,                    // ~25 s of blocks at 10/s per peer, yet bounded memory for a stuck one
		RecvQueue:            4096,                   // a burst from 100 peers of 40 envelopes each before the node loop catches up
		EventQueue:           1024,                   // one Up and one Down for each of 500 peers between two reads
		ConnectTimeout:       3 * time.Second,        // a healthy peer answers a TCP+TLS dial in milliseconds; a dead one must not hold a slot long
		HandshakeTimeout:     3 * time.Second,        // two signed messages on a fresh stream; longer means a stalled or hostile peer
		BackoffMin:           100 * time.Millisecond, // a restarting peer is back quickly
		BackoffMax:           10 * time.Second,       // a dead peer costs one dial per 10 s at most
		WindowBytes:          4 << 20,                // a few 1 MiB blocks in flight: ~1.3x the 1 MiB throughput of gRPC's adaptive window here
		MaxConcurrentStreams: 16,                     // gossip needs one stream per connection (two while a duplicate settles)
		KeepaliveTime:        30 * time.Second,       // find a silently dead peer within a minute without chatter on busy links
		KeepaliveTimeout:     10 * time.Second,       // a live peer answers a ping within a round trip
		KeepaliveMinTime:     15 * time.Second,       // half of KeepaliveTime: tolerate clients pinging a little early
		IdleTimeout:          60 * time.Second,       // neighbours talk every tick and keep theirs; a peer silent for a minute costs one redial (ms) when next needed
	}
}

// Validate reports every field that cannot work, each naming what to do.
func (c Config) Validate() error {
	var errs []error
	bad := func(format string, args ...any) {
		errs = append(errs, fmt.Errorf("%w: "+format, append([]any{ErrInvalidConfig}, args...)...))
	}
	if c.MaxMessageBytes < 1<<10 {
		bad("MaxMessageBytes %d is under 1 KiB: blocks would not fit", c.MaxMessageBytes)
	}
	if c.SendQueue < 1 {
		bad("SendQueue %d: need at least 1", c.SendQueue)
	}
	if c.RecvQueue < 1 {
		bad("RecvQueue %d: need at least 1", c.RecvQueue)
	}
	if c.EventQueue < 1 {
		bad("EventQueue %d: need at least 1", c.EventQueue)
	}
	if c.ConnectTimeout <= 0 || c.HandshakeTimeout <= 0 {
		bad("ConnectTimeout %v and HandshakeTimeout %v must be positive", c.ConnectTimeout, c.HandshakeTimeout)
	}
	if c.BackoffMin <= 0 || c.BackoffMax < c.BackoffMin {
		bad("backoff [%v, %v]: need 0 < BackoffMin <= BackoffMax", c.BackoffMin, c.BackoffMax)
	}
	if c.WindowBytes < 64<<10 {
		bad("WindowBytes %d is under HTTP/2's 64 KiB minimum", c.WindowBytes)
	}
	if c.MaxConcurrentStreams < 2 {
		bad("MaxConcurrentStreams %d: need 2 (one stream, plus one while a duplicate dial settles)", c.MaxConcurrentStreams)
	}
	if c.KeepaliveTime <= 0 || c.KeepaliveTimeout <= 0 || c.KeepaliveMinTime <= 0 {
		bad("keepalive times must be positive")
	}
	if c.IdleTimeout < 0 {
		bad("IdleTimeout %v is negative: use 0 to keep idle streams, or how long a stream may stay silent", c.IdleTimeout)
	}
	if c.KeepaliveMinTime > c.KeepaliveTime {
		bad("KeepaliveMinTime %v exceeds KeepaliveTime %v: servers would evict clients for pinging", c.KeepaliveMinTime, c.KeepaliveTime)
	}
	return errors.Join(errs...)
}
