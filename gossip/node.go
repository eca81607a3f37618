package gossip

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"math/rand/v2"
	"sync"
	"time"

	"github.com/blockgossip/blockgossip/comm"
	"github.com/blockgossip/blockgossip/identity"
	"github.com/blockgossip/blockgossip/ledger"
	pb "github.com/blockgossip/blockgossip/protos"
	"google.golang.org/protobuf/proto"
)

// BlockSource is the orderer deliver client. The Node runs it only while
// this peer leads its org.
type BlockSource interface {
	// Run streams blocks from fromHeight on, calling deliver for each in
	// order, until ctx is cancelled (then it returns ctx.Err()) or it fails.
	// deliver may block; it returns once the Node has taken the block.
	Run(ctx context.Context, fromHeight uint64, deliver func(*pb.Block)) error
}

// Deps are a Node's collaborators. Transport, Ledger, Verifier, Crypto,
// Self and Incarnations are required.
type Deps struct {
	Transport comm.Transport
	Ledger    Ledger
	// Verifier checks the orderer's signature on blocks.
	Verifier ledger.BlockVerifier
	Crypto   Crypto
	// Self describes this peer; Self.Incarnation is ignored and taken from
	// Incarnations.
	Self         Self
	Incarnations IncarnationStore
	// Bootstrap lists endpoints to learn the membership from.
	Bootstrap []string
	// Orderer, if set, is run while this peer leads its org; its blocks
	// are injected.
	Orderer BlockSource
	// Logger defaults to discarding.
	Logger *slog.Logger
	// Metrics defaults to NopMetrics().
	Metrics *Metrics
	// Tracer, if set, sees every protocol event (from the Node's goroutine).
	Tracer Tracer
	// Seed seeds the protocol's random choices; 0 picks a random seed.
	Seed uint64
}

// CommitEvent tells that a block was committed.
type CommitEvent struct {
	Number uint64
	Hash   []byte
	Via    Via
	Hops   uint32
	// From is the peer whose copy was committed (this Node's own ID for a
	// block from the orderer).
	From identity.PKIID
	// Time is when the Node committed it.
	Time time.Time
}

// Status is a snapshot of a Node.
type Status struct {
	Height      uint64
	TipHash     []byte
	LivePeers   int
	Leader      identity.PKIID
	HasLeader   bool
	IsLeader    bool
	Incarnation uint64
}

// Node errors.
var (
	// ErrNotRunning: the Node's Run has not started or has returned.
	ErrNotRunning = errors.New("gossip node is not running")
	// ErrAlreadyRunning: Run was called twice; a Node runs once.
	ErrAlreadyRunning = errors.New("gossip node already running")
)

// commitBuffer is how many commit events wait for a slow reader before
// new ones are dropped (and counted in QueueDrops{queue="commits"}).
const commitBuffer = 4096

// Node runs one Peer on a real transport and a real ticker. One goroutine
// (Run's) owns the Peer; everything else talks to it through channels.
type Node struct {
	cfg  Config
	deps Deps
	log  *slog.Logger
	met  *Metrics
	peer *Peer

	commits chan CommitEvent
	inject  chan injectReq
	started chan struct{} // closed when Run starts
	stopped chan struct{} // closed when Run returns

	ord  ordererState // owned by Run's goroutine
	tree treeTimer    // owned by Run's goroutine

	mu     sync.Mutex
	status Status
	ran    bool
}

type injectReq struct {
	b    *pb.Block
	done chan error
}

// NewNode checks cfg and deps and builds the Node. It starts nothing; it
// takes the next incarnation from deps.Incarnations.
func NewNode(cfg Config, deps Deps) (*Node, error) {
	if err := cfg.validateNode(); err != nil {
		return nil, err
	}
	switch {
	case deps.Transport == nil:
		return nil, fmt.Errorf("%w: Deps.Transport", ErrMissingDep)
	case deps.Incarnations == nil:
		return nil, fmt.Errorf("%w: Deps.Incarnations (use FileIncarnationStore next to the ledger)", ErrMissingDep)
	}
	if deps.Logger == nil {
		deps.Logger = slog.New(slog.DiscardHandler)
	}
	if deps.Metrics == nil {
		deps.Metrics = NopMetrics()
	}
	inc, err := deps.Incarnations.Next(time.Now())
	if err != nil {
		return nil, fmt.Errorf("incarnation: %w", err)
	}
	self := deps.Self
	self.Incarnation = inc
	if self.ID.IsZero() {
		self.ID = deps.Transport.Self()
	}
	if self.ID != deps.Transport.Self() {
		return nil, fmt.Errorf("%w: Deps.Self.ID %v is not the transport's identity %v; use the same identity for both",
			ErrInvalidConfig, self.ID, deps.Transport.Self())
	}
	seed := deps.Seed
	if seed == 0 {
		seed = rand.Uint64()
	}
	var tracer Tracer = metricsTracer{m: deps.Metrics}
	if deps.Tracer != nil {
		tracer = teeTracer{tracer, deps.Tracer}
	}
	peer, err := NewPeer(cfg, self, PeerDeps{
		Ledger: deps.Ledger, Verifier: deps.Verifier, Crypto: deps.Crypto,
		Rand: rand.New(rand.NewPCG(seed, inc)), Tracer: tracer,
	})
	if err != nil {
		return nil, err
	}
	n := &Node{
		cfg: cfg, deps: deps, log: deps.Logger.With("peer", self.ID.String()), met: deps.Metrics, peer: peer,
		commits: make(chan CommitEvent, commitBuffer),
		inject:  make(chan injectReq),
		started: make(chan struct{}),
		stopped: make(chan struct{}),
	}
	n.publishStatus()
	return n, nil
}

// Commits delivers an event per committed block, in order. It is closed
// when Run returns. A reader that falls commitBuffer events behind loses
// events (counted), never stalls the Node.
func (n *Node) Commits() <-chan CommitEvent { return n.commits }

// Status returns a snapshot taken after the Node's last step.
func (n *Node) Status() Status {
	n.mu.Lock()
	defer n.mu.Unlock()
	s := n.status
	s.TipHash = append([]byte(nil), s.TipHash...)
	return s
}

// InjectBlock hands the Node a block from the orderer, as the leader's
// deliver client does. It returns once the Node has run it through the
// pipeline: nil if accepted, else why not (ErrDuplicateBlock,
// ErrBeyondWindow, a ledger verification error, ErrNotRunning).
func (n *Node) InjectBlock(ctx context.Context, b *pb.Block) error {
	req := injectReq{b: b, done: make(chan error, 1)}
	select {
	case <-n.started:
	case <-ctx.Done():
		return ctx.Err()
	}
	select {
	case n.inject <- req:
	case <-n.stopped:
		return ErrNotRunning
	case <-ctx.Done():
		return ctx.Err()
	}
	select {
	case err := <-req.done:
		return err
	case <-n.stopped:
		return ErrNotRunning
	case <-ctx.Done():
		return ctx.Err()
	}
}

// Run runs the Node until ctx is cancelled; then it stops every goroutine
// it started, closes Commits and returns nil. It does not close the
// transport or the ledger: their owner does. Run may be called once.
func (n *Node) Run(ctx context.Context) error {
	n.mu.Lock()
	if n.ran {
		n.mu.Unlock()
		return ErrAlreadyRunning
	}
	n.ran = true
	n.mu.Unlock()

	ctx, cancel := context.WithCancel(ctx)
	var wg sync.WaitGroup
	defer func() {
		cancel()
		n.stopOrderer()
		wg.Wait()
		close(n.commits)
		close(n.stopped)
	}()
	close(n.started)

	boot := make(chan comm.Peer)
	for _, ep := range n.deps.Bootstrap {
		wg.Add(1)
		go func() {
			defer wg.Done()
			n.connectBootstrap(ctx, ep, boot)
		}()
	}

	tr := n.deps.Transport
	ticker := time.NewTicker(n.cfg.TickInterval)
	defer ticker.Stop()
	n.tree.init(n.cfg)
	defer n.tree.stop()
	n.log.Info("gossip node running", "incarnation", n.peer.self.Incarnation, "org", n.peer.self.Org)
	for {
		select {
		case <-ctx.Done():
			return nil
		case m, ok := <-tr.Incoming():
			if err := n.receive(m, ok); err != nil {
				return err
			}
		case ev, ok := <-tr.Events():
			if !ok {
				return fmt.Errorf("transport closed its events channel: %w", comm.ErrClosed)
			}
			n.log.Debug("connection", "peer", ev.Peer.String(), "up", ev.Up, "broken", ev.Broken)
			if ev.Broken {
				n.peer.advanceTree(n.tree.subNow())
				n.peer.StreamBroken(ev.Peer)
			}
		case now := <-ticker.C:
			if err := n.tick(now); err != nil {
				return err
			}
		case <-n.tree.c:
			if err := n.subTick(); err != nil {
				return err
			}
		case req := <-n.inject:
			n.peer.advanceTree(n.tree.subNow())
			req.done <- n.peer.InjectBlock(req.b)
		case b := <-n.ordererBlocks():
			n.peer.advanceTree(n.tree.subNow())
			if err := n.peer.InjectBlock(b); err != nil && !errors.Is(err, ErrDuplicateBlock) {
				n.log.Warn("block from orderer not accepted", "err", err)
			}
		case err := <-n.ordererDone():
			n.ordererExited(err)
		case p := <-boot:
			n.peer.AddBootstrap(p)
		}
		n.publishStatus() // before the commit events go out: a reader sees a status at least as new
		n.flush()
		n.steerOrderer(ctx)
		n.tree.arm(n.peer.NextWake())
	}
}

// tick advances the Peer by one tick, after stepping the envelopes that
// were already waiting when the ticker fired: a tick's timeouts (grafts,
// above all) must not fire for a block whose copy is sitting in the queue,
// which on a busy machine is often (select picks among ready channels at
// random), and every such graft is a duplicate copy and more load. It
// steps at most what was queued, so a flood cannot starve the tick.
func (n *Node) tick(now time.Time) error {
	if err := n.drainIncoming(); err != nil {
		return err
	}
	n.peer.Tick()
	n.tree.ticked(now)
	return nil
}

// subTick runs the tree and pull timers due at this sub-tick, after
// stepping the envelopes already waiting, as tick does and for the same
// reason.
func (n *Node) subTick() error {
	n.tree.fired()
	if err := n.drainIncoming(); err != nil {
		return err
	}
	n.peer.Wake(n.tree.subNow())
	return nil
}

func (n *Node) drainIncoming() error {
	in := n.deps.Transport.Incoming()
	for k := len(in); k > 0; k-- {
		m, ok := <-in
		if err := n.receive(m, ok); err != nil {
			return err
		}
		n.publishStatus() // as in Run: the status before the commit events
		n.flush()
	}
	return nil
}

// receive steps one envelope read from the transport (ok false: the
// channel is closed, which ends Run).
func (n *Node) receive(m comm.Message, ok bool) error {
	if !ok {
		return fmt.Errorf("transport closed its incoming channel: %w", comm.ErrClosed)
	}
	n.met.BytesReceived.Add(float64(m.Size))
	n.peer.advanceTree(n.tree.subNow()) // time what the envelope starts from now, not from the last timer
	n.peer.Step(m.From, m.Org, m.Env, m.Size)
	return nil
}

// flush carries out the Peer's effects.
func (n *Node) flush() {
	r := n.peer.Ready()
	tr := n.deps.Transport
	for _, m := range r.Messages {
		if err := tr.Send(m.To, m.Env); err != nil {
			n.met.QueueDrops.WithLabelValues("send").Inc()
			continue
		}
		n.met.BytesSent.Add(float64(proto.Size(m.Env)))
	}
	for _, id := range r.Disconnect {
		n.log.Warn("peer banned for sending invalid blocks", "offender", id.String())
		tr.Disconnect(id)
	}
	for _, id := range r.Reachable {
		tr.Reachable(id)
	}
	now := time.Now()
	for _, c := range r.Commits {
		n.met.observeCommit(c, now)
		select {
		case n.commits <- CommitEvent{Number: c.Number, Hash: c.Hash, Via: c.Via, Hops: c.Hops, From: c.From, Time: now}:
		default:
			n.met.QueueDrops.WithLabelValues("commits").Inc()
		}
	}
}

func (n *Node) publishStatus() {
	p := n.peer
	leader, has := p.Leader()
	s := Status{
		Height: p.Height(), TipHash: p.TipHash(), LivePeers: len(p.LivePeers()),
		Leader: leader, HasLeader: has, IsLeader: p.IsLeader(), Incarnation: p.self.Incarnation,
	}
	n.met.Height.Set(float64(s.Height))
	n.met.PeersKnown.Set(float64(s.LivePeers))
	if s.IsLeader {
		n.met.IsLeader.Set(1)
	} else {
		n.met.IsLeader.Set(0)
	}
	n.mu.Lock()
	n.status = s
	n.mu.Unlock()
}

// connectBootstrap learns ep's PKI-ID, retrying with backoff until it
// succeeds or ctx ends.
func (n *Node) connectBootstrap(ctx context.Context, ep string, out chan<- comm.Peer) {
	backoff := n.cfg.TickInterval * time.Duration(n.cfg.BootstrapRetry)
	for {
		cctx, cancel := context.WithTimeout(ctx, backoff)
		id, err := n.deps.Transport.Connect(cctx, ep)
		cancel()
		if err == nil {
			select {
			case out <- comm.Peer{ID: id, Endpoint: ep}:
			case <-ctx.Done():
			}
			return
		}
		n.log.Debug("bootstrap peer unreachable", "endpoint", ep, "err", err)
		t := time.NewTimer(backoff)
		select {
		case <-t.C:
		case <-ctx.Done():
			t.Stop()
			return
		}
	}
}

// treeTimer wakes the Node for the Peer's tree and pull timers between
// ticks (Config.TreeResolution sub-ticks per tick): armed only while the
// Peer reports a deadline before the next tick (NextWake), so that an
// idle Node wakes once per tick, as without sub-ticks.
type treeTimer struct {
	res    int
	tick   time.Duration
	last   time.Time // when the last tick ran
	timer  *time.Timer
	c      <-chan time.Time // timer.C while armed, else nil
	armedK int
}

func (t *treeTimer) init(cfg Config) {
	t.res, t.tick = cfg.TreeResolution, cfg.TickInterval
	t.last = time.Now()
}

// ticked restarts the sub-tick count at a tick that fired at now.
func (t *treeTimer) ticked(now time.Time) {
	t.last = now
	t.disarm() // an armed sub-tick belonged to the last tick
}

// subNow is the current sub-tick within the tick (at most res-1: a late
// tick does not make the tree clock run past it).
func (t *treeTimer) subNow() int {
	if t.res <= 1 {
		return 0
	}
	k := int(time.Since(t.last) * time.Duration(t.res) / t.tick)
	return min(max(k, 0), t.res-1)
}

// arm sets the timer for sub-tick k of the current tick (ok false: none
// pending before the next tick).
func (t *treeTimer) arm(k int, ok bool) {
	if !ok || t.res <= 1 {
		t.disarm()
		return
	}
	if t.c != nil && t.armedK == k {
		return
	}
	res := time.Duration(t.res)
	d := time.Until(t.last.Add((t.tick*time.Duration(k) + res - 1) / res)) // rounded up: subNow then says k
	if t.timer == nil {
		t.timer = time.NewTimer(d)
	} else {
		t.timer.Reset(d)
	}
	t.c, t.armedK = t.timer.C, k
}

// fired notes that the armed timer went off.
func (t *treeTimer) fired() { t.c = nil }

func (t *treeTimer) disarm() {
	if t.c != nil {
		t.timer.Stop()
		t.c = nil
	}
}

func (t *treeTimer) stop() {
	if t.timer != nil {
		t.timer.Stop()
	}
}
