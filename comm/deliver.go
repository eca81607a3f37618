package comm

import (
	"context"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"sync/atomic"
	"time"

	pb "github.com/blockgossip/blockgossip/protos"
	"google.golang.org/grpc"
	"google.golang.org/protobuf/proto"
)

// ErrInvalidDeliverConfig is wrapped by every error DeliverConfig.Validate
// returns.
var ErrInvalidDeliverConfig = errors.New("invalid deliver client config")

// errOutOfOrder makes the client drop a stream that skipped ahead.
var errOutOfOrder = errors.New("orderer sent a block out of order")

// DeliverConfig tunes the client that pulls blocks from the orderer.
type DeliverConfig struct {
	// BackoffMin is the wait before the first reconnect after a failure.
	BackoffMin time.Duration
	// BackoffMax caps the exponential backoff between reconnects.
	BackoffMax time.Duration
	// ProbeTimeout bounds one height probe (WatchHeight); 0 means 1 s.
	ProbeTimeout time.Duration
}

// DefaultDeliverConfig suits a LAN orderer.
func DefaultDeliverConfig() DeliverConfig {
	return DeliverConfig{
		BackoffMin:   100 * time.Millisecond, // a restarted orderer is back within a few hundred ms; retry quickly
		BackoffMax:   5 * time.Second,        // a long outage costs one dial per endpoint every few seconds
		ProbeTimeout: time.Second,            // a LAN orderer answers in milliseconds; a hung one must not hold the probe
	}
}

// Validate reports the first problem in c, saying what to change.
func (c DeliverConfig) Validate() error {
	if c.BackoffMin <= 0 {
		return fmt.Errorf("%w: BackoffMin is %v; use a positive duration such as 100ms", ErrInvalidDeliverConfig, c.BackoffMin)
	}
	if c.BackoffMax < c.BackoffMin {
		return fmt.Errorf("%w: BackoffMax %v is below BackoffMin %v; raise BackoffMax", ErrInvalidDeliverConfig, c.BackoffMax, c.BackoffMin)
	}
	if c.ProbeTimeout < 0 {
		return fmt.Errorf("%w: ProbeTimeout is %v; use 0 (1 s) or a positive duration", ErrInvalidDeliverConfig, c.ProbeTimeout)
	}
	return nil
}

// DeliverStats counts what a DeliverClient did.
type DeliverStats struct {
	Blocks     uint64 // blocks handed to deliver
	Streams    uint64 // Deliver streams opened
	Failures   uint64 // streams or dials that failed (each is followed by a backoff)
	Duplicates uint64 // blocks below the resume point, skipped
	Probes     uint64 // height probes answered (WatchHeight)
	ProbeFails uint64 // height probes that failed
}

// DeliverClient pulls blocks from the orderer stub's Deliver stream. It asks
// for blocks from a start height, follows new ones as they are cut, and on
// any failure reconnects with exponential backoff to the next endpoint,
// asking for the block after the last one it delivered. It does not verify
// blocks: the gossip pipeline does, before anything leaves the peer.
//
// It satisfies the gossip node's BlockSource; the node runs it only while its
// peer leads the organisation.
type DeliverClient struct {
	cfg       DeliverConfig
	endpoints []string
	dial      []grpc.DialOption
	logger    *slog.Logger

	blocks, streams, failures, duplicates, probes, probeFails atomic.Uint64
}

// NewDeliverClient returns a client for the orderer endpoints ("host:port"),
// dialled with dial (typically DialOptions: mutual TLS and message limits).
// It starts nothing; Run does. A config that fails Validate is replaced by
// DefaultDeliverConfig, with a warning: the client must always be able to
// run. A nil logger discards.
func NewDeliverClient(cfg DeliverConfig, endpoints []string, dial []grpc.DialOption, logger *slog.Logger) *DeliverClient {
	if logger == nil {
		logger = slog.New(slog.DiscardHandler)
	}
	if err := cfg.Validate(); err != nil {
		logger.Warn("deliver client: using default config", "err", err)
		cfg = DefaultDeliverConfig()
	}
	return &DeliverClient{
		cfg:       cfg,
		endpoints: append([]string(nil), endpoints...),
		dial:      append([]grpc.DialOption(nil), dial...),
		logger:    logger,
	}
}

// Stats returns the counters so far. Safe to call from any goroutine.
func (c *DeliverClient) Stats() DeliverStats {
	return DeliverStats{
		Blocks:     c.blocks.Load(),
		Streams:    c.streams.Load(),
		Failures:   c.failures.Load(),
		Duplicates: c.duplicates.Load(),
		Probes:     c.probes.Load(),
		ProbeFails: c.probeFails.Load(),
	}
}

// Run delivers blocks fromHeight, fromHeight+1, ... in order, calling
// deliver on Run's goroutine, one block at a time (deliver may block; that
// applies backpressure to the stream). It returns nil when ctx is done, and
// an error only if it has no endpoint to try.
func (c *DeliverClient) Run(ctx context.Context, fromHeight uint64, deliver func(*pb.Block)) error {
	if len(c.endpoints) == 0 {
		return errNoEndpoints
	}
	next := fromHeight
	backoff := c.cfg.BackoffMin
	for i := 0; ; i = (i + 1) % len(c.endpoints) {
		endpoint := c.endpoints[i]
		got, err := c.stream(ctx, endpoint, next, deliver)
		next += got
		if ctx.Err() != nil {
			return nil
		}
		if got > 0 {
			backoff = c.cfg.BackoffMin // the orderer was fine for a while
		}
		c.failures.Add(1)
		c.logger.Warn("deliver stream ended; trying the next orderer",
			"endpoint", endpoint, "next_block", next, "backoff", backoff, "err", err)
		if !sleep(ctx, backoff) {
			return nil
		}
		backoff = min(2*backoff, c.cfg.BackoffMax)
	}
}

// stream opens one connection and Deliver stream at endpoint asking for
// blocks from next, and delivers until it fails. It returns how many blocks
// it delivered.
func (c *DeliverClient) stream(ctx context.Context, endpoint string, next uint64, deliver func(*pb.Block)) (uint64, error) {
	conn, err := grpc.NewClient(endpoint, c.dial...)
	if err != nil {
		return 0, fmt.Errorf("dial %s: %w", endpoint, err)
	}
	defer conn.Close()
	ctx, cancel := context.WithCancel(ctx)
	defer cancel()
	st, err := pb.NewAtomicBroadcastClient(conn).Deliver(ctx, &pb.DeliverRequest{Start: next})
	if err != nil {
		return 0, fmt.Errorf("open deliver stream at %s: %w", endpoint, err)
	}
	c.streams.Add(1)
	c.logger.Info("deliver stream open", "endpoint", endpoint, "from", next)
	var got uint64
	for {
		resp, err := st.Recv()
		if err == io.EOF {
			return got, fmt.Errorf("orderer %s closed the stream", endpoint)
		}
		if err != nil {
			return got, err
		}
		num, err := blockNumber(resp.GetBlock())
		if err != nil {
			return got, fmt.Errorf("orderer %s: %w", endpoint, err)
		}
		switch {
		case num < next+got:
			c.duplicates.Add(1)
			continue
		case num > next+got:
			return got, fmt.Errorf("%w: got block %d from %s, want %d", errOutOfOrder, num, endpoint, next+got)
		}
		c.blocks.Add(1)
		deliver(resp.GetBlock())
		got++
	}
}

// errNoEndpoints is what Run and WatchHeight return for a client built
// without an orderer address.
var errNoEndpoints = errors.New("deliver client: no orderer endpoints; configure at least one orderer address")

// sleep waits d, or until ctx is done; it reports whether d elapsed.
func sleep(ctx context.Context, d time.Duration) bool {
	t := time.NewTimer(d)
	defer t.Stop()
	select {
	case <-ctx.Done():
		return false
	case <-t.C:
		return true
	}
}

// blockNumber reads a block's number from its header bytes. It is the only
// thing the client needs to know of a block: where to resume.
func blockNumber(b *pb.Block) (uint64, error) {
	if b == nil || len(b.GetHeader()) == 0 {
		return 0, errors.New("deliver response without a block header")
	}
	var h pb.BlockHeader
	if err := proto.Unmarshal(b.GetHeader(), &h); err != nil {
		return 0, fmt.Errorf("unparseable block header: %w", err)
	}
	return h.GetNumber(), nil
}

// WatchHeight asks the orderer for its chain height (the Admin LedgerInfo
// RPC: one small unary call, no block bytes) after each wait() until ctx is
// done, and calls report with each answer, on WatchHeight's goroutine. It
// keeps one connection open between probes and moves to the next endpoint
// when a probe fails. A follower runs it to notice that its leader does not
// deliver what the orderer has. It returns nil when ctx is done, and an
// error only if it has no endpoint to try.
func (c *DeliverClient) WatchHeight(ctx context.Context, wait func() time.Duration, report func(height uint64)) error {
	if len(c.endpoints) == 0 {
		return errNoEndpoints
	}
	timeout := c.cfg.ProbeTimeout
	if timeout == 0 {
		timeout = time.Second
	}
	var conn *grpc.ClientConn
	defer func() {
		if conn != nil {
			conn.Close()
		}
	}()
	for i := 0; ; {
		if !sleep(ctx, wait()) {
			return nil
		}
		endpoint := c.endpoints[i]
		h, err := c.probe(ctx, &conn, endpoint, timeout)
		if ctx.Err() != nil {
			return nil
		}
		if err != nil {
			c.probeFails.Add(1)
			c.logger.Debug("orderer height probe failed; trying the next orderer", "endpoint", endpoint, "err", err)
			if conn != nil {
				conn.Close()
				conn = nil
			}
			i = (i + 1) % len(c.endpoints)
			continue
		}
		c.probes.Add(1)
		report(h)
	}
}

// probe reads the orderer's height at endpoint over *conn, dialling it
// first if needed.
func (c *DeliverClient) probe(ctx context.Context, conn **grpc.ClientConn, endpoint string, timeout time.Duration) (uint64, error) {
	if *conn == nil {
		cc, err := grpc.NewClient(endpoint, c.dial...)
		if err != nil {
			return 0, fmt.Errorf("dial %s: %w", endpoint, err)
		}
		*conn = cc
	}
	ctx, cancel := context.WithTimeout(ctx, timeout)
	defer cancel()
	resp, err := pb.NewAdminClient(*conn).LedgerInfo(ctx, &pb.LedgerInfoRequest{})
	if err != nil {
		return 0, fmt.Errorf("ledger info from %s: %w", endpoint, err)
	}
	return resp.GetHeight(), nil
}
