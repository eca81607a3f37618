package sim

import (
	"fmt"
	"io"
	"slices"
	"strings"
	"text/tabwriter"

	"github.com/blockgossip/blockgossip/cmd/internal/bench"
)

// SweepResult is one profile's sweep: the spread of per-run figures over
// the seeds, and percentiles pooled over every block of every seed. Time
// figures are the live ones (time_to_last_live_ms) when the runs have
// loss or churn, else time_to_last_ms. Like Result, it holds nothing
// measured on the host: the same options give the same JSON, whatever
// Parallel is.
type SweepResult struct {
	Profile     string  `json:"profile"`
	Peers       int     `json:"peers"`
	Blocks      int     `json:"blocks"`
	Loss        float64 `json:"loss"`
	Churn       float64 `json:"churn"`
	CrashNotice bool    `json:"crash_notice"`
	// The rest of the workload, to rerun a seed (`--seed S`).
	Orgs      int     `json:"orgs"`
	BlockSize int     `json:"block_size"`
	Rate      float64 `json:"rate"`
	Latency   string  `json:"latency"`
	View      int     `json:"view"`
	// SeedFirst and Seeds: the seeds SeedFirst to SeedFirst+Seeds-1 ran.
	SeedFirst uint64 `json:"seed_first"`
	Seeds     int    `json:"seeds"`
	// Baseline: each seed also ran healthy, and the ratios are reported.
	Baseline         bool    `json:"baseline"`
	DeliveryRatioMin float64 `json:"delivery_ratio_min"`
	Amplification    MeanMax `json:"amplification"`
	// TimeToLastP99 is the spread of the runs' p99 (each run's p99 over
	// its blocks: with 20 blocks, its slowest block).
	TimeToLastP99 Spread `json:"time_to_last_ms_p99"`
	// Pooled: percentiles over the blocks of all seeds together.
	Pooled SweepPercentiles `json:"pooled_time_to_last_ms"`
	// With Baseline: the healthy runs' pooled percentiles, the pooled
	// figures over them key by key, and the spread of the seeds' p99
	// ratios.
	HealthyPooled *SweepPercentiles `json:"healthy_pooled_time_to_last_ms,omitempty"`
	PooledRatio   *SweepPercentiles `json:"pooled_ratio,omitempty"`
	Ratio         *RatioSpread      `json:"ratio,omitempty"`
	PerSeed       []SeedFigures     `json:"per_seed"`
}

// SweepPercentiles are percentiles' figures (churn.go) with p99.9, all
// by nearest rank, so that pooled and per-run figures agree.
type SweepPercentiles struct {
	P50  float64 `json:"p50"`
	P90  float64 `json:"p90"`
	P99  float64 `json:"p99"`
	P999 float64 `json:"p99_9"`
	Max  float64 `json:"max"`
}

func sweepPercentiles(sorted []float64) SweepPercentiles {
	p := percentiles(sorted)
	return SweepPercentiles{P50: p.P50, P90: p.P90, P99: p.P99, P999: bench.NearestRank(sorted, 99.9), Max: p.Max}
}

// MeanMax is the mean and maximum of a figure over seeds.
type MeanMax struct {
	Mean float64 `json:"mean"`
	Max  float64 `json:"max"`
}

// Spread is the mean, median and maximum of a figure over seeds; the
// median of an even count is the mean of the middle two.
type Spread struct {
	Mean   float64 `json:"mean"`
	Median float64 `json:"median"`
	Max    float64 `json:"max"`
}

// RatioSpread is the spread of the seeds' faulty p99 over healthy p99:
// the worst seed, and the seeds above issue 11's 2x.
type RatioSpread struct {
	Spread
	MaxSeed      uint64   `json:"max_seed"`
	Above2x      int      `json:"above_2x"`
	Above2xSeeds []uint64 `json:"above_2x_seeds"`
}

// SeedFigures are one seed's figures; HealthyP99 and Ratio with Baseline
// only.
type SeedFigures struct {
	Seed          uint64   `json:"seed"`
	P99           float64  `json:"p99"`
	HealthyP99    *float64 `json:"healthy_p99,omitempty"`
	Ratio         *float64 `json:"ratio,omitempty"`
	Amplification float64  `json:"amplification"`
	DeliveryRatio float64  `json:"delivery_ratio"`
}

// target is issue 11's bound on faulty p99 over healthy p99.
const target = 2

// summarise computes a profile's figures from its runs, in job order:
// per seed, the run and (Baseline) its healthy run.
func summarise(s SweepOptions, profile string, runs []seedRun) (SweepResult, error) {
	o := s.Options
	r := SweepResult{
		Profile: profile, Peers: o.Peers, Blocks: o.Blocks, Loss: o.Loss, Churn: o.Churn, CrashNotice: o.CrashNotice,
		Orgs: o.Orgs, BlockSize: o.BlockSize, Rate: o.Rate, Latency: o.Latency, View: o.View,
		SeedFirst: o.Seed, Seeds: s.Seeds, Baseline: s.Baseline, DeliveryRatioMin: 1,
		PerSeed: make([]SeedFigures, 0, s.Seeds),
	}
	step := 1
	if s.Baseline {
		step = 2
	}
	var p99s, ratios, pooled, healthyPooled []float64
	var amp float64
	for k := range s.Seeds {
		run := runs[k*step]
		seed := o.Seed + uint64(k)
		f := SeedFigures{Seed: seed, P99: run.p99, Amplification: run.amplification, DeliveryRatio: run.delivery}
		r.DeliveryRatioMin = min(r.DeliveryRatioMin, run.delivery)
		amp += run.amplification
		r.Amplification.Max = max(r.Amplification.Max, run.amplification)
		p99s = append(p99s, run.p99)
		pooled = append(pooled, run.samples...)
		if s.Baseline {
			h := runs[k*step+1]
			if h.p99 <= 0 {
				return r, fmt.Errorf("sim %s seed %d: the healthy run's p99 is %g ms, so there is no ratio: give --latency a delay above 0", profile, seed, h.p99)
			}
			ratio := run.p99 / h.p99
			f.HealthyP99, f.Ratio = &h.p99, &ratio
			ratios = append(ratios, ratio)
			healthyPooled = append(healthyPooled, h.samples...)
		}
		r.PerSeed = append(r.PerSeed, f)
	}
	r.Amplification.Mean = amp / float64(s.Seeds)
	r.TimeToLastP99 = spread(p99s)
	slices.Sort(pooled)
	r.Pooled = sweepPercentiles(pooled)
	if !s.Baseline {
		return r, nil
	}
	slices.Sort(healthyPooled)
	h := sweepPercentiles(healthyPooled)
	div := func(a, b float64) float64 {
		if b <= 0 {
			return 0 // no healthy blocks at all (none complete): no ratio
		}
		return a / b
	}
	q := r.Pooled
	r.HealthyPooled = &h
	r.PooledRatio = &SweepPercentiles{P50: div(q.P50, h.P50), P90: div(q.P90, h.P90), P99: div(q.P99, h.P99), P999: div(q.P999, h.P999), Max: div(q.Max, h.Max)}
	r.Ratio = &RatioSpread{Spread: spread(ratios), Above2xSeeds: []uint64{}}
	r.Ratio.MaxSeed = o.Seed + uint64(slices.Index(ratios, r.Ratio.Max)) // the first of equal worst
	for k, x := range ratios {
		seed := o.Seed + uint64(k)
		if x > target {
			r.Ratio.Above2x++
			r.Ratio.Above2xSeeds = append(r.Ratio.Above2xSeeds, seed)
		}
	}
	return r, nil
}

// spread summarises xs (in seed order, which the mean's sum follows).
func spread(xs []float64) Spread {
	if len(xs) == 0 {
		return Spread{}
	}
	var sum float64
	for _, x := range xs {
		sum += x
	}
	sorted := slices.Sorted(slices.Values(xs))
	n := len(sorted)
	median := sorted[n/2]
	if n%2 == 0 {
		median = (sorted[n/2-1] + sorted[n/2]) / 2
	}
	return Spread{Mean: sum / float64(n), Median: median, Max: sorted[n-1]}
}

// MarshalSweepJSON renders {"sweeps": [...]}, one object per profile,
// with a final newline.
func MarshalSweepJSON(sweeps []SweepResult) ([]byte, error) {
	if sweeps == nil {
		sweeps = []SweepResult{}
	}
	return marshalIndented(struct {
		Sweeps []SweepResult `json:"sweeps"`
	}{sweeps})
}

// WriteSweepTable prints each profile's sweep: the spread over seeds, and
// the pooled percentiles (with Baseline: healthy, faulty and their ratio).
func WriteSweepTable(w io.Writer, sweeps []SweepResult) {
	if len(sweeps) == 0 {
		return
	}
	s0 := sweeps[0]
	fmt.Fprintf(w, "%d peers in %d orgs (view %s), %d blocks of %d B at %g/s, latency %s, loss %g, churn %g, seeds %d-%d\n",
		s0.Peers, s0.Orgs, viewName(s0.View), s0.Blocks, s0.BlockSize, s0.Rate, s0.Latency, s0.Loss, s0.Churn,
		s0.SeedFirst, s0.SeedFirst+uint64(s0.Seeds-1))
	for _, s := range sweeps {
		what, runs := "to last peer", "runs"
		if s.Loss > 0 || s.Churn > 0 {
			what, runs = "to last live peer", "faulty (live)"
		}
		fmt.Fprintf(w, "\n%s, %d seeds:\n", s.Profile, s.Seeds)
		tw := tabwriter.NewWriter(w, 0, 4, 2, ' ', 0)
		fmt.Fprintf(tw, "  delivery ratio min\t%.4f\n", s.DeliveryRatioMin)
		fmt.Fprintf(tw, "  amplification mean / max\t%.3f / %.3f\n", s.Amplification.Mean, s.Amplification.Max)
		fmt.Fprintf(tw, "  %s p99 (ms) mean / median / max\t%.1f / %.1f / %.1f\n", what, s.TimeToLastP99.Mean, s.TimeToLastP99.Median, s.TimeToLastP99.Max)
		if r := s.Ratio; r != nil {
			var healthy float64
			for _, f := range s.PerSeed {
				healthy += *f.HealthyP99
			}
			fmt.Fprintf(tw, "  healthy p99 (ms) mean\t%.1f\n", healthy/float64(len(s.PerSeed)))
			fmt.Fprintf(tw, "  p99 / healthy p99 mean / median / worst\t%.2fx / %.2fx / %.2fx (seed %d)\n", r.Mean, r.Median, r.Max, r.MaxSeed)
			fmt.Fprintf(tw, "  seeds above %dx\t%d%s\n", target, r.Above2x, seedList(r.Above2xSeeds))
		}
		tw.Flush()
		fmt.Fprintf(w, "  %-28s%8s%8s%8s%8s%8s\n", "pooled, all blocks (ms)", "p50", "p90", "p99", "p99.9", "max")
		line := func(label, format string, p SweepPercentiles) {
			fmt.Fprintf(w, "    %-26s", label)
			for _, v := range []float64{p.P50, p.P90, p.P99, p.P999, p.Max} {
				fmt.Fprintf(w, "%8s", fmt.Sprintf(format, v))
			}
			fmt.Fprintln(w)
		}
		if s.HealthyPooled != nil {
			line("healthy", "%.1f", *s.HealthyPooled)
		}
		line(runs, "%.1f", s.Pooled)
		if s.PooledRatio != nil {
			line("ratio", "%.2fx", *s.PooledRatio)
		}
	}
}

func seedList(seeds []uint64) string {
	if len(seeds) == 0 {
		return ""
	}
	s := make([]string, len(seeds))
	for i, x := range seeds {
		s[i] = fmt.Sprint(x)
	}
	return ": " + strings.Join(s, ", ")
}
