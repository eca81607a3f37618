// Package sim is the engine of `blockgossip sim`: it runs the real gossip
// protocol cores (gossip.Peer: membership, push, pull, election) of
// thousands of peers in one goroutine, over a simulated network with a
// virtual clock, and measures how blocks spread.
//
// A single-threaded discrete-event loop owns everything: a heap of events
// ordered by (virtual time, sequence number) — message deliveries, peer
// ticks, orderer cuts, crashes and restarts. Every random draw (latency,
// loss, churn, block contents, each peer's own generator) comes from
// generators seeded by Options.Seed, so a seed fixes the run, and the JSON
// report, byte for byte. Nothing sleeps and no socket is opened.
//
// What it simplifies, to scale to 10,000 peers: peers start from converged
// membership (seeded views instead of a join phase); with Options.View > 0
// (the default) each peer knows a bounded, random, roughly symmetric view of
// its org (gossip.Config.MaxView, a real protocol option); signatures are
// not checked (gossip.NopCrypto and a stub orderer verifier; data hashes
// are still checked); every peer's ledger is a height over the one shared
// chain; the orderer injects each block into a fixed leader per org (the
// first peer of the org; election still runs and sends its messages, but
// does not pick who is fed), and leaders never crash.
package sim

import (
	"errors"
	"fmt"
	"time"

	"github.com/blockgossip/blockgossip/cmd/internal/bench"
	"github.com/blockgossip/blockgossip/gossip"
)

// Profile names; the same as `blockgossip bench`'s.
const (
	ProfileDefault = bench.ProfileDefault // gossip.DefaultConfig()
	ProfileFabric  = bench.ProfileFabric  // gossip.FabricConfig()
)

// Profiles lists the profiles the simulator knows, in the order they run.
var Profiles = []string{ProfileDefault, ProfileFabric}

// ErrInvalidOptions is wrapped by every Options.Validate failure.
var ErrInvalidOptions = errors.New("invalid sim options")

// Options describe one simulated workload; every profile runs the same.
type Options struct {
	// Peers is the number of peers, orderer excluded.
	Peers int
	// Orgs is the number of organisations; peer i belongs to org i%Orgs.
	// Push stays within an org; the orderer feeds one leader per org.
	Orgs int
	// Blocks is how many blocks the orderer cuts.
	Blocks int
	// BlockSize is the transaction bytes per block (one transaction).
	BlockSize int
	// Rate is how many blocks per virtual second the orderer cuts.
	Rate float64
	// Latency is the one-way latency distribution (see ParseLatency).
	Latency string
	// Loss is the probability that a message is lost.
	Loss float64
	// Churn is the fraction of peers that crash and restart during the run.
	Churn float64
	// CrashNotice models crashes as a process's end, not a host's: the
	// kernel closes a crashed peer's sockets, and each of its tree
	// neighbours is told its stream broke (gossip.Peer.LinkDown) one
	// network delay after the crash, without loss. Off, a crash is silent
	// (a host lost, or cut off), and only the membership's expiry tells.
	CrashNotice bool
	// View is each peer's membership view (gossip.Config.MaxView); 0 is
	// full membership, which costs N^2 state and suits small N only.
	View int
	// Seed fixes every random draw of the run.
	Seed uint64
	// Warmup is untimed virtual time before the first cut.
	Warmup time.Duration
	// Drain is how long, in virtual time after the last cut, the run waits
	// for blocks to reach every peer before it gives up on them.
	Drain time.Duration

	// trace, when set (tests only), logs every event touching its peers.
	trace *msgTrace
	// editConfig, when set (tests only), edits the profile's config before
	// the run. A field, not a package variable: runs of a sweep go at once
	// and share nothing.
	editConfig func(*gossip.Config)
}

// DefaultOptions is a small run of the workload.
func DefaultOptions() Options {
	return Options{
		Peers:     1000,               // big enough for hops to matter, seconds to run
		Orgs:      1,                  // push is per org: one org is the hardest case for fan-out
		Blocks:    20,                 // enough blocks for a p99 over blocks to mean something
		BlockSize: 10 << 10,           // 10 KiB, as bench and the design's Fabric measurements
		Rate:      5,                  // 5 blocks/s, as bench
		Latency:   "uniform:5ms,15ms", // a LAN-to-metro spread; see ParseLatency for two-regions
		View:      32,                 // HyParView-like: ~log2(10,000)+ent; 8x the default fanout
		Seed:      1,                  // any fixed seed: runs are reproducible
		Warmup:    time.Second,        // views are seeded converged: one second lets election and pull settle
		Drain:     30 * time.Second,   // far beyond Fabric's 4 s pull: a block missing after this is lost
	}
}

// maxFullMembership is the largest network simulated with full membership
// (View 0): its state grows as Peers^2.
const maxFullMembership = 2000

// invalid is an ErrInvalidOptions error saying what is wrong.
func invalid(format string, args ...any) error {
	return fmt.Errorf("%w: %s", ErrInvalidOptions, fmt.Sprintf(format, args...))
}

// Validate reports the first option out of range.
func (o Options) Validate() error {
	switch {
	case o.Peers < 2:
		return invalid("--peers %d: need at least 2", o.Peers)
	case o.Orgs < 1 || o.Orgs > o.Peers:
		return invalid("--orgs %d: need 1 to --peers", o.Orgs)
	case o.Blocks < 1:
		return invalid("--blocks %d: need at least 1", o.Blocks)
	case o.BlockSize < 1 || o.BlockSize > 1<<20:
		return invalid("--block-size %d: use 1 byte to 1 MiB", o.BlockSize)
	case !(o.Rate > 0):
		return invalid("--rate %g: must be positive", o.Rate)
	case !(o.Loss >= 0 && o.Loss < 1):
		return invalid("--loss %g: a fraction in [0, 1), e.g. 0.05 for 5%%", o.Loss)
	case !(o.Churn >= 0 && o.Churn <= 1):
		return invalid("--churn %g: a fraction of peers in [0, 1], e.g. 0.1", o.Churn)
	case o.View < 0:
		return invalid("--view %d: 0 (full membership) or a view size", o.View)
	case o.View == 0 && o.Peers > maxFullMembership:
		return invalid("--view 0 (full membership) with %d peers needs %d member entries; use --view 32", o.Peers, o.Peers*o.Peers)
	case o.View > 0 && o.View <= gossip.DefaultConfig().Fanout:
		return invalid("--view %d: must exceed the push fanout, or push has nobody new to reach", o.View)
	case o.Warmup < 0 || o.Drain <= 0:
		return invalid("warm-up must be >= 0 and drain positive")
	}
	if _, err := ParseLatency(o.Latency); err != nil {
		return err
	}
	return nil
}

// ParseProfiles splits a comma-separated list of profile names and checks
// each; empty means default.
func ParseProfiles(list string) ([]string, error) {
	out, err := bench.SplitProfiles(list, Profiles)
	if err != nil {
		return nil, fmt.Errorf("%w: %v", ErrInvalidOptions, err)
	}
	if len(out) == 0 {
		out = []string{ProfileDefault}
	}
	return out, nil
}

// profileConfig is the gossip configuration of a profile, with the view
// bound of the run.
func profileConfig(name string, o Options) (gossip.Config, error) {
	var c gossip.Config
	switch name {
	case ProfileDefault:
		c = gossip.DefaultConfig()
	case ProfileFabric:
		c = gossip.FabricConfig()
	default:
		return c, fmt.Errorf("%w: unknown profile %q", ErrInvalidOptions, name)
	}
	c.MaxView = o.View
	// The simulator's network drops single messages (--loss), which gRPC
	// streams never do: a copy missing while the parent delivers may be
	// lost, so the graft timers run whatever the parent does.
	c.ParentSilence = 0
	// For the same reason a pushed copy is acknowledged, and resent by its
	// parent when the acknowledgement is 4 sub-ticks late. The tree timers
	// run on 10 ms sub-ticks here, not 20, so that the resend waits 30-40
	// ms, just past a round trip (10-30 ms): on 20 ms sub-ticks it waited
	// 40-60 ms at 3 (churn+loss p99 over healthy 1.74x at 100 peers, 200
	// seeds, against 1.65x) and resent copies whose acknowledgement was
	// merely on its way at 2 (healthy amplification 1.26 against 1.18).
	// The IHave delay and the graft floor stay what they are in ms.
	c.TreeResolution *= 2
	c.IHaveDelaySub *= 2
	c.GraftTimeoutSub *= 2
	c.AckResend = 4
	return c, c.Validate()
}
