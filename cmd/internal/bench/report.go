package bench

import (
	"cmp"
	"encoding/json"
	"fmt"
	"io"
	"maps"
	"os"
	"slices"
	"strings"
	"text/tabwriter"
)

// Report is the document `bench --json FILE` writes.
type Report struct {
	Runs []Result `json:"runs"`
}

// WriteJSON writes {"runs":[...]} to path.
func WriteJSON(path string, runs []Result) error {
	if runs == nil {
		runs = []Result{}
	}
	b, err := json.MarshalIndent(Report{Runs: runs}, "", "  ")
	if err != nil {
		return err
	}
	if err := os.WriteFile(path, append(b, '\n'), 0o644); err != nil {
		return fmt.Errorf("write --json file: %w", err)
	}
	return nil
}

// row is one line of the per-run table: a label and a formatter.
type row struct {
	label string
	value func(r Result) string
}

var rows = []row{
	{"delivery ratio", func(r Result) string { return fmt.Sprintf("%.4f", r.DeliveryRatio) }},
	{"incomplete blocks", func(r Result) string { return fmt.Sprint(r.IncompleteBlocks) }},
	{"time to last peer p50 (ms)", func(r Result) string { return f1(r.TimeToLast.P50) }},
	{"time to last peer p90 (ms)", func(r Result) string { return f1(r.TimeToLast.P90) }},
	{"time to last peer p99 (ms)", func(r Result) string { return f1(r.TimeToLast.P99) }},
	{"time to last peer max (ms)", func(r Result) string { return f1(r.TimeToLast.Max) }},
	{"peer commit latency p50 (ms)", func(r Result) string { return f1(r.PeerLatency.P50) }},
	{"peer commit latency p99 (ms)", func(r Result) string { return f1(r.PeerLatency.P99) }},
	{"amplification", func(r Result) string { return fmt.Sprintf("%.3f", r.Amplification) }},
	{"wire amplification", func(r Result) string { return fmt.Sprintf("%.3f", r.WireAmplification) }},
	{"duplicates per delivery", func(r Result) string { return fmt.Sprintf("%.3f", r.DuplicatesPerDelivery) }},
	{"grafts per delivery (repeat / tree)", func(r Result) string {
		return fmt.Sprintf("%.3f (%.3f/%.3f)", r.GraftsPerDelivery, r.GraftRepeatsPerDelivery, r.TreeGraftsPerDelivery)
	}},
	{"by push / pull / state / orderer", func(r Result) string {
		return fmt.Sprintf("%.2f/%.2f/%.2f/%.2f", r.Via.Push, r.Via.Pull, r.Via.State, r.Via.Orderer)
	}},
	{"messages per delivery (top 3 types)", func(r Result) string { return messagesLine(r.MessagesPerDeliveryByType, r.MessagesPerDelivery, 3) }},
	{"push hops mean / p99 / max", func(r Result) string {
		return fmt.Sprintf("%.2f / %.0f / %.0f", r.PushHops.Mean, r.PushHops.P99, r.PushHops.Max)
	}},
	{"orderer egress per block (KiB)", func(r Result) string { return f1(r.OrdererEgressBytesPerBlock / 1024) }},
	{"leader takeovers while timed", func(r Result) string { return fmt.Sprint(r.LeaderTakeovers) }},
	{"peer links per peer (new while timed)", func(r Result) string {
		return fmt.Sprintf("%.1f (%.1f)", r.LinksPerPeer, r.NewLinksPerPeer)
	}},
	{"throughput (blocks/s)", func(r Result) string { return fmt.Sprintf("%.2f", r.BlocksPerS) }},
	{"throughput (MB/s committed)", func(r Result) string { return fmt.Sprintf("%.2f", r.MBPerS) }},
	{"CPU seconds (timed part)", func(r Result) string { return fmt.Sprintf("%.2f", r.CPUSeconds) }},
	{"GC cycles / MiB allocated (timed)", func(r Result) string {
		return fmt.Sprintf("%d / %.0f", r.GCCycles, float64(r.AllocBytes)/(1<<20))
	}},
	{"peak RSS (MiB)", func(r Result) string { return f1(float64(r.PeakRSSBytes) / (1 << 20)) }},
	{"goroutines at the end of the timed part", func(r Result) string { return fmt.Sprint(r.Goroutines) }},
	{"warm-up blocks, time to last (ms)", func(r Result) string {
		if len(r.WarmupTimeToLastMs) == 0 {
			return "-"
		}
		s := make([]string, len(r.WarmupTimeToLastMs))
		for i, v := range r.WarmupTimeToLastMs {
			s[i] = f1(v)
		}
		return strings.Join(s, " ")
	}},
	{"warm-up (s, untimed)", func(r Result) string {
		s := fmt.Sprintf("%.1f", r.WarmupSeconds)
		if !r.WarmupComplete {
			s += " (timed out)"
		}
		return s
	}},
}

func f1(v float64) string { return fmt.Sprintf("%.1f", v) }

// WriteTable prints one column per run, one row per figure.
func WriteTable(w io.Writer, runs []Result) {
	if len(runs) == 0 {
		return
	}
	r0 := runs[0]
	rate := fmt.Sprintf("%g blocks/s", r0.Rate)
	if r0.Rate == 0 {
		rate = "as fast as they commit"
	}
	fmt.Fprintf(w, "%d peers in %d orgs over %s, %d blocks of %s at %s, seed %d\n",
		r0.Peers, r0.Orgs, r0.Transport, r0.Blocks, sizeName(r0.BlockSize), rate, r0.Seed)
	tw := tabwriter.NewWriter(w, 0, 4, 2, ' ', tabwriter.AlignRight)
	head := []string{""}
	for _, r := range runs {
		head = append(head, r.Profile)
	}
	fmt.Fprintln(tw, strings.Join(head, "\t")+"\t")
	for _, rw := range rows {
		line := []string{rw.label}
		for _, r := range runs {
			line = append(line, rw.value(r))
		}
		fmt.Fprintln(tw, strings.Join(line, "\t")+"\t")
	}
	tw.Flush()
}

// ratio is one line of the comparison: ours divided by theirs.
type ratio struct {
	label string
	value func(r Result) float64
}

var ratios = []ratio{
	{"time to last peer p50", func(r Result) float64 { return r.TimeToLast.P50 }},
	{"time to last peer p99", func(r Result) float64 { return r.TimeToLast.P99 }},
	{"time to last peer max", func(r Result) float64 { return r.TimeToLast.Max }},
	{"peer commit latency p50", func(r Result) float64 { return r.PeerLatency.P50 }},
	{"peer commit latency p99", func(r Result) float64 { return r.PeerLatency.P99 }},
	{"delivery ratio", func(r Result) float64 { return r.DeliveryRatio }},
	{"amplification", func(r Result) float64 { return r.Amplification }},
	{"wire amplification", func(r Result) float64 { return r.WireAmplification }},
	{"orderer egress bytes per block", func(r Result) float64 { return r.OrdererEgressBytesPerBlock }},
	{"CPU seconds", func(r Result) float64 { return r.CPUSeconds }},
	{"peak RSS", func(r Result) float64 { return float64(r.PeakRSSBytes) }},
}

// WriteRatios prints, for each run after the first, the first run's
// figure divided by that run's (below 1: the first run has less of it).
func WriteRatios(w io.Writer, runs []Result) {
	if len(runs) < 2 {
		return
	}
	base := runs[0]
	tw := tabwriter.NewWriter(w, 0, 4, 2, ' ', tabwriter.AlignRight)
	head := []string{"ratio"}
	for _, r := range runs[1:] {
		head = append(head, base.Profile+" / "+r.Profile)
	}
	fmt.Fprintln(tw, strings.Join(head, "\t")+"\t")
	for _, ra := range ratios {
		line := []string{ra.label}
		for _, r := range runs[1:] {
			line = append(line, divide(ra.value(base), ra.value(r)))
		}
		fmt.Fprintln(tw, strings.Join(line, "\t")+"\t")
	}
	tw.Flush()
}

func divide(a, b float64) string {
	if b == 0 {
		if a == 0 {
			return "-"
		}
		return "inf"
	}
	return fmt.Sprintf("%.2f", a/b)
}

// WriteGridTable prints one line per run: the grid's summary.
func WriteGridTable(w io.Writer, runs []Result) {
	tw := tabwriter.NewWriter(w, 0, 4, 2, ' ', tabwriter.AlignRight)
	fmt.Fprintln(tw, "peers\tblock\tprofile\tdelivery\tincompl\tttl p50\tttl p90\tttl p99\tlat p50\tlat p99\tamp\twire amp\tdup/deliv\torderer KiB/blk\ttakeovers\tCPU s\tRSS MiB\t")
	for _, r := range runs {
		fmt.Fprintf(tw, "%d\t%s\t%s\t%.4f\t%d\t%.1f\t%.1f\t%.1f\t%.1f\t%.1f\t%.3f\t%.3f\t%.2f\t%.1f\t%d\t%.2f\t%.0f\t\n",
			r.Peers, sizeName(r.BlockSize), r.Profile, r.DeliveryRatio, r.IncompleteBlocks,
			r.TimeToLast.P50, r.TimeToLast.P90, r.TimeToLast.P99, r.PeerLatency.P50, r.PeerLatency.P99,
			r.Amplification, r.WireAmplification, r.DuplicatesPerDelivery,
			r.OrdererEgressBytesPerBlock/1024, r.LeaderTakeovers, r.CPUSeconds, float64(r.PeakRSSBytes)/(1<<20))
	}
	tw.Flush()
}

func sizeName(n int) string {
	switch {
	case n >= 1<<20 && n%(1<<20) == 0:
		return fmt.Sprintf("%d MiB", n>>20)
	case n >= 1<<10 && n%(1<<10) == 0:
		return fmt.Sprintf("%d KiB", n>>10)
	}
	return fmt.Sprintf("%d B", n)
}

// GridOptions are the runs of the grid: N in {10, 50, 100} x block
// size in {1 KiB, 100 KiB, 1 MiB}, 30 blocks at 5 blocks/s, on base's
// transport, orgs, seed and deadlines.
func GridOptions(base Options) []Options {
	var out []Options
	for _, n := range []int{10, 50, 100} {
		for _, size := range []int{1 << 10, 100 << 10, 1 << 20} {
			o := base
			o.Peers, o.BlockSize, o.Blocks, o.Rate = n, size, 30, 5
			out = append(out, o)
		}
	}
	return out
}

// messagesLine is total, then the n most frequent types with their shares:
// "12.41 (membership_batch 6.02, ihave 4.10, block 1.01)".
func messagesLine(byType map[string]float64, total float64, n int) string {
	names := slices.SortedFunc(maps.Keys(byType), func(a, b string) int {
		return cmp.Or(cmp.Compare(byType[b], byType[a]), strings.Compare(a, b))
	})
	parts := make([]string, 0, n)
	for _, k := range names[:min(n, len(names))] {
		parts = append(parts, fmt.Sprintf("%s %.2f", k, byType[k]))
	}
	if len(parts) == 0 {
		return fmt.Sprintf("%.2f", total)
	}
	return fmt.Sprintf("%.2f (%s)", total, strings.Join(parts, ", "))
}
