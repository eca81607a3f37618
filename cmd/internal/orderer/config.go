// Package orderer is blockgossip's orderer stub: a single trusted node that
// accepts transactions from members (AtomicBroadcast.Broadcast), cuts them
// into blocks by count, size or timeout, signs and persists each block, and
// streams the chain to whoever asks (AtomicBroadcast.Deliver), from any
// height and then live. It also answers Admin.LedgerInfo.
//
// It is a stub, not a consensus service: one process, no replication. Its
// chain is nevertheless real: block 0 (genesis) carries the network
// description as its single transaction, every block links to the previous
// one's header hash and is signed with the orderer key pinned in that
// description, and a block is on disk (ledger.Store.Append, synced) before
// any client can see it, so a restart resumes the same chain without a fork.
//
// Every RPC requires a client certificate the network's MSP accepts (mutual
// TLS, checked again per call so a revocation applies to open connections).
//
// Construction starts nothing: New writes the genesis block if the ledger is
// empty; Run owns the block cutter until its context is done; the caller owns
// the gRPC server (see Register).
package orderer

import (
	"errors"
	"fmt"
	"time"
)

// ErrInvalidConfig is wrapped by every error Config.Validate returns.
var ErrInvalidConfig = errors.New("invalid orderer config")

// Config holds the orderer stub's knobs.
type Config struct {
	// BatchMaxTx cuts a block as soon as this many transactions wait.
	BatchMaxTx int
	// BatchMaxBytes cuts a block before its transactions would exceed this
	// many bytes (a single larger transaction makes a block on its own).
	BatchMaxBytes int
	// BatchTimeout cuts whatever waits this long after the first
	// transaction of a batch arrived.
	BatchTimeout time.Duration
	// MaxTxBytes refuses larger transactions.
	MaxTxBytes int
	// MaxTxsPerRequest refuses Broadcast requests carrying more.
	MaxTxsPerRequest int
	// MaxPendingTxs bounds transactions accepted but not yet cut; beyond it
	// Broadcast answers ResourceExhausted and the client should retry.
	MaxPendingTxs int
	// DeliverChunkBytes bounds how many bytes of blocks a Deliver stream
	// reads from the ledger at a time.
	DeliverChunkBytes int
}

// DefaultConfig suits the benchmark's workload (blocks of about 10 KiB at 5
// blocks/s) and a LAN.
func DefaultConfig() Config {
	return Config{
		BatchMaxTx:        10,                     // Fabric's default MaxMessageCount
		BatchMaxBytes:     1 << 20,                // 1 MiB: a large block that still crosses a LAN in ~10 ms
		BatchTimeout:      200 * time.Millisecond, // low latency for a trickle of transactions
		MaxTxBytes:        1 << 20,                // a transaction fits in one block
		MaxTxsPerRequest:  1000,                   // bounds the work and memory of one RPC
		MaxPendingTxs:     100_000,                // about 10,000 blocks queued: far beyond any healthy backlog
		DeliverChunkBytes: 4 << 20,                // a few blocks per ledger read, bounded memory per stream
	}
}

// Validate reports the first problem in c, saying what to change.
func (c Config) Validate() error {
	switch {
	case c.BatchMaxTx < 1:
		return fmt.Errorf("%w: BatchMaxTx is %d; use 1 or more", ErrInvalidConfig, c.BatchMaxTx)
	case c.BatchMaxBytes < 1:
		return fmt.Errorf("%w: BatchMaxBytes is %d; use a positive size such as 1048576", ErrInvalidConfig, c.BatchMaxBytes)
	case c.BatchTimeout <= 0:
		return fmt.Errorf("%w: BatchTimeout is %v; use a positive duration such as 200ms", ErrInvalidConfig, c.BatchTimeout)
	case c.MaxTxBytes < 1 || c.MaxTxBytes > c.BatchMaxBytes:
		return fmt.Errorf("%w: MaxTxBytes is %d; use between 1 and BatchMaxBytes (%d)", ErrInvalidConfig, c.MaxTxBytes, c.BatchMaxBytes)
	case c.MaxTxsPerRequest < 1:
		return fmt.Errorf("%w: MaxTxsPerRequest is %d; use 1 or more", ErrInvalidConfig, c.MaxTxsPerRequest)
	case c.MaxPendingTxs < c.MaxTxsPerRequest:
		return fmt.Errorf("%w: MaxPendingTxs %d is below MaxTxsPerRequest %d: a full request could never be accepted; raise MaxPendingTxs",
			ErrInvalidConfig, c.MaxPendingTxs, c.MaxTxsPerRequest)
	case c.DeliverChunkBytes < 1:
		return fmt.Errorf("%w: DeliverChunkBytes is %d; use a positive size", ErrInvalidConfig, c.DeliverChunkBytes)
	}
	return nil
}
