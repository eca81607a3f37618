package sim

import (
	"context"
	"fmt"
	"math/rand/v2"
	"slices"
	"time"

	"github.com/blockgossip/blockgossip/cmd/internal/bench"
	"github.com/blockgossip/blockgossip/gossip"
	"github.com/blockgossip/blockgossip/identity"
	pb "github.com/blockgossip/blockgossip/protos"
	"google.golang.org/protobuf/proto"
)

// Progress is told, about once per virtual second, where a run stands.
type Progress func(profile string, virtual time.Duration, cut, complete, total int, events uint64)

// world is one run: the peers, the network and the measurements. Only
// Run's goroutine touches it.
type world struct {
	o       Options
	profile string
	cfg     gossip.Config
	lat     latencyFunc
	net     *rand.Rand // loss and latency draws
	nodes   []*node
	index   map[identity.PKIID]int32
	events  eventHeap
	seq     uint64
	now     int64 // virtual ns
	handled uint64
	// Per peer: when it last ticked, and when its next sub-tick event is
	// due (0: none armed). Sub-ticks are scheduled only while the Peer has
	// a tree or pull timer pending (NextWake), as the Node arms its timer.
	tickAt, subAt []int64

	chain    []*pb.Block
	fullView *pb.Envelope // View 0: one response with every alive
	leaders  []int        // the peer the orderer feeds, per org

	measuring  bool
	cuts       []bench.Cut
	deliveries []bench.Delivery
	traffic    bench.Traffic
	messages   uint64
	reached    []int    // per block: peers that committed it
	complete   int      // blocks every peer committed
	maxHops    []uint32 // per block: deepest push hop count
	crashes    int
	notices    int        // broken streams told (Options.CrashNotice)
	downs      []downSpan // every crash, in order
	restarts   []restart  // every restart, in order
}

func (w *world) schedule(e event) {
	e.seq = w.seq
	w.seq++
	w.events.push(e)
}

// Run simulates one profile. ctx cancels it between events. Run works on
// the caller's goroutine and starts none (TestRunStartsNoGoroutine); runs
// share no mutable state, so several may go at once (RunSweep does).
func Run(ctx context.Context, o Options, profile string, progress Progress) (Result, error) {
	if err := o.Validate(); err != nil {
		return Result{}, err
	}
	cfg, err := profileConfig(profile, o)
	if err != nil {
		return Result{}, err
	}
	if o.editConfig != nil {
		o.editConfig(&cfg)
	}
	lat, _ := ParseLatency(o.Latency)
	w := &world{
		o: o, profile: profile, cfg: cfg, lat: lat,
		net:   rand.New(rand.NewPCG(o.Seed, 0x6e6574)),
		index: make(map[identity.PKIID]int32, o.Peers),
	}
	setup := rand.New(rand.NewPCG(o.Seed, 0x736574))
	w.nodes = make([]*node, o.Peers)
	w.tickAt, w.subAt = make([]int64, o.Peers), make([]int64, o.Peers)
	for i := range w.nodes {
		n := &node{id: peerID(i), org: fmt.Sprintf("org%d", i%o.Orgs+1), led: &chainLedger{chain: &w.chain}, inc: 1}
		w.nodes[i] = n
		w.index[n.id] = int32(i)
	}
	for org := range o.Orgs {
		w.leaders = append(w.leaders, org)
	}
	if o.View > 0 {
		w.buildViews(setup)
	} else {
		resp := &pb.MembershipResponse{}
		for i := range w.nodes {
			resp.Alive = append(resp.Alive, w.alive(i))
		}
		w.fullView = wrap(&pb.GossipMessage{Content: &pb.GossipMessage_MembershipResponse{MembershipResponse: resp}})
	}
	tick := int64(cfg.TickInterval)
	for i := range w.nodes {
		if err := w.startPeer(i); err != nil {
			return Result{}, err
		}
		// Peers tick at random phases, as independent machines would.
		w.schedule(event{at: 1 + setup.Int64N(tick), kind: evTick, to: int32(i)})
	}
	w.fullView = nil
	w.reached = make([]int, o.Blocks)
	w.maxHops = make([]uint32, o.Blocks)
	interval := int64(float64(time.Second) / o.Rate)
	start := int64(o.Warmup)
	for k := range o.Blocks {
		w.schedule(event{at: start + int64(k)*interval, kind: evCut})
	}
	lastCut := start + int64(o.Blocks-1)*interval
	w.scheduleChurn(setup, start, lastCut)
	deadline := lastCut + int64(o.Drain)

	nextProgress := int64(time.Second)
	for len(w.events) > 0 {
		e := w.events.pop()
		if e.at > deadline || (len(w.cuts) == o.Blocks && w.complete == o.Blocks && w.crashesDone()) {
			break
		}
		w.now = e.at
		w.handled++
		if w.handled%4096 == 0 && ctx.Err() != nil {
			return Result{}, ctx.Err()
		}
		if progress != nil && w.now >= nextProgress {
			progress(profile, time.Duration(w.now), len(w.cuts), w.complete, o.Blocks, w.handled)
			nextProgress += int64(time.Second)
		}
		if err := w.handle(e); err != nil {
			return Result{}, err
		}
	}
	if progress != nil {
		progress(profile, time.Duration(w.now), len(w.cuts), w.complete, o.Blocks, w.handled)
	}
	return w.result(), nil
}

// crashesDone: every crashed peer has restarted (a run does not end while
// restarts are still scheduled).
func (w *world) crashesDone() bool {
	for _, n := range w.nodes {
		if n.down {
			return false
		}
	}
	return true
}

// scheduleChurn picks round(Churn x peers) peers other than the leaders;
// each crashes at a random time while blocks are being cut and restarts
// 0.5 to 2 s later with its ledger and a new incarnation.
func (w *world) scheduleChurn(rng *rand.Rand, from, to int64) {
	k := int(w.o.Churn*float64(len(w.nodes)) + 0.5)
	candidates := make([]int32, 0, len(w.nodes))
	for i := range w.nodes {
		if !slices.Contains(w.leaders, i) {
			candidates = append(candidates, int32(i))
		}
	}
	rng.Shuffle(len(candidates), func(a, b int) { candidates[a], candidates[b] = candidates[b], candidates[a] })
	for _, i := range candidates[:min(k, len(candidates))] {
		at := from + rng.Int64N(to-from+1)
		down := int64(500*time.Millisecond) + rng.Int64N(int64(1500*time.Millisecond))
		w.schedule(event{at: at, kind: evCrash, to: i})
		w.schedule(event{at: at + down, kind: evRestart, to: i})
	}
}

func (w *world) handle(e event) error {
	switch e.kind {
	case evMsg:
		dst := w.nodes[e.to]
		if t := w.o.trace; t != nil && t.on(int(e.from), int(e.to)) {
			lost := ""
			if dst.down || dst.epoch != e.epoch {
				lost = " (lost: receiver crashed)"
			}
			t.logf(w.now, "%d -> %d %s%s", e.from, e.to, describe(e.env), lost)
		}
		if dst.down || dst.epoch != e.epoch {
			return nil // lost with the crashed process
		}
		w.catchUp(int(e.to)) // what the message starts is timed from now, as on a Node
		src := w.nodes[e.from]
		size := proto.Size(e.env)
		if w.measuring {
			w.messages++
			name, block := bench.ClassifyMessage(e.env)
			if block {
				w.traffic.BlockBytes += uint64(size)
			} else {
				w.traffic.ControlBytes += uint64(size)
			}
			if w.traffic.Messages == nil {
				w.traffic.Messages = map[string]uint64{}
			}
			w.traffic.Messages[name]++
		}
		dst.p.Step(src.id, src.org, e.env, size)
		w.collect(int(e.to))
	case evTick:
		n := w.nodes[e.to]
		if n.down || n.epoch != e.epoch {
			return nil // a crashed peer stops ticking; the restart starts a new chain
		}
		n.p.Tick()
		w.tickAt[e.to] = w.now
		w.collect(int(e.to))
		e.at += int64(w.cfg.TickInterval)
		w.schedule(e)
	case evSubTick:
		n := w.nodes[e.to]
		if n.down || n.epoch != e.epoch || w.subAt[e.to] != e.at {
			return nil // crashed, or re-armed for another time
		}
		w.subAt[e.to] = 0
		n.p.Wake(w.subNow(int(e.to)))
		w.collect(int(e.to))
	case evCut:
		return w.cut()
	case evLinkDown:
		n := w.nodes[e.to]
		if n.down || n.epoch != e.epoch {
			return nil
		}
		if t := w.o.trace; t != nil && t.on(int(e.from), int(e.to)) {
			t.logf(w.now, "%d sees its stream to %d break", e.to, e.from)
		}
		w.notices++
		w.catchUp(int(e.to))
		n.p.LinkDown(w.nodes[e.from].id)
		w.collect(int(e.to))
	case evCrash:
		n := w.nodes[e.to]
		if t := w.o.trace; t != nil && t.on(int(e.to)) {
			t.logf(w.now, "%d crashes at height %d", e.to, n.led.height)
		}
		w.noticeCrash(int(e.to))
		n.down, n.p = true, nil
		n.epoch++
		w.crashes++
		w.downs = append(w.downs, downSpan{peer: e.to, from: w.now, to: -1})
	case evRestart:
		n := w.nodes[e.to]
		n.down = false
		n.epoch++
		n.inc++
		for k := len(w.downs) - 1; k >= 0; k-- {
			if w.downs[k].peer == e.to && w.downs[k].to < 0 {
				w.downs[k].to = w.now
				break
			}
		}
		w.restarts = append(w.restarts, restart{peer: e.to, at: w.now, need: len(w.cuts)})
		if t := w.o.trace; t != nil && t.on(int(e.to)) {
			t.logf(w.now, "%d restarts at height %d, %d blocks cut", e.to, n.led.height, len(w.cuts))
		}
		if err := w.startPeer(int(e.to)); err != nil {
			return err
		}
		w.tickAt[e.to], w.subAt[e.to] = w.now, 0
		w.schedule(event{at: w.now + 1, kind: evTick, to: e.to, epoch: n.epoch})
	}
	return nil
}

// noticeCrash schedules, with Options.CrashNotice, the broken stream that
// each tree neighbour of crashing peer i sees one network delay later.
func (w *world) noticeCrash(i int) {
	if !w.o.CrashNotice {
		return
	}
	id := w.nodes[i].id
	for j, n := range w.nodes {
		if j == i || n.down || n.p == nil || !n.p.Linked(id) {
			continue
		}
		d := w.lat(i, j, w.net.Int64N)
		w.schedule(event{at: w.now + int64(d), kind: evLinkDown, from: int32(i), to: int32(j), epoch: n.epoch})
	}
}

// cut makes the next block and hands it to every org's leader.
func (w *world) cut() error {
	k := uint64(len(w.chain))
	var prev []byte
	if k > 0 {
		prev = ledgerHash(w.chain[k-1])
	}
	b := newBlock(k, prev, w.o.BlockSize, w.now, rand.New(rand.NewPCG(w.o.Seed, 0xb10c00+k)))
	w.chain = append(w.chain, b)
	size := proto.Size(b)
	w.measuring = true
	w.cuts = append(w.cuts, bench.Cut{Number: k, At: time.Unix(0, w.now), Bytes: size})
	if t := w.o.trace; t != nil {
		t.logf(w.now, "orderer cuts block %d", k)
	}
	for _, l := range w.leaders {
		w.traffic.OrdererEgressBytes += uint64(size)
		w.traffic.BlockBytes += uint64(size)
		w.catchUp(l)
		if err := w.nodes[l].p.InjectBlock(b); err != nil {
			return fmt.Errorf("leader %d refused block %d: %w", l, k, err)
		}
		w.collect(l)
	}
	return nil
}

// collect sends what peer i asked to send and records its commits.
func (w *world) collect(i int) {
	n := w.nodes[i]
	r := n.p.Ready()
	for _, m := range r.Messages {
		to, ok := w.index[m.To.ID]
		if !ok || int(to) == i {
			continue
		}
		if w.o.Loss > 0 && w.net.Float64() < w.o.Loss {
			if t := w.o.trace; t != nil && t.on(i, int(to)) {
				t.logf(w.now, "%d -> %d %s (lost on the wire)", i, to, describe(m.Env))
			}
			continue
		}
		d := w.lat(i, int(to), w.net.Int64N)
		w.schedule(event{at: w.now + int64(d), kind: evMsg, from: int32(i), to: to, epoch: w.nodes[to].epoch, env: m.Env})
	}
	for _, c := range r.Commits {
		if c.Number >= uint64(w.o.Blocks) {
			continue
		}
		w.deliveries = append(w.deliveries, bench.Delivery{Peer: i, Number: c.Number, At: time.Unix(0, w.now), Via: c.Via, Hops: c.Hops})
		if t := w.o.trace; t != nil && t.on(i) {
			t.logf(w.now, "%d commits block %d via %s", i, c.Number, c.Via)
		}
		if c.Via == gossip.ViaPush && c.Hops > w.maxHops[c.Number] {
			w.maxHops[c.Number] = c.Hops
		}
		w.reached[c.Number]++
		if w.reached[c.Number] == len(w.nodes) {
			w.complete++
		}
	}
	w.armSubTick(i)
}

// subNow is peer i's current tree sub-tick within its tick.
func (w *world) subNow(i int) int {
	res := int64(w.cfg.TreeResolution)
	if res <= 1 {
		return 0
	}
	k := (w.now - w.tickAt[i]) * res / int64(w.cfg.TickInterval)
	return int(min(k, res-1))
}

// catchUp moves peer i's tree and pull clocks to now (running any timer
// due, which its sub-tick event would have run at this same time).
func (w *world) catchUp(i int) {
	if w.cfg.TreeResolution > 1 {
		w.nodes[i].p.Wake(w.subNow(i))
	}
}

// armSubTick schedules a sub-tick event for peer i's earliest tree or
// pull timer due before its next tick, unless one is armed for that time
// or earlier.
func (w *world) armSubTick(i int) {
	n := w.nodes[i]
	if w.cfg.TreeResolution <= 1 || n.p == nil {
		return
	}
	k, ok := n.p.NextWake()
	if !ok {
		return
	}
	res := int64(w.cfg.TreeResolution)
	at := max(w.tickAt[i]+(int64(w.cfg.TickInterval)*int64(k)+res-1)/res, w.now) // rounded up: subNow then says k
	if s := w.subAt[i]; s != 0 && s >= w.now && s <= at {
		return
	}
	w.subAt[i] = at
	w.schedule(event{at: at, kind: evSubTick, to: int32(i), epoch: n.epoch})
}
