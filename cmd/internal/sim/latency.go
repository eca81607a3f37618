package sim

import (
	"fmt"
	"strings"
	"time"
)

// latencyFunc draws the one-way latency of a message from peer from to
// peer to, with the network's random source.
type latencyFunc func(from, to int, draw func(n int64) int64) time.Duration

// ParseLatency reads a latency distribution:
//
//	fixed:10ms            every message takes 10 ms
//	uniform:5ms,15ms      uniform in [5 ms, 15 ms]
//	two-regions:1ms,80ms  half the peers of each org in each of two
//	                      regions: 1 ms within a region, 80 ms across
func ParseLatency(s string) (latencyFunc, error) {
	kind, args, _ := strings.Cut(s, ":")
	var ds []time.Duration
	for _, a := range strings.Split(args, ",") {
		d, err := time.ParseDuration(strings.TrimSpace(a))
		if err != nil || d < 0 {
			return nil, fmt.Errorf("%w: --latency %q: %q is not a duration like 10ms", ErrInvalidOptions, s, a)
		}
		ds = append(ds, d)
	}
	want := map[string]int{"fixed": 1, "uniform": 2, "two-regions": 2}[kind]
	if want == 0 || len(ds) != want {
		return nil, fmt.Errorf("%w: --latency %q: use fixed:10ms, uniform:5ms,15ms or two-regions:1ms,80ms", ErrInvalidOptions, s)
	}
	switch kind {
	case "fixed":
		d := ds[0]
		return func(int, int, func(int64) int64) time.Duration { return d }, nil
	case "uniform":
		lo, hi := ds[0], ds[1]
		if hi < lo {
			return nil, fmt.Errorf("%w: --latency %q: the upper bound is below the lower", ErrInvalidOptions, s)
		}
		span := int64(hi-lo) + 1
		return func(_, _ int, draw func(int64) int64) time.Duration { return lo + time.Duration(draw(span)) }, nil
	default:
		intra, inter := ds[0], ds[1]
		return func(from, to int, _ func(int64) int64) time.Duration {
			if regionOf(from) == regionOf(to) {
				return intra
			}
			return inter
		}, nil
	}
}

// regionOf puts peers in regions 0 and 1 by pairs of indices (0,1 in
// region 0, 2,3 in region 1, ...): with one or two orgs (org = index mod
// orgs), each org has half its peers in each region.
func regionOf(peer int) int { return (peer / 2) % 2 }
