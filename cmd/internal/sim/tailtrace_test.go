package sim

import (
	"bytes"
	"context"
	"fmt"
	"os"
	"regexp"
	"slices"
	"strconv"
	"strings"
	"testing"
)

// tailLog collects, from a trace of every peer, the events of each
// (peer, block) pair: the messages that carry or name the block, crashes,
// restarts and the commit. It parses msgTrace's lines.
type tailLog struct {
	buf     []byte
	cuts    map[int]float64
	events  map[[2]int][]tailEvent // (peer, block) -> its events
	commit  map[[2]int]float64
	downs   map[int][][2]float64 // peer -> [crash, restart]
	firstBy map[[2]int]copyFrom  // (peer, block) -> the first copy that reached it
	blocks  int
	lineRE  *regexp.Regexp
	msgRE   *regexp.Regexp
	numsRE  *regexp.Regexp
	rangeRE *regexp.Regexp
}

// tailEvent is one line of a (peer, block) pair, at its virtual time
// (a crash or restart may come before the block's cut is known).
type tailEvent struct {
	at   float64
	what string
}

func newTailLog(blocks int) *tailLog {
	return &tailLog{
		cuts: map[int]float64{}, events: map[[2]int][]tailEvent{}, commit: map[[2]int]float64{},
		downs: map[int][][2]float64{}, firstBy: map[[2]int]copyFrom{}, blocks: blocks,
		lineRE:  regexp.MustCompile(`^\s*([0-9.]+) ms  (.*)$`),
		msgRE:   regexp.MustCompile(`^(\d+) -> (\d+) (.*)$`),
		numsRE:  regexp.MustCompile(`^(block|ihave|graft) (\d+)`),
		rangeRE: regexp.MustCompile(`\[(\d+),(\d+)\)`),
	}
}

func (l *tailLog) Write(b []byte) (int, error) {
	l.buf = append(l.buf, b...)
	for {
		i := bytes.IndexByte(l.buf, '\n')
		if i < 0 {
			break
		}
		l.line(string(l.buf[:i]))
		l.buf = l.buf[i+1:]
	}
	return len(b), nil
}

func (l *tailLog) add(peer, block int, at float64, s string) {
	if block < 0 || block >= l.blocks {
		return
	}
	k := [2]int{peer, block}
	l.events[k] = append(l.events[k], tailEvent{at, s})
}

func (l *tailLog) line(s string) {
	m := l.lineRE.FindStringSubmatch(s)
	if m == nil {
		return
	}
	at, _ := strconv.ParseFloat(m[1], 64)
	rest := m[2]
	var a, b int
	var word string
	switch {
	case strings.HasPrefix(rest, "orderer cuts block "):
		n, _ := strconv.Atoi(strings.TrimPrefix(rest, "orderer cuts block "))
		l.cuts[n] = at
		return
	case strings.Contains(rest, " crashes at height"):
		fmt.Sscan(rest, &a)
		l.downs[a] = append(l.downs[a], [2]float64{at, 1e18})
		for n := range l.blocks {
			l.add(a, n, at, "CRASH")
		}
		return
	case strings.Contains(rest, " restarts at height"):
		fmt.Sscan(rest, &a)
		d := l.downs[a]
		d[len(d)-1][1] = at
		for n := range l.blocks {
			l.add(a, n, at, "RESTART "+rest)
		}
		return
	case strings.Contains(rest, " commits block "):
		fmt.Sscanf(rest, "%d commits block %d via %s", &a, &b, &word)
		l.commit[[2]int{a, b}] = at
		l.add(a, b, at, "COMMIT via "+word)
		return
	}
	mm := l.msgRE.FindStringSubmatch(rest)
	if mm == nil {
		return
	}
	from, _ := strconv.Atoi(mm[1])
	to, _ := strconv.Atoi(mm[2])
	desc := mm[3]
	if strings.Contains(desc, "alive") || strings.Contains(desc, "leadership") || strings.Contains(desc, "Membership") {
		return
	}
	var nums []int
	if x := l.numsRE.FindStringSubmatch(desc); x != nil {
		n, _ := strconv.Atoi(x[2])
		nums = append(nums, n)
	} else if i := strings.Index(desc, "blocks "); i >= 0 {
		for _, f := range strings.Split(strings.Fields(desc[i+7:])[0], ",") {
			if n, err := strconv.Atoi(f); err == nil {
				nums = append(nums, n)
			}
		}
	} else if strings.HasPrefix(desc, "pull-request") || strings.HasPrefix(desc, "state-request") {
		for _, r := range l.rangeRE.FindAllStringSubmatch(desc, -1) {
			s, _ := strconv.Atoi(r[1])
			e, _ := strconv.Atoi(r[2])
			for n := s; n < e && n < l.blocks; n++ {
				nums = append(nums, n)
			}
		}
	}
	if len(nums) == 1 && strings.HasPrefix(desc, "block ") && !strings.Contains(desc, "lost") {
		if _, ok := l.firstBy[[2]int{to, nums[0]}]; !ok {
			l.firstBy[[2]int{to, nums[0]}] = copyFrom{from, at}
		}
	}
	for _, n := range nums {
		l.add(from, n, at, fmt.Sprintf("%d -> %d %s", from, to, desc))
		l.add(to, n, at, fmt.Sprintf("%d -> %d %s", from, to, desc))
	}
}

// copyFrom is a block copy's sender and arrival time.
type copyFrom struct {
	from int
	at   float64
}

// path is the way block n came to peer: each sender of the first copy
// that reached the one after it, back to a peer that got it otherwise
// (the leader from the orderer, or pull), with arrival times from the cut.
func (l *tailLog) path(peer, n int) string {
	var hops []string
	for range 64 {
		c, ok := l.firstBy[[2]int{peer, n}]
		if commit, done := l.commit[[2]int{peer, n}]; !ok || done && commit < c.at {
			break // it had the block before any copy came (the orderer, pull)
		}
		hops = append(hops, fmt.Sprintf("%d@%.1f", peer, c.at-l.cuts[n]))
		peer = c.from
	}
	first := strconv.Itoa(peer)
	if c, ok := l.commit[[2]int{peer, n}]; ok {
		first = fmt.Sprintf("%d (committed @%.1f)", peer, c-l.cuts[n])
	}
	hops = append(hops, first)
	slices.Reverse(hops)
	return strings.Join(hops, " -> ")
}

// live reports whether peer was up from the cut of block n to its commit.
func (l *tailLog) live(peer, n int) bool {
	c, ok := l.commit[[2]int{peer, n}]
	if !ok {
		return false
	}
	for _, d := range l.downs[peer] {
		if d[0] <= c && d[1] >= l.cuts[n] {
			return false
		}
	}
	return true
}

// TestTailTrace prints, for a churn+loss run of the default profile named
// in SIM_TAIL ("peers,seed[,k[,peer]]", e.g. 1000,2,10), the last live peer of
// every block, then the k slowest live (peer, block) pairs with every
// event of each that names the block (times from the block's cut; a
// received message at its arrival, a lost one when sent): which copy was
// lost, when the IHaves came, when each graft went. Skipped without
// SIM_TAIL. With a fourth field, it prints instead every event of that
// peer, block by block (a restarted peer's catch-up).
func TestTailTrace(t *testing.T) {
	spec := os.Getenv("SIM_TAIL")
	if spec == "" {
		t.Skip("set SIM_TAIL=peers,seed[,k[,peer]] (and SIM_NOTICE=1 for Options.CrashNotice)")
	}
	f := strings.Split(spec, ",")
	o := DefaultOptions()
	o.Loss, o.Churn = 0.05, 0.1
	o.CrashNotice = os.Getenv("SIM_NOTICE") != ""
	o.Peers, _ = strconv.Atoi(f[0])
	o.Seed, _ = strconv.ParseUint(f[1], 10, 64)
	k := 10
	if len(f) > 2 {
		k, _ = strconv.Atoi(f[2])
	}
	l := newTailLog(o.Blocks)
	o.trace = &msgTrace{out: l, peers: map[int]bool{}}
	for i := range o.Peers {
		o.trace.peers[i] = true
	}
	r, err := Run(context.Background(), o, ProfileDefault, nil)
	if err != nil {
		t.Fatal(err)
	}
	type pair struct {
		peer, block int
		ms          float64
	}
	var pairs []pair
	last := map[int]pair{}
	for key, c := range l.commit {
		if !l.live(key[0], key[1]) {
			continue
		}
		p := pair{key[0], key[1], c - l.cuts[key[1]]}
		pairs = append(pairs, p)
		if p.ms > last[p.block].ms {
			last[p.block] = p
		}
	}
	slices.SortFunc(pairs, func(a, b pair) int {
		if a.ms != b.ms {
			if a.ms > b.ms {
				return -1
			}
			return 1
		}
		return a.peer - b.peer
	})
	var lasts []pair
	for _, p := range last {
		lasts = append(lasts, p)
	}
	slices.SortFunc(lasts, func(a, b pair) int { return a.block - b.block })
	fmt.Printf("live p50/p99 %+v\nlast live peer per block:\n", r.TimeToLastLive)
	for _, p := range lasts {
		fmt.Printf("  block %2d peer %4d %6.1f ms\n", p.block, p.peer, p.ms)
	}
	if len(f) > 3 { // one peer's every event, block by block
		peer, _ := strconv.Atoi(f[3])
		for n := range o.Blocks {
			fmt.Printf("\n== peer %d block %d (cut at %.1f ms)\n", peer, n, l.cuts[n])
			for _, e := range l.events[[2]int{peer, n}] {
				fmt.Printf("    %+8.1f %s\n", e.at-l.cuts[n], e.what)
			}
		}
		return
	}
	for _, p := range pairs[:min(k, len(pairs))] {
		fmt.Printf("\n== peer %d block %d: %.1f ms\n   path %s\n", p.peer, p.block, p.ms, l.path(p.peer, p.block))
		for _, e := range l.events[[2]int{p.peer, p.block}] {
			fmt.Printf("    %+8.1f %s\n", e.at-l.cuts[p.block], e.what)
		}
	}
}
