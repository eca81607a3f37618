package bench

import (
	"context"
	"fmt"
	"log/slog"
	"math/rand/v2"
	"os"
	"runtime"
	"runtime/debug"
	"runtime/metrics"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"time"

	"github.com/blockgossip/blockgossip/gossip"
	"github.com/blockgossip/blockgossip/ledger"
	"google.golang.org/protobuf/proto"
)

// Result is one profile run: the workload, the figures and the process
// costs. Its JSON form is one entry of `bench --json`'s "runs".
type Result struct {
	Profile   string  `json:"profile"`
	Transport string  `json:"transport"`
	Peers     int     `json:"peers"`
	Orgs      int     `json:"orgs"`
	BlockSize int     `json:"block_size"`
	Blocks    int     `json:"blocks"`
	Rate      float64 `json:"rate"`
	Seed      uint64  `json:"seed"`
	Figures
	// Deliveries is the number of (peer, block) commits of timed blocks.
	Deliveries int `json:"deliveries"`
	// BlockBytesReceived, ControlBytesReceived and OrdererEgressBytes are
	// the raw byte counts behind the amplification figures.
	BlockBytesReceived   uint64 `json:"block_bytes_received"`
	ControlBytesReceived uint64 `json:"control_bytes_received"`
	OrdererEgressBytes   uint64 `json:"orderer_egress_bytes"`
	MeanBlockBytes       int    `json:"mean_block_bytes"`
	// LeaderTakeovers counts peers becoming leader during the timed part:
	// 0 in a stable network; each one opens another deliver stream.
	LeaderTakeovers uint64 `json:"leader_takeovers"`
	// NewLinksPerPeer is how many peers each peer first heard from during
	// the timed part (each a stream opened: over gRPC a TLS handshake, and
	// buffers and goroutines held at both ends); LinksPerPeer how many it
	// had heard from by the end. Direct delivery needs none.
	NewLinksPerPeer float64 `json:"new_links_per_peer"`
	LinksPerPeer    float64 `json:"links_per_peer"`
	// CPUSeconds is user+system CPU of the timed part (cutting and drain);
	// CPUSecondsTotal includes set-up, warm-up and stop.
	CPUSeconds      float64 `json:"cpu_seconds"`
	CPUSecondsTotal float64 `json:"cpu_seconds_total"`
	// GCCycles and AllocBytes are the Go garbage collections completed
	// and the heap bytes allocated during the timed part: all peers share
	// one heap here, so a collection's assists and pauses hold up every
	// peer at once, and the allocation rate sets how often they come.
	GCCycles   uint64 `json:"gc_cycles"`
	AllocBytes uint64 `json:"alloc_bytes"`
	// GCPercent is the collector's target (GOGC) the run had; the bench
	// command sets 400 unless GOGC is set.
	GCPercent int `json:"gc_percent"`
	// PeakRSSBytes is the process's peak resident set (VmHWM).
	PeakRSSBytes uint64 `json:"peak_rss_bytes"`
	// Goroutines is runtime.NumGoroutine as the timed part ends: the
	// peers' loops, streams and timers all share the child's Ps, and on a
	// saturated host a preempted goroutine waits in the scheduler's global
	// run queue behind the others (at 100 peers over gRPC, ~20,000 of
	// them, and a peer's stalled node loop set the p99).
	Goroutines int `json:"goroutines"`
	// WarmupSeconds is how long the untimed warm-up took; WarmupComplete
	// is false if it hit Options.WarmupTimeout.
	WarmupSeconds  float64 `json:"warmup_s"`
	WarmupComplete bool    `json:"warmup_complete"`
	// WarmupTimeToLastMs are the untimed warm-up blocks' times to the
	// last peer, in cut order (-1: it had not reached every peer within
	// Drain).
	WarmupTimeToLastMs []float64 `json:"warmup_time_to_last_ms"`
	// TimedSeconds is from the first cut to the end of the drain.
	TimedSeconds float64 `json:"timed_s"`
}

// Progress is told how many timed blocks have reached every peer and how
// many were cut; it is called from one goroutine, a few times a second.
type Progress func(phase string, complete, cut, total int)

// Run runs one profile in this process and returns its result. It honours
// ctx: cancelled, it stops the network and returns what it has so far
// together with ctx's error. progress may be nil; logger nil discards.
func Run(ctx context.Context, opts Options, profileName string, progress Progress, logger *slog.Logger) (Result, error) {
	res := Result{Profile: profileName, Transport: opts.Transport, Peers: opts.Peers, Orgs: opts.Orgs,
		BlockSize: opts.BlockSize, Blocks: opts.Blocks, Rate: opts.Rate, Seed: opts.Seed}
	res.TimeToLastSamples, res.WarmupTimeToLastMs = []float64{}, []float64{}
	if err := opts.Validate(); err != nil {
		return res, err
	}
	prof, err := profileConfig(profileName)
	if err != nil {
		return res, err
	}
	if logger == nil {
		logger = slog.New(slog.DiscardHandler)
	}
	if progress == nil {
		progress = func(string, int, int, int) {}
	}
	cpu0 := cpuSeconds()
	ctx, cancel := context.WithTimeout(ctx, opts.Deadline())
	defer cancel()

	rec := newRecorder(opts.Peers, opts.Blocks)
	net, err := startNetwork(ctx, opts, prof, rec, logger)
	if err != nil {
		return res, err
	}
	defer net.stop()

	warm := time.Now()
	res.WarmupComplete = net.warmUp(ctx, progress)
	res.WarmupSeconds = time.Since(warm).Seconds()
	if !res.WarmupComplete {
		logger.Warn("warm-up did not settle; timing anyway", "after", opts.WarmupTimeout)
	}
	if res.WarmupTimeToLastMs, err = net.warmBlocks(ctx, rec, progress); err != nil {
		return res, err
	}
	res.WarmupSeconds = time.Since(warm).Seconds()

	counters := make([]*counters, len(net.peers))
	for i, p := range net.peers {
		counters[i] = p.ctr
	}
	// Collect the untimed part's garbage before timing, as testing.B does
	// before each benchmark: otherwise the collection it owes lands at a
	// random moment of the timed part (at GOGC=400, once in every 50-peer
	// run), and the block then in flight pays for the marking at each hop.
	runtime.GC()
	endTimed := func() {}
	if opts.OnTimed != nil {
		endTimed = opts.OnTimed()
	}
	before := snapshot(counters)
	cpu1, gc1 := cpuSeconds(), readGC()
	start := time.Now()
	cuts, err := net.feed(ctx, rec, progress)
	if err == nil {
		net.drain(ctx, rec, len(cuts), progress)
	}
	endTimed()
	res.Goroutines = runtime.NumGoroutine()
	traffic := snapshot(counters).minus(before)
	res.CPUSeconds = cpuSeconds() - cpu1
	gc2 := readGC()
	res.GCCycles, res.AllocBytes = gc2.cycles-gc1.cycles, gc2.alloc-gc1.alloc
	res.GCPercent = debug.SetGCPercent(-1) // read back (there is no getter), then restored
	debug.SetGCPercent(res.GCPercent)
	res.TimedSeconds = time.Since(start).Seconds()

	r := Record{Peers: opts.Peers, Planned: opts.Blocks, Cuts: cuts, Deliveries: rec.timed(), Traffic: traffic, PeerIDs: net.peerIDs()}
	res.Figures = Compute(r)
	res.Deliveries = len(r.Deliveries)
	res.BlockBytesReceived, res.ControlBytesReceived = traffic.BlockBytes, traffic.ControlBytes
	res.OrdererEgressBytes = traffic.OrdererEgressBytes
	res.LeaderTakeovers = traffic.LeaderTakeovers
	res.NewLinksPerPeer = float64(traffic.Links) / float64(len(net.peers))
	res.LinksPerPeer = float64(traffic.LinksHeld) / float64(len(net.peers))
	total := 0
	for _, c := range cuts {
		total += c.Bytes
	}
	if len(cuts) > 0 {
		res.MeanBlockBytes = total / len(cuts)
	}
	net.stop()
	res.CPUSecondsTotal = cpuSeconds() - cpu0
	res.PeakRSSBytes = peakRSS()
	if err == nil {
		err = ctx.Err()
	}
	return res, err
}

// warmUp waits, untimed, until every peer holds the genesis block and, for
// gossip profiles, knows at least 90% of the other peers (the last few
// alive messages can take an anti-entropy round, 10 s, to arrive) and each
// org has exactly one leader. It reports whether that happened before the warm-up timeout.
func (n *network) warmUp(ctx context.Context, progress Progress) bool {
	deadline := time.NewTimer(n.opts.WarmupTimeout)
	defer deadline.Stop()
	tick := time.NewTicker(50 * time.Millisecond)
	defer tick.Stop()
	for {
		if n.settled() {
			return true
		}
		progress("warm-up", 0, 0, n.opts.Blocks)
		select {
		case <-ctx.Done():
			return false
		case <-deadline.C:
			return false
		case <-tick.C:
		}
	}
}

func (n *network) settled() bool {
	leaders := map[string]int{}
	for _, p := range n.peers {
		st := p.node.Status()
		if st.Height < 1 {
			return false
		}
		if n.prof.direct {
			continue
		}
		if st.LivePeers < n.quorum() {
			return false
		}
		if st.IsLeader {
			leaders[p.org]++
		}
	}
	if n.prof.direct {
		return true
	}
	orgs := map[string]bool{}
	for _, p := range n.peers {
		orgs[p.org] = true
	}
	for org := range orgs {
		if leaders[org] != 1 {
			return false
		}
	}
	return true
}

// quorum is how many other peers each peer must know for warm-up to end.
func (n *network) quorum() int {
	others := len(n.peers) - 1
	return others - others/10
}

// feed cuts the timed blocks: one every 1/Rate s, or, at Rate 0, each once
// the previous one reached every peer (or a drain period passed).
func (n *network) feed(ctx context.Context, rec *recorder, progress Progress) ([]Cut, error) {
	rng := rand.New(rand.NewPCG(n.opts.Seed, 0x62656e6368)) // "bench"
	payload := make([]byte, n.opts.BlockSize)
	for i := range payload {
		payload[i] = byte(rng.Uint32())
	}
	var tick *time.Ticker
	if n.opts.Rate > 0 {
		tick = time.NewTicker(time.Duration(float64(time.Second) / n.opts.Rate))
		defer tick.Stop()
	}
	cuts := make([]Cut, 0, n.opts.Blocks)
	for i := range n.opts.Blocks {
		if i > 0 {
			if tick != nil {
				select {
				case <-ctx.Done():
					return cuts, ctx.Err()
				case <-tick.C:
				}
			} else if !rec.waitComplete(ctx, i, n.opts.Drain) && ctx.Err() != nil {
				return cuts, ctx.Err()
			}
		}
		tx := append([]byte(nil), payload...)
		copy(tx, strconv.Itoa(i)+"|") // distinct transactions, distinct data hashes
		c, err := n.cutBlock(tx, rec.cut)
		if err != nil {
			return cuts, err
		}
		cuts = append(cuts, c)
		progress("cutting", rec.completeCount(), len(cuts), n.opts.Blocks)
	}
	return cuts, nil
}

// warmBlocks cuts Options.WarmupBlocks untimed blocks at the rate, each
// awaited at every peer for at most Drain, and returns their times to the
// last peer (-1 for one that did not get everywhere in time).
func (n *network) warmBlocks(ctx context.Context, rec *recorder, progress Progress) ([]float64, error) {
	times := []float64{}
	for i := range n.opts.WarmupBlocks {
		start := time.Now()
		tx := make([]byte, n.opts.BlockSize)
		copy(tx, "warm-up "+strconv.Itoa(i)+"|")
		c, err := n.cutBlock(tx, func(c Cut) { rec.warmCut(c.Number) })
		if err != nil {
			return times, err
		}
		last, ok := rec.waitWarm(ctx, c.Number, n.opts.Drain)
		if ctx.Err() != nil {
			return times, ctx.Err()
		}
		if ok {
			times = append(times, ms(last.Sub(c.At)))
		} else {
			times = append(times, -1)
		}
		progress("warm-up", 0, 0, n.opts.Blocks)
		if n.opts.Rate > 0 {
			select {
			case <-ctx.Done():
				return times, ctx.Err()
			case <-time.After(time.Until(start.Add(time.Duration(float64(time.Second) / n.opts.Rate)))):
			}
		}
	}
	return times, nil
}

// cutBlock has the orderer cut a block of tx, hands it to register (the
// recorder keeps commits that race ahead of it) and publishes the new
// height.
func (n *network) cutBlock(tx []byte, register func(Cut)) (Cut, error) {
	b, err := n.ord.CutBlock([][]byte{tx})
	if err != nil {
		return Cut{}, fmt.Errorf("cut block: %w", err)
	}
	hdr, err := ledger.ParseHeader(b)
	if err != nil {
		return Cut{}, fmt.Errorf("orderer cut an unreadable block: %w", err)
	}
	c := Cut{Number: hdr.GetNumber(), At: time.Unix(0, b.GetMetadata().GetCutTimeUnixNano()), Bytes: proto.Size(b)}
	register(c)
	if n.pub != nil {
		n.pub.publish(c.Number + 1)
	}
	return c, nil
}

// drain waits until every cut block reached every peer, or Drain passed.
func (n *network) drain(ctx context.Context, rec *recorder, cut int, progress Progress) {
	ctx, cancel := context.WithTimeout(ctx, n.opts.Drain)
	defer cancel()
	tick := time.NewTicker(200 * time.Millisecond)
	defer tick.Stop()
	done := make(chan struct{})
	go func() {
		defer close(done)
		rec.waitComplete(ctx, cut, n.opts.Drain)
	}()
	for {
		progress("draining", rec.completeCount(), cut, n.opts.Blocks)
		select {
		case <-done:
			progress("done", rec.completeCount(), cut, n.opts.Blocks)
			return
		case <-tick.C:
		}
	}
}

// recorder collects commits from every peer's commit reader.
type recorder struct {
	peers, blocks int

	mu         sync.Mutex
	cutNums    map[uint64]bool
	counts     map[uint64]int // peers that committed each timed block
	deliveries []Delivery
	pre        map[uint64][]Delivery // commits seen before their cut was recorded
	warm       map[uint64]*warmBlock // untimed warm-up blocks
	complete   int
	changed    chan struct{} // closed and replaced when complete grows
}

func newRecorder(peers, blocks int) *recorder {
	return &recorder{peers: peers, blocks: blocks, cutNums: map[uint64]bool{}, counts: map[uint64]int{},
		pre: map[uint64][]Delivery{}, warm: map[uint64]*warmBlock{}, changed: make(chan struct{})}
}

// warmBlock counts the commits of an untimed warm-up block.
type warmBlock struct {
	peers int
	last  time.Time
}

// warmCut registers an untimed warm-up block (commits that raced ahead
// of it move over from pre).
func (r *recorder) warmCut(number uint64) {
	r.mu.Lock()
	defer r.mu.Unlock()
	w := &warmBlock{}
	r.warm[number] = w
	for _, d := range r.pre[number] {
		r.warmLocked(w, d.At)
	}
	delete(r.pre, number)
}

func (r *recorder) warmLocked(w *warmBlock, at time.Time) {
	w.peers++
	if at.After(w.last) {
		w.last = at
	}
	if w.peers == r.peers {
		close(r.changed)
		r.changed = make(chan struct{})
	}
}

// waitWarm waits until warm-up block number reached every peer, for at
// most limit, and returns when the last one committed it.
func (r *recorder) waitWarm(ctx context.Context, number uint64, limit time.Duration) (time.Time, bool) {
	t := time.NewTimer(limit)
	defer t.Stop()
	for {
		r.mu.Lock()
		w, ch := r.warm[number], r.changed
		done := w != nil && w.peers >= r.peers
		var last time.Time
		if w != nil {
			last = w.last
		}
		r.mu.Unlock()
		if done {
			return last, true
		}
		select {
		case <-ch:
		case <-t.C:
			return time.Time{}, false
		case <-ctx.Done():
			return time.Time{}, false
		}
	}
}

// cut registers a timed block. A commit may race ahead of it (the orderer
// publishes before CutBlock returns): such commits wait in pre.
func (r *recorder) cut(c Cut) {
	r.mu.Lock()
	defer r.mu.Unlock()
	r.cutNums[c.Number] = true
	for _, d := range r.pre[c.Number] {
		r.addLocked(d)
	}
	delete(r.pre, c.Number)
}

func (r *recorder) commit(peer int, ev gossip.CommitEvent) {
	if ev.Number == 0 { // genesis: warm-up, not timed
		return
	}
	d := Delivery{Peer: peer, Number: ev.Number, At: ev.Time, Via: ev.Via, Hops: ev.Hops, From: ev.From}
	r.mu.Lock()
	defer r.mu.Unlock()
	if w := r.warm[ev.Number]; w != nil {
		r.warmLocked(w, ev.Time)
		return
	}
	if !r.cutNums[ev.Number] {
		r.pre[ev.Number] = append(r.pre[ev.Number], d)
		return
	}
	r.addLocked(d)
}

func (r *recorder) addLocked(d Delivery) {
	r.deliveries = append(r.deliveries, d)
	r.counts[d.Number]++
	if r.counts[d.Number] == r.peers {
		r.complete++
		close(r.changed)
		r.changed = make(chan struct{})
	}
}

func (r *recorder) completeCount() int {
	r.mu.Lock()
	defer r.mu.Unlock()
	return r.complete
}

// waitComplete waits until at least want timed blocks reached every peer,
// for at most limit; it reports whether they did.
func (r *recorder) waitComplete(ctx context.Context, want int, limit time.Duration) bool {
	t := time.NewTimer(limit)
	defer t.Stop()
	for {
		r.mu.Lock()
		ok, ch := r.complete >= want, r.changed
		r.mu.Unlock()
		if ok {
			return true
		}
		select {
		case <-ch:
		case <-t.C:
			return false
		case <-ctx.Done():
			return false
		}
	}
}

// timed returns the deliveries of timed blocks so far.
func (r *recorder) timed() []Delivery {
	r.mu.Lock()
	defer r.mu.Unlock()
	return append([]Delivery(nil), r.deliveries...)
}

// gcStats are the Go runtime's cumulative collection and allocation counts.
type gcStats struct{ cycles, alloc uint64 }

// readGC reads gcStats from runtime/metrics (no stop-the-world, unlike
// runtime.ReadMemStats).
func readGC() gcStats {
	s := []metrics.Sample{{Name: "/gc/cycles/total:gc-cycles"}, {Name: "/gc/heap/allocs:bytes"}}
	metrics.Read(s)
	var g gcStats
	if s[0].Value.Kind() == metrics.KindUint64 {
		g.cycles = s[0].Value.Uint64()
	}
	if s[1].Value.Kind() == metrics.KindUint64 {
		g.alloc = s[1].Value.Uint64()
	}
	return g
}

// cpuSeconds is this process's user+system CPU time so far.
func cpuSeconds() float64 {
	var ru syscall.Rusage
	if err := syscall.Getrusage(syscall.RUSAGE_SELF, &ru); err != nil {
		return 0
	}
	return time.Duration(ru.Utime.Nano() + ru.Stime.Nano()).Seconds()
}

// peakRSS is this process's peak resident set size (VmHWM), 0 if unknown.
func peakRSS() uint64 {
	b, err := os.ReadFile("/proc/self/status")
	if err != nil {
		return 0
	}
	for _, line := range strings.Split(string(b), "\n") {
		if rest, ok := strings.CutPrefix(line, "VmHWM:"); ok {
			f := strings.Fields(rest) // "123456 kB"
			if len(f) >= 1 {
				kb, err := strconv.ParseUint(f[0], 10, 64)
				if err == nil {
					return kb << 10
				}
			}
		}
	}
	return 0
}
