package pull

import (
	"cmp"
	"slices"

	pb "github.com/blockgossip/blockgossip/protos"
)

// span is the half-open block range [start, end).
type span struct{ start, end uint64 }

// readSpans turns wire ranges into sorted, merged spans clipped to
// [lo, hi). It reads at most max ranges and skips nil and empty ones, so a
// remote peer controls neither the work nor the memory spent here.
func readSpans(rs []*pb.BlockRange, limit int, lo, hi uint64) []span {
	if len(rs) > limit {
		rs = rs[:limit]
	}
	out := make([]span, 0, len(rs))
	for _, r := range rs {
		s, e := max(r.GetStart(), lo), min(r.GetEnd(), hi)
		if s < e {
			out = append(out, span{s, e})
		}
	}
	slices.SortFunc(out, func(a, b span) int { return cmp.Compare(a.start, b.start) })
	merged := out[:0]
	for _, s := range out {
		if n := len(merged); n > 0 && s.start <= merged[n-1].end {
			merged[n-1].end = max(merged[n-1].end, s.end)
			continue
		}
		merged = append(merged, s)
	}
	return merged
}

// writeSpans is the wire form of spans.
func writeSpans(ss []span) []*pb.BlockRange {
	out := make([]*pb.BlockRange, len(ss))
	for i, s := range ss {
		out[i] = &pb.BlockRange{Start: s.start, End: s.end}
	}
	return out
}

// addNum appends block n to ascending spans, extending the last one when n
// follows it. It reports false, adding nothing, when n would open span
// number limit+1.
func addNum(ss []span, n uint64, limit int) ([]span, bool) {
	if k := len(ss); k > 0 && ss[k-1].end == n {
		ss[k-1].end++
		return ss, true
	}
	if len(ss) >= limit {
		return ss, false
	}
	return append(ss, span{n, n + 1}), true
}

// spansHave reports whether sorted, disjoint spans contain n.
func spansHave(ss []span, n uint64) bool {
	i, _ := slices.BinarySearchFunc(ss, n, func(s span, n uint64) int {
		switch {
		case s.end <= n:
			return -1
		case s.start > n:
			return 1
		}
		return 0
	})
	return i < len(ss) && ss[i].start <= n && n < ss[i].end
}
