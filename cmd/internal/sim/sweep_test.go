package sim

import (
	"bytes"
	"context"
	"errors"
	"math"
	"runtime"
	"slices"
	"testing"
	"time"

	"github.com/blockgossip/blockgossip/cmd/internal/bench"
	"go.uber.org/goleak"
)

// tiny is a faulty workload whose runs take a few milliseconds.
func tiny() Options {
	o := DefaultOptions()
	o.Peers, o.Blocks, o.BlockSize, o.View = 24, 4, 512, 12
	o.Loss, o.Churn, o.Seed = 0.05, 0.1, 7
	return o
}

func sweep(t *testing.T, s SweepOptions, profiles ...string) []SweepResult {
	t.Helper()
	r, err := RunSweep(context.Background(), s, profiles, nil)
	if err != nil {
		t.Fatal(err)
	}
	return r
}

// The sweep's figures are those of the same seeds run one by one: each
// seed's p99 (live when faulty) over its healthy run's p99, and pooled
// percentiles by nearest rank over every block of every seed.
func TestSweepMatchesSingleRuns(t *testing.T) {
	o := tiny()
	const seeds = 4
	got := sweep(t, SweepOptions{Options: o, Seeds: seeds, Baseline: true, Parallel: 2}, ProfileDefault)[0]

	var faulty, healthy []Result
	for k := range seeds {
		one := o
		one.Seed += uint64(k)
		faulty = append(faulty, runAll(t, one, ProfileDefault)[0])
		one.Loss, one.Churn = 0, 0
		healthy = append(healthy, runAll(t, one, ProfileDefault)[0])
	}
	var pooled, healthyPooled, ratios []float64
	minDelivery, maxAmp := 1.0, 0.0
	for k, f := range faulty {
		h, ps := healthy[k], got.PerSeed[k]
		ratio := f.TimeToLastLive.P99 / h.TimeToLast.P99
		if ps.Seed != o.Seed+uint64(k) || ps.P99 != f.TimeToLastLive.P99 || *ps.HealthyP99 != h.TimeToLast.P99 || *ps.Ratio != ratio ||
			ps.Amplification != f.Amplification || ps.DeliveryRatio != f.DeliveryRatio {
			t.Errorf("seed %d: sweep says %+v (healthy %v, ratio %v); single runs: p99 %v, healthy %v, ratio %v, amplification %v, delivery %v",
				o.Seed+uint64(k), ps, *ps.HealthyP99, *ps.Ratio, f.TimeToLastLive.P99, h.TimeToLast.P99, ratio, f.Amplification, f.DeliveryRatio)
		}
		if h.Loss != 0 || h.Churn != 0 || h.Crashes != 0 {
			t.Fatalf("the healthy run had faults: %+v", h)
		}
		pooled = append(pooled, f.TimeToLastLiveSamples...)
		healthyPooled = append(healthyPooled, h.TimeToLastSamples...)
		ratios = append(ratios, ratio)
		minDelivery, maxAmp = min(minDelivery, f.DeliveryRatio), max(maxAmp, f.Amplification)
	}
	slices.Sort(pooled)
	slices.Sort(healthyPooled)
	if got.Pooled.P99 != bench.NearestRank(pooled, 99) || got.Pooled.P50 != bench.NearestRank(pooled, 50) ||
		got.Pooled.P999 != bench.NearestRank(pooled, 99.9) || got.Pooled.Max != pooled[len(pooled)-1] {
		t.Errorf("pooled %+v over %v", got.Pooled, pooled)
	}
	if got.HealthyPooled.P90 != bench.NearestRank(healthyPooled, 90) || got.PooledRatio.P99 != got.Pooled.P99/got.HealthyPooled.P99 {
		t.Errorf("healthy pooled %+v over %v; ratio %+v", *got.HealthyPooled, healthyPooled, *got.PooledRatio)
	}
	worst := slices.Max(ratios)
	if r := got.Ratio; r.Max != worst || r.MaxSeed != o.Seed+uint64(slices.Index(ratios, worst)) ||
		math.Abs(r.Mean-(ratios[0]+ratios[1]+ratios[2]+ratios[3])/4) > 1e-12 {
		t.Errorf("ratio %+v, per seed %v", *r, ratios)
	}
	sorted := slices.Sorted(slices.Values(ratios))
	if want := (sorted[1] + sorted[2]) / 2; got.Ratio.Median != want {
		t.Errorf("median %v, want %v (of %v)", got.Ratio.Median, want, ratios)
	}
	var above []uint64
	for k, x := range ratios {
		if x > 2 {
			above = append(above, o.Seed+uint64(k))
		}
	}
	if got.Ratio.Above2x != len(above) || !slices.Equal(got.Ratio.Above2xSeeds, above) {
		t.Errorf("above 2x: %d %v, want %v (ratios %v)", got.Ratio.Above2x, got.Ratio.Above2xSeeds, above, ratios)
	}
	if got.DeliveryRatioMin != minDelivery || got.Amplification.Max != maxAmp || got.SeedFirst != o.Seed || got.Seeds != seeds {
		t.Errorf("sweep %+v: want delivery min %v, amplification max %v", got, minDelivery, maxAmp)
	}
}

// Runs finish in any order; their figures land by seed, so the JSON is the
// same whatever the parallelism, with or without a baseline, over two
// profiles sharing the pool.
func TestSweepSameForAnyParallel(t *testing.T) {
	for _, baseline := range []bool{false, true} {
		s := SweepOptions{Options: tiny(), Seeds: 3, Baseline: baseline, Parallel: 1}
		a, err := MarshalSweepJSON(sweep(t, s, ProfileDefault, ProfileFabric))
		if err != nil {
			t.Fatal(err)
		}
		s.Parallel = 3
		b, _ := MarshalSweepJSON(sweep(t, s, ProfileDefault, ProfileFabric))
		if !bytes.Equal(a, b) {
			t.Fatalf("baseline %v: --parallel 1 and 3 differ:\n%s\n---\n%s", baseline, a, b)
		}
		for _, key := range []string{`"healthy_pooled_time_to_last_ms"`, `"pooled_ratio"`, `"ratio"`, `"healthy_p99"`, `"above_2x_seeds"`} {
			if bytes.Contains(a, []byte(key)) != baseline {
				t.Errorf("baseline %v: JSON has %s: %v", baseline, key, !baseline)
			}
		}
		for _, key := range []string{`"sweeps"`, `"profile": "fabric"`, `"seed_first": 7`, `"pooled_time_to_last_ms"`, `"p99_9"`, `"per_seed"`, `"time_to_last_ms_p99"`} {
			if !bytes.Contains(a, []byte(key)) {
				t.Errorf("baseline %v: JSON lacks %s", baseline, key)
			}
		}
	}
}

func TestSweepValidate(t *testing.T) {
	ok := SweepOptions{Options: tiny(), Seeds: 2, Baseline: true, Parallel: 1}
	if err := ok.Validate(); err != nil {
		t.Fatal(err)
	}
	for name, mod := range map[string]func(*SweepOptions){
		"no seeds":            func(s *SweepOptions) { s.Seeds = 0 },
		"no parallel":         func(s *SweepOptions) { s.Parallel = 0 },
		"seed overflow":       func(s *SweepOptions) { s.Seed = math.MaxUint64 },
		"baseline, no faults": func(s *SweepOptions) { s.Loss, s.Churn = 0, 0 },
		"bad workload":        func(s *SweepOptions) { s.Peers = 1 },
	} {
		s := ok
		mod(&s)
		if err := s.Validate(); !errors.Is(err, ErrInvalidOptions) {
			t.Errorf("%s: err %v, want ErrInvalidOptions", name, err)
		}
	}
	last := ok
	last.Seeds, last.Seed = 3, math.MaxUint64-2 // the last seed is 2^64-1
	if err := last.Validate(); err != nil {
		t.Errorf("seeds up to 2^64-1: %v", err)
	}
	if _, err := RunSweep(context.Background(), ok, []string{"direct"}, nil); !errors.Is(err, ErrInvalidOptions) {
		t.Errorf("unknown profile: %v", err)
	}
}

// A cancelled sweep returns the context's error, after every worker has
// returned.
func TestSweepCancelStopsEveryRun(t *testing.T) {
	o := tiny()
	o.Blocks = 20 // runs of a few 4,096-event slices, between which Run looks at ctx
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	calls := 0
	var cancelled time.Time
	_, err := RunSweep(ctx, SweepOptions{Options: o, Seeds: 50, Parallel: 3}, []string{ProfileDefault},
		func(string, uint64, bool, int, int) {
			calls++
			cancelled = time.Now()
			cancel()
		})
	if !errors.Is(err, context.Canceled) {
		t.Fatalf("err %v, want context.Canceled", err)
	}
	t.Logf("returned %v after the cancel", time.Since(cancelled))
	if calls > 3 {
		t.Errorf("%d runs reported after the cancel", calls)
	}
	goleak.VerifyNone(t)
}

// Run is single-threaded: no goroutine beside the caller's while it runs.
func TestRunStartsNoGoroutine(t *testing.T) {
	// Goroutines of the tests before (a cancelled sweep's runs) may still
	// be ending: wait until they have, or one ending during the run looks
	// like a change (seen once with -race: 2 during the run, 3 before).
	goleak.VerifyNone(t)
	before, most := runtime.NumGoroutine(), 0
	o := tiny()
	if _, err := Run(context.Background(), o, ProfileDefault, func(string, time.Duration, int, int, int, uint64) {
		most = max(most, runtime.NumGoroutine())
	}); err != nil {
		t.Fatal(err)
	}
	if most > before {
		t.Fatalf("%d goroutines during the run, %d before", most, before)
	}
}

func TestSweepPercentilesAddP999(t *testing.T) {
	var xs []float64
	for i := range 2000 {
		xs = append(xs, float64(i+1))
	}
	if p := sweepPercentiles(xs); p != (SweepPercentiles{P50: 1000, P90: 1800, P99: 1980, P999: 1998, Max: 2000}) {
		t.Fatalf("1..2000: %+v", p)
	}
	if p := sweepPercentiles(xs[:20]); p.P99 != 20 || p.P999 != 20 {
		t.Fatalf("1..20: %+v: p99 and p99.9 of 20 blocks are the slowest", p)
	}
}
