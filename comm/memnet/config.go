// Package memnet is an in-memory network for tests and simulation. Each
// member joins with a PKI-ID and gets an *Endpoint that implements
// comm.Transport, so protocol code runs unchanged on it.
//
// The network models what a protocol must survive: per-link latency, random
// loss, partitions (Cut, Isolate, Heal), crashes and restarts, and bounded
// receive queues that drop when full. Every random draw comes from a
// per-link generator seeded from Config.Seed, so a run is reproducible given
// the same order of sends.
//
// Delivery after a latency uses time.AfterFunc, so inside a testing/synctest
// bubble it runs on the virtual clock: a test of an hour of protocol takes
// milliseconds and never sleeps on the wall clock. Zero latency delivers
// synchronously inside Send. Messages on one directed link arrive in the
// order they were sent (as on a stream), whatever latency each one drew.
//
// The network starts no goroutine of its own; Close stops every pending
// delivery timer.
package memnet

import (
	"errors"
	"fmt"
	"math/rand/v2"
	"time"

	"github.com/blockgossip/blockgossip/identity"
)

// LatencyFunc returns the one-way latency of a message from one member to
// another. rng is the link's own seeded generator; a LatencyFunc must draw
// randomness only from it, so that runs are reproducible.
type LatencyFunc func(from, to identity.PKIID, rng *rand.Rand) time.Duration

// Fixed is a constant latency on every link.
func Fixed(d time.Duration) LatencyFunc {
	return func(_, _ identity.PKIID, _ *rand.Rand) time.Duration { return d }
}

// Uniform draws each message's latency uniformly from [lo, hi].
func Uniform(lo, hi time.Duration) LatencyFunc {
	if hi <= lo {
		return Fixed(lo)
	}
	span := int64(hi-lo) + 1
	return func(_, _ identity.PKIID, rng *rand.Rand) time.Duration {
		return lo + time.Duration(rng.Int64N(span))
	}
}

// TwoRegions models members spread over regions (datacentres): intra
// between members regionOf puts in the same region, inter otherwise.
func TwoRegions(regionOf func(identity.PKIID) int, intra, inter time.Duration) LatencyFunc {
	return func(from, to identity.PKIID, _ *rand.Rand) time.Duration {
		if regionOf(from) == regionOf(to) {
			return intra
		}
		return inter
	}
}

// Config describes the network. The zero value is a perfect network
// (no latency, no loss) with default queue sizes.
type Config struct {
	// Seed seeds every link's random generator (loss and latency draws).
	Seed uint64
	// Latency is the one-way latency of each message; nil means zero:
	// delivered synchronously inside Send.
	Latency LatencyFunc
	// Loss is the probability in [0, 1] that a message is lost on the wire,
	// on every link that SetLinkLoss has not overridden.
	Loss float64
	// QueueSize is each member's receive queue (the Incoming channel); an
	// envelope arriving at a full queue is dropped and counted. 0 means
	// DefaultConfig's.
	QueueSize int
	// EventQueue is each member's Events channel capacity; events beyond it
	// are dropped and counted. 0 means DefaultConfig's.
	EventQueue int
	// ShareEnvelopes hands every receiver the sender's *pb.Envelope instead
	// of a private copy. Faster for large simulations; receivers must then
	// treat envelopes as read-only.
	ShareEnvelopes bool
}

// DefaultConfig is a perfect network with generous queues.
func DefaultConfig() Config {
	return Config{
		Seed:       1,    // any fixed seed: runs are reproducible by default
		QueueSize:  1024, // a node loop that keeps up never drops; a burst of 1000 pushes fits
		EventQueue: 1024, // one Up and one Down per peer of a 500-member network
	}
}

// Validate rejects a configuration the network cannot honour.
func (c Config) Validate() error {
	var errs []error
	if c.Loss < 0 || c.Loss > 1 {
		errs = append(errs, fmt.Errorf("memnet: Loss %v is not a probability: use a value in [0, 1]", c.Loss))
	}
	if c.QueueSize < 0 {
		errs = append(errs, fmt.Errorf("memnet: QueueSize %d is negative: use 0 for the default", c.QueueSize))
	}
	if c.EventQueue < 0 {
		errs = append(errs, fmt.Errorf("memnet: EventQueue %d is negative: use 0 for the default", c.EventQueue))
	}
	return errors.Join(errs...)
}

func (c Config) withDefaults() Config {
	d := DefaultConfig()
	if c.QueueSize == 0 {
		c.QueueSize = d.QueueSize
	}
	if c.EventQueue == 0 {
		c.EventQueue = d.EventQueue
	}
	return c
}
