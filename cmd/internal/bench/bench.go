// Package bench measures how fast and at what cost in bytes a block cut by
// the orderer stub reaches every peer. It is the engine behind
// `blockgossip bench`.
//
// One Run starts, in this process, an orderer stub and Options.Peers gossip
// nodes of Options.Orgs organisations, over real mutual-TLS gRPC on
// 127.0.0.1 or over the in-memory network (comm/memnet). It waits, untimed,
// until membership and election have settled and every peer holds the
// genesis block; then it cuts Options.Blocks blocks of Options.BlockSize
// bytes at Options.Rate blocks/s and records, for each block, the cut time
// and each peer's commit time (gossip.Node.Commits), and counts every byte
// each peer receives, classified as block bytes (envelopes carrying block
// bodies: BlockMessage, PullResponse, StateResponse, and the orderer's
// DeliverResponse) or control bytes (everything else). Compute turns that
// Record into the figures of a Result.
//
// Three profiles run on the same workload: "default" (gossip.DefaultConfig),
// "fabric" (gossip.FabricConfig: Hyperledger Fabric's push-to-3, pull every
// 4 s from 3 peers, 10-block window) and "direct" (no peer-to-peer
// dissemination: every peer pulls every block from the orderer, as Fabric
// does since v2.2). The command runs each profile in a child process
// (ChildArgs, RunChild) so that CPU time and peak RSS belong to that profile
// alone.
//
// Figures come only from the run: nothing here is a constant of a result.
package bench

import (
	"errors"
	"fmt"
	"slices"
	"strings"
	"time"

	"github.com/blockgossip/blockgossip/gossip"
)

// Profile names.
const (
	ProfileDefault = "default" // blockgossip's own tuning
	ProfileFabric  = "fabric"  // Hyperledger Fabric's gossip defaults
	ProfileDirect  = "direct"  // every peer pulls from the orderer
)

// Profiles lists the known profiles, ours first.
var Profiles = []string{ProfileDefault, ProfileFabric, ProfileDirect}

// Transport names.
const (
	TransportGRPC = "grpc" // mutual-TLS gRPC on 127.0.0.1
	TransportMem  = "mem"  // the in-memory network, zero latency
)

// ErrInvalidOptions is wrapped by every Options.Validate failure.
var ErrInvalidOptions = errors.New("invalid bench options")

// Options describe one workload. Every profile of a comparison runs the
// same Options.
type Options struct {
	// Transport is TransportGRPC or TransportMem.
	Transport string `json:"transport"`
	// Peers is the number of peer nodes.
	Peers int `json:"peers"`
	// Orgs is the number of organisations the peers are spread over
	// (round-robin sizes: they differ by at most one).
	Orgs int `json:"orgs"`
	// Blocks is how many blocks are cut and timed.
	Blocks int `json:"blocks"`
	// BlockSize is the transaction bytes per block (one transaction).
	BlockSize int `json:"block_size"`
	// Rate is how many blocks are cut per second; 0 cuts the next block as
	// soon as the previous one has reached every peer.
	Rate float64 `json:"rate"`
	// Seed seeds the payloads and every peer's protocol randomness.
	Seed uint64 `json:"seed"`
	// Drain is how long, after the last block is cut, blocks may take to
	// reach every peer before they count as incomplete.
	Drain time.Duration `json:"drain_ns"`
	// WarmupTimeout bounds the untimed warm-up (membership, election,
	// genesis everywhere); past it the run goes on and says so.
	WarmupTimeout time.Duration `json:"warmup_timeout_ns"`
	// WarmupBlocks is how many untimed blocks are cut, at Rate, once the
	// warm-up has settled, each awaited at every peer (for at most Drain):
	// the push tree forms on the first blocks (their copies prune the
	// links that brought duplicates), so the timed blocks measure steady
	// dissemination. Their times to the last peer are reported apart
	// (Result.WarmupTimeToLastMs).
	WarmupBlocks int `json:"warmup_blocks"`
	// OnTimed, if set, is called as the timed part starts; the function it
	// returns is called as the timed part ends (a CPU profile of exactly
	// what CPUSeconds reports, not of start-up and warm-up).
	OnTimed func() (end func()) `json:"-"`
}

// DefaultOptions is the workload of the design document's numbers, small
// enough to run in seconds.
func DefaultOptions() Options {
	return Options{
		Transport:     TransportGRPC,    // what a deployment runs
		Peers:         20,               // the scale the design's Fabric figures were measured at
		Orgs:          2,                // the least that exercises one leader per org
		Blocks:        50,               // 10 s of blocks at 5/s: enough for p90, quick to run
		BlockSize:     10 << 10,         // 10 KiB, as in the design's Fabric measurements
		Rate:          5,                // 5 blocks/s, as in the design's Fabric measurements
		Seed:          1,                // reproducible by default
		Drain:         10 * time.Second, // above Fabric's 4 s pull interval twice over
		WarmupTimeout: 60 * time.Second, // membership of 100 peers settles in seconds; a minute means trouble
		WarmupBlocks:  2,                // at 100 peers the first block took 75-360 ms (the tree forming), the next ones ~25 ms
	}
}

// Validate reports every option out of range, saying what to use.
func (o Options) Validate() error {
	var errs []error
	bad := func(format string, args ...any) {
		errs = append(errs, fmt.Errorf("%w: "+format, append([]any{ErrInvalidOptions}, args...)...))
	}
	if o.Transport != TransportGRPC && o.Transport != TransportMem {
		bad("--transport %q: use %s or %s", o.Transport, TransportGRPC, TransportMem)
	}
	if o.Peers < 1 || o.Peers > 1000 {
		bad("--peers %d: use 1 to 1000", o.Peers)
	}
	if o.Orgs < 1 || o.Orgs > o.Peers {
		bad("--orgs %d: use 1 to --peers (%d)", o.Orgs, o.Peers)
	}
	if o.Blocks < 1 {
		bad("--blocks %d: cut at least 1 block", o.Blocks)
	}
	if o.BlockSize < 1 || o.BlockSize > 1<<20 {
		bad("--block-size %d: use 1 byte to 1 MiB (the orderer stub's transaction limit)", o.BlockSize)
	}
	if o.Rate < 0 {
		bad("--rate %v: use 0 (as fast as blocks commit) or a positive rate", o.Rate)
	}
	if o.Drain <= 0 {
		bad("drain deadline %v: must be positive", o.Drain)
	}
	if o.WarmupTimeout <= 0 {
		bad("warm-up timeout %v: must be positive", o.WarmupTimeout)
	}
	if o.WarmupBlocks < 0 || o.WarmupBlocks > 100 {
		bad("--warmup-blocks %d: use 0 to 100", o.WarmupBlocks)
	}
	return errors.Join(errs...)
}

// Deadline bounds a whole run of these Options: warm-up, cutting, drain and
// a generous stop. A child that outlives it is killed.
func (o Options) Deadline() time.Duration {
	feed := 30 * time.Second // rate 0: each block may wait up to a drain period, bounded below
	if o.Rate > 0 {
		feed = time.Duration(float64(o.Blocks) / o.Rate * float64(time.Second))
	} else {
		feed = time.Duration(o.Blocks) * o.Drain
	}
	return o.WarmupTimeout + time.Duration(o.WarmupBlocks)*o.Drain + feed + o.Drain + time.Minute
}

// ParseProfiles splits a comma-separated list of profile names and checks
// each.
func ParseProfiles(list string) ([]string, error) {
	ps, err := SplitProfiles(list, Profiles)
	if err != nil {
		return nil, fmt.Errorf("%w: %v", ErrInvalidOptions, err)
	}
	return ps, nil
}

// SplitProfiles splits a comma-separated list of profile names, skipping
// blanks, and refuses a name not in known. The simulator shares it.
func SplitProfiles(list string, known []string) ([]string, error) {
	var out []string
	for _, p := range strings.Split(list, ",") {
		p = strings.TrimSpace(p)
		if p == "" {
			continue
		}
		if !slices.Contains(known, p) {
			return nil, fmt.Errorf("unknown profile %q: use %s", p, strings.Join(known, ", "))
		}
		out = append(out, p)
	}
	return out, nil
}

// profile is what a profile changes in a peer.
type profile struct {
	gossip gossip.Config
	// direct: every peer is a static leader with its own deliver client and
	// no bootstrap peers, so no peer-to-peer traffic at all.
	direct bool
}

// profileConfig returns the peer settings of a profile, with the bench's
// warm-up shortcuts: they shorten only the start-up wait, never a
// steady-state interval that the measurement depends on.
func profileConfig(name string) (profile, error) {
	switch name {
	case ProfileDefault:
		c := gossip.DefaultConfig()
		c.Election.StartupGrace = 10 // 1 s: membership of a local network settles well inside it
		return profile{gossip: c}, nil
	case ProfileFabric:
		c := gossip.FabricConfig()
		c.Election.StartupGrace = 10    // Fabric waits 15 s; untimed warm-up, so shorten it
		c.Election.ElectionDuration = 5 // Fabric collects proposals for 5 s; likewise
		return profile{gossip: c}, nil
	case ProfileDirect:
		c := gossip.DefaultConfig()
		c.PullEnabled = false // no peer to pull from: each peer reads the orderer
		c.Election.Static = true
		c.Election.StaticLeader = true // every peer runs its own deliver client
		return profile{gossip: c, direct: true}, nil
	}
	return profile{}, fmt.Errorf("%w: unknown profile %q: use %s", ErrInvalidOptions, name, strings.Join(Profiles, ", "))
}
