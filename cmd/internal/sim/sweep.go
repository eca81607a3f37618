package sim

import (
	"context"
	"fmt"
	"math"
	"sync"
	"sync/atomic"
)

// A sweep runs one workload over consecutive seeds. One seed is a poor
// judge of a tail: a 20-block run's p99 is its slowest block, and moves by
// +-0.5x with the luck of its losses. Issue 11's target (10% churn and 5%
// loss within 2x of the healthy p99) is judged over hundreds of seeds,
// each run again without faults as its baseline.

// SweepOptions describe a seed sweep.
type SweepOptions struct {
	// Options is the workload of every run; its Seed is the first seed.
	Options
	// Seeds is how many consecutive seeds run, from Options.Seed on.
	Seeds int
	// Baseline also runs every seed healthy (Options.healthy: no loss, no
	// churn, no crash notice, everything else equal) and reports the
	// faulty figures over the healthy ones. It needs Loss or Churn.
	Baseline bool
	// Parallel is how many runs go at once, each on its own goroutine.
	// The figures do not depend on it.
	Parallel int
}

// Validate reports the first option out of range, the workload's last.
func (s SweepOptions) Validate() error {
	switch {
	case s.Seeds < 1:
		return invalid("--seeds %d: pass how many seeds to run, 1 or more (e.g. --seeds 200)", s.Seeds)
	case s.Parallel < 1:
		return invalid("--parallel %d: pass how many runs go at once, 1 or more (default: GOMAXPROCS)", s.Parallel)
	case uint64(s.Seeds-1) > math.MaxUint64-s.Seed:
		return invalid("--seed %d with --seeds %d: the last seed would pass 2^64-1; start lower", s.Seed, s.Seeds)
	case s.Baseline && !s.faulty():
		return invalid("--baseline compares faulty runs with healthy ones: set --loss or --churn too (e.g. --churn 0.1 --loss 0.05)")
	}
	return s.Options.Validate()
}

// faulty reports whether runs have loss or churn: their time figures are
// then the live ones (time_to_last_live_ms), which leave out crashed
// peers' downtime.
func (o Options) faulty() bool { return o.Loss > 0 || o.Churn > 0 }

// healthy is o without faults: a seed's baseline. CrashNotice goes too (it
// only acts on crashes, but the JSON says it).
func (o Options) healthy() Options {
	o.Loss, o.Churn, o.CrashNotice = 0, 0, false
	return o
}

// SweepProgress is told of each finished run, on RunSweep's goroutine:
// the run's profile and seed, whether it was a baseline run, and how many
// of the sweep's runs (all profiles) are done.
type SweepProgress func(profile string, seed uint64, healthy bool, done, total int)

// sweepJob is one run of a sweep. Its index in the job list fixes where
// its figures go, so the order runs finish in changes nothing.
type sweepJob struct {
	profile string
	o       Options
	healthy bool
}

// seedRun is what a sweep keeps of one run: the time figure it reports
// (the live one for a faulty run), and its per-block samples to pool.
type seedRun struct {
	p99           float64
	samples       []float64 // sorted
	amplification float64
	delivery      float64
}

func keep(r Result, live bool) seedRun {
	s := seedRun{p99: r.TimeToLast.P99, samples: r.TimeToLastSamples, amplification: r.Amplification, delivery: r.DeliveryRatio}
	if live {
		s.p99, s.samples = r.TimeToLastLive.P99, r.TimeToLastLiveSamples
	}
	return s
}

// RunSweep runs s for each profile and returns one SweepResult per
// profile, in order. The runs of all profiles share one pool of
// s.Parallel goroutines; RunSweep returns only when every one of them has
// returned, also when ctx is cancelled or a run fails (then with the
// error, and no result).
func RunSweep(ctx context.Context, s SweepOptions, profiles []string, progress SweepProgress) ([]SweepResult, error) {
	if err := s.Validate(); err != nil {
		return nil, err
	}
	var jobs []sweepJob
	for _, p := range profiles {
		if _, err := profileConfig(p, s.Options); err != nil {
			return nil, err
		}
		for k := range s.Seeds {
			o := s.Options
			o.Seed += uint64(k)
			jobs = append(jobs, sweepJob{profile: p, o: o})
			if s.Baseline {
				jobs = append(jobs, sweepJob{profile: p, o: o.healthy(), healthy: true})
			}
		}
	}
	runs, err := runJobs(ctx, jobs, s.Parallel, progress)
	if err != nil {
		return nil, err
	}
	out := make([]SweepResult, 0, len(profiles))
	per := len(jobs) / max(len(profiles), 1)
	for i, p := range profiles {
		r, err := summarise(s, p, runs[i*per:(i+1)*per])
		if err != nil {
			return nil, err
		}
		out = append(out, r)
	}
	return out, nil
}

// runJobs runs the jobs, parallel at once, and returns what it keeps of
// each, by job index. The calling goroutine owns the workers: it alone
// collects results and calls progress, and it waits for every worker
// before it returns.
func runJobs(ctx context.Context, jobs []sweepJob, parallel int, progress SweepProgress) ([]seedRun, error) {
	ctx, cancel := context.WithCancel(ctx)
	defer cancel()
	type finished struct {
		i   int
		r   Result
		err error
	}
	done := make(chan finished, len(jobs)) // room for every result: a worker never blocks on it
	var next atomic.Int64
	var wg sync.WaitGroup
	for range min(parallel, len(jobs)) {
		wg.Go(func() {
			for ctx.Err() == nil {
				i := int(next.Add(1) - 1)
				if i >= len(jobs) {
					return
				}
				r, err := Run(ctx, jobs[i].o, jobs[i].profile, nil)
				done <- finished{i, r, err}
			}
		})
	}
	stop := func(err error) ([]seedRun, error) {
		cancel()
		wg.Wait()
		return nil, err
	}
	runs := make([]seedRun, len(jobs))
	for n := 1; n <= len(jobs); n++ {
		select {
		case <-ctx.Done():
			return stop(ctx.Err())
		case f := <-done:
			j := jobs[f.i]
			if f.err != nil {
				return stop(fmt.Errorf("sim %s seed %d: %w", j.profile, j.o.Seed, f.err))
			}
			runs[f.i] = keep(f.r, j.o.faulty())
			if progress != nil {
				progress(j.profile, j.o.Seed, j.healthy, n, len(jobs))
			}
		}
	}
	wg.Wait()
	return runs, nil
}
