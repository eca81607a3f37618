package sim

import (
	"encoding/json"
	"fmt"
	"io"
	"math"
	"slices"
	"strings"
	"text/tabwriter"

	"github.com/blockgossip/blockgossip/cmd/internal/bench"
	"github.com/blockgossip/blockgossip/gossip"
	"github.com/blockgossip/blockgossip/ledger"
	pb "github.com/blockgossip/blockgossip/protos"
)

// Result is one simulated profile. Its JSON uses `bench --json`'s key
// names where a figure means the same (the embedded bench.Figures, peers,
// profile, ...), with virtual time instead of wall time; it holds nothing
// measured on the host, so a seed gives the same bytes.
type Result struct {
	Profile   string  `json:"profile"`
	Transport string  `json:"transport"` // always "sim"
	Peers     int     `json:"peers"`
	Orgs      int     `json:"orgs"`
	BlockSize int     `json:"block_size"`
	Blocks    int     `json:"blocks"`
	Rate      float64 `json:"rate"`
	Seed      uint64  `json:"seed"`
	Latency   string  `json:"latency"`
	Loss      float64 `json:"loss"`
	Churn     float64 `json:"churn"`
	// CrashNotice: crashed peers' streams broke at their neighbours
	// (Options.CrashNotice).
	CrashNotice bool `json:"crash_notice,omitempty"`
	// View is the membership view size (0: full membership).
	View int `json:"view"`
	bench.Figures
	Deliveries           int    `json:"deliveries"`
	BlockBytesReceived   uint64 `json:"block_bytes_received"`
	ControlBytesReceived uint64 `json:"control_bytes_received"`
	OrdererEgressBytes   uint64 `json:"orderer_egress_bytes"`
	MeanBlockBytes       int    `json:"mean_block_bytes"`
	// HopsToLast: per block, the most hops a pushed copy made before a
	// peer committed it (the depth of the block's push tree), p50 and p99
	// over blocks.
	HopsToLast HopPercentiles `json:"hops_to_last"`
	// MessagesPerPeerPerBlock and BytesPerPeerPerBlock count every message
	// (and its bytes) peers received from the first cut to the end.
	MessagesPerPeerPerBlock float64 `json:"messages_per_peer_per_block"`
	BytesPerPeerPerBlock    float64 `json:"bytes_per_peer_per_block"`
	// PushCoverage is the share of (peer, block) pairs delivered by push
	// or by the orderer: what push alone reached, to set beside
	// Theory.PushOnceCoverage.
	PushCoverage float64 `json:"push_coverage"`
	Theory       Theory  `json:"theory"`
	// TimeToLastLive: per block, cut to commit at the last peer that was
	// up from the cut until it committed the block (see churn.go): the
	// protocol's time to the last live peer, without the downtime of the
	// peers that crashed. Equal to TimeToLast without churn.
	TimeToLastLive        bench.Percentiles `json:"time_to_last_live_ms"`
	TimeToLastLiveSamples []float64         `json:"time_to_last_live_samples_ms"`
	// LiveIncompleteBlocks did not reach every peer that stayed up.
	LiveIncompleteBlocks int `json:"live_incomplete_blocks"`
	// LiveExcludedPairs are the (peer, block) pairs left out of
	// TimeToLastLive because the peer was down between the cut and its
	// commit; they still count in delivery_ratio.
	LiveExcludedPairs int `json:"live_excluded_pairs"`
	// TimeToLastSteady is TimeToLastLive without the peers that were still
	// catching up after a restart at the cut (LiveCatchingUpPairs pairs): a
	// diagnostic that tells the catch-up part of the live tail from push
	// and repair under loss. It is not the target measure.
	TimeToLastSteady    bench.Percentiles `json:"time_to_last_steady_ms"`
	LiveCatchingUpPairs int               `json:"live_catching_up_pairs"`
	// LiveTail: the slowest blocks by TimeToLastLive, with the peer that
	// was last: what makes the tail.
	LiveTail []LiveTail `json:"live_tail"`
	// CatchUp: per restart, restart to committed every block cut before
	// it; CatchUpRestarts were measured, CatchUpIncomplete never caught up.
	CatchUp           bench.Percentiles `json:"catch_up_ms"`
	CatchUpRestarts   int               `json:"catch_up_restarts"`
	CatchUpIncomplete int               `json:"catch_up_incomplete"`
	// Crashes is how many peers crashed and restarted.
	Crashes int `json:"crashes"`
	// CrashNotices is how many broken streams tree neighbours of crashed
	// peers were told of (Options.CrashNotice).
	CrashNotices int `json:"crash_notices,omitempty"`
	// VirtualSeconds is the simulated time from start to the end of the run.
	VirtualSeconds float64 `json:"virtual_s"`
	// Events is how many events the loop handled.
	Events uint64 `json:"events"`
}

// HopPercentiles are the p50 and p99 of a hop count over blocks.
type HopPercentiles struct {
	P50 float64 `json:"p50"`
	P99 float64 `json:"p99"`
}

// Theory holds the textbook values to set beside the measured ones.
type Theory struct {
	// Fanout is the push fanout f of the profile.
	Fanout int `json:"fanout"`
	// PushOnceCoverage: push-once to f random peers reaches the fraction
	// p = 1 - e^(-f p) of the peers (beside push_coverage). Absent in tree
	// mode, where it does not apply.
	PushOnceCoverage *float64 `json:"push_once_coverage,omitempty"`
	// PushPullRounds is log3(N): push-pull completes in about that many
	// rounds (beside hops_to_last).
	PushPullRounds float64 `json:"push_pull_rounds"`
	// HopsLogFanout is log_f(N): the depth of a tree with fan-out f over N
	// peers (beside hops_to_last).
	HopsLogFanout float64 `json:"hops_log_fanout"`
}

// PushOnceCoverage solves p = 1 - e^(-f p) for the positive root: the
// fraction of peers a push-once-to-f epidemic reaches.
func PushOnceCoverage(f float64) float64 {
	if f <= 1 {
		return 0 // below the epidemic threshold only a vanishing fraction is reached
	}
	p := 1.0
	for range 200 {
		p = 1 - math.Exp(-f*p)
	}
	return p
}

func theory(cfg gossip.Config, peers int) Theory {
	t := Theory{
		Fanout:         cfg.Fanout,
		PushPullRounds: math.Log(float64(peers)) / math.Log(3),
	}
	if cfg.Fanout > 1 {
		t.HopsLogFanout = math.Log(float64(peers)) / math.Log(float64(cfg.Fanout))
	}
	if !cfg.Tree {
		c := PushOnceCoverage(float64(cfg.Fanout))
		t.PushOnceCoverage = &c
	}
	return t
}

func (w *world) result() Result {
	rec := bench.Record{Peers: len(w.nodes), Planned: w.o.Blocks, Cuts: w.cuts, Deliveries: w.deliveries, Traffic: w.traffic}
	r := Result{
		Profile: w.profile, Transport: "sim", Peers: w.o.Peers, Orgs: w.o.Orgs, BlockSize: w.o.BlockSize,
		Blocks: w.o.Blocks, Rate: w.o.Rate, Seed: w.o.Seed, Latency: w.o.Latency, Loss: w.o.Loss,
		Churn: w.o.Churn, CrashNotice: w.o.CrashNotice, View: w.o.View,
		Figures:              bench.Compute(rec),
		Deliveries:           len(w.deliveries),
		BlockBytesReceived:   w.traffic.BlockBytes,
		ControlBytesReceived: w.traffic.ControlBytes,
		OrdererEgressBytes:   w.traffic.OrdererEgressBytes,
		Theory:               theory(w.cfg, w.o.Peers),
		Crashes:              w.crashes,
		CrashNotices:         w.notices,
		VirtualSeconds:       float64(w.now) / 1e9,
		Events:               w.handled,
	}
	cf := w.churn()
	r.TimeToLastLive, r.TimeToLastLiveSamples = cf.live, cf.samples
	r.LiveIncompleteBlocks = cf.incomplete + (w.o.Blocks - len(w.cuts))
	r.LiveExcludedPairs, r.LiveTail = cf.excluded, cf.tail
	r.TimeToLastSteady, r.LiveCatchingUpPairs = cf.steady, cf.catchingPairs
	r.CatchUp, r.CatchUpRestarts, r.CatchUpIncomplete = cf.catchUp, cf.restarts, cf.catchUpInc
	total := 0
	for _, c := range w.cuts {
		total += c.Bytes
	}
	if len(w.cuts) > 0 {
		r.MeanBlockBytes = total / len(w.cuts)
	}
	pairs := float64(w.o.Peers * w.o.Blocks)
	r.MessagesPerPeerPerBlock = float64(w.messages) / pairs
	r.BytesPerPeerPerBlock = float64(w.traffic.BlockBytes+w.traffic.ControlBytes) / pairs
	pushed := 0
	for _, d := range w.deliveries {
		if d.Via == gossip.ViaPush || d.Via == gossip.ViaOrderer {
			pushed++
		}
	}
	r.PushCoverage = float64(pushed) / pairs
	hops := make([]float64, 0, len(w.maxHops))
	for _, h := range w.maxHops {
		hops = append(hops, float64(h))
	}
	slices.Sort(hops)
	r.HopsToLast = HopPercentiles{P50: bench.NearestRank(hops, 50), P99: bench.NearestRank(hops, 99)}
	return r
}

func ledgerHash(b *pb.Block) []byte { return ledger.HeaderHash(b) }

// MarshalJSON renders {"runs": [...]} exactly as `bench --json` frames
// its runs, with a final newline.
func MarshalJSON(runs []Result) ([]byte, error) {
	if runs == nil {
		runs = []Result{}
	}
	return marshalIndented(struct {
		Runs []Result `json:"runs"`
	}{runs})
}

// marshalIndented renders v as the reports do: two-space indents and a
// final newline.
func marshalIndented(v any) ([]byte, error) {
	b, err := json.MarshalIndent(v, "", "  ")
	if err != nil {
		return nil, err
	}
	return append(b, '\n'), nil
}

// WriteTable prints one column per run: the measured figures with the
// theory beside them.
func WriteTable(w io.Writer, runs []Result) {
	if len(runs) == 0 {
		return
	}
	r0 := runs[0]
	fmt.Fprintf(w, "%d peers in %d orgs (view %s), %d blocks of %d B at %g/s, latency %s, loss %g, churn %g, seed %d\n",
		r0.Peers, r0.Orgs, viewName(r0.View), r0.Blocks, r0.BlockSize, r0.Rate, r0.Latency, r0.Loss, r0.Churn, r0.Seed)
	tw := tabwriter.NewWriter(w, 0, 4, 2, ' ', tabwriter.AlignRight)
	head := []string{""}
	for _, r := range runs {
		head = append(head, r.Profile)
	}
	fmt.Fprintln(tw, strings.Join(head, "\t")+"\t")
	rows := []struct {
		label string
		value func(r Result) string
	}{
		{"delivery ratio", func(r Result) string { return fmt.Sprintf("%.4f", r.DeliveryRatio) }},
		{"incomplete blocks", func(r Result) string { return fmt.Sprint(r.IncompleteBlocks) }},
		{"time to last peer p50 / p99 (ms)", func(r Result) string {
			return fmt.Sprintf("%.1f / %.1f", r.TimeToLast.P50, r.TimeToLast.P99)
		}},
		{"  to last live peer p50 / p99 (ms)", func(r Result) string {
			return fmt.Sprintf("%.1f / %.1f", r.TimeToLastLive.P50, r.TimeToLastLive.P99)
		}},
		{"  live-incomplete blocks / pairs excluded", func(r Result) string {
			return fmt.Sprintf("%d / %d", r.LiveIncompleteBlocks, r.LiveExcludedPairs)
		}},
		{"  without peers catching up p50 / p99 (ms)", func(r Result) string {
			return fmt.Sprintf("%.1f / %.1f", r.TimeToLastSteady.P50, r.TimeToLastSteady.P99)
		}},
		{"catch-up after restart p50 / p99 (ms)", func(r Result) string {
			if r.CatchUpRestarts == 0 {
				return "-"
			}
			return fmt.Sprintf("%.1f / %.1f (%d, %d incomplete)", r.CatchUp.P50, r.CatchUp.P99, r.CatchUpRestarts, r.CatchUpIncomplete)
		}},
		{"hops to last p50 / p99", func(r Result) string { return fmt.Sprintf("%g / %g", r.HopsToLast.P50, r.HopsToLast.P99) }},
		{"  theory log_f(N) / log3(N)", func(r Result) string {
			return fmt.Sprintf("%.1f / %.1f", r.Theory.HopsLogFanout, r.Theory.PushPullRounds)
		}},
		{"push coverage", func(r Result) string { return fmt.Sprintf("%.4f", r.PushCoverage) }},
		{"  theory 1-e^(-f p)", func(r Result) string {
			if r.Theory.PushOnceCoverage == nil {
				return "-"
			}
			return fmt.Sprintf("%.4f (f=%d)", *r.Theory.PushOnceCoverage, r.Theory.Fanout)
		}},
		{"by push / pull / state / orderer", func(r Result) string {
			return fmt.Sprintf("%.3f/%.3f/%.3f/%.3f", r.Via.Push, r.Via.Pull, r.Via.State, r.Via.Orderer)
		}},
		{"messages per peer per block", func(r Result) string { return fmt.Sprintf("%.1f", r.MessagesPerPeerPerBlock) }},
		{"KiB per peer per block", func(r Result) string { return fmt.Sprintf("%.1f", r.BytesPerPeerPerBlock/1024) }},
		{"amplification", func(r Result) string { return fmt.Sprintf("%.3f", r.Amplification) }},
		{"duplicates per delivery", func(r Result) string { return fmt.Sprintf("%.3f", r.DuplicatesPerDelivery) }},
		{"crashes", func(r Result) string { return fmt.Sprint(r.Crashes) }},
		{"virtual seconds", func(r Result) string { return fmt.Sprintf("%.1f", r.VirtualSeconds) }},
	}
	for _, rw := range rows {
		line := []string{rw.label}
		for _, r := range runs {
			line = append(line, rw.value(r))
		}
		fmt.Fprintln(tw, strings.Join(line, "\t")+"\t")
	}
	tw.Flush()
}

func viewName(v int) string {
	if v == 0 {
		return "full"
	}
	return fmt.Sprint(v)
}
