package gossip

import (
	"context"
	"math/rand/v2"
	"time"

	"github.com/blockgossip/blockgossip/election"
)

// HeightWatcher is implemented by a BlockSource that can also read the
// orderer's chain height cheaply (comm.DeliverClient does, with one small
// unary RPC). While this peer follows, the Node runs it so the election can
// tell a leader that does not deliver (election.Config.StallTimeout): a
// member that declares itself leader and sends nothing cannot stall the
// org.
type HeightWatcher interface {
	// WatchHeight reads the orderer's height after each wait() and calls
	// report with it, on WatchHeight's goroutine, until ctx is done.
	WatchHeight(ctx context.Context, wait func() time.Duration, report func(height uint64)) error
}

// ObserveOrdererHeight tells the election the orderer's chain height, as a
// probe just read it. The Node calls it; a simulator may too.
func (p *Peer) ObserveOrdererHeight(h uint64) { p.elect.ObserveOrdererHeight(h) }

// TakeStalls returns the leaders blamed for stalls since the last call.
func (p *Peer) TakeStalls() []election.Stall { return p.elect.TakeStalls() }

// probeRun is the height watcher goroutine the Node runs while it follows.
type probeRun struct {
	cancel  context.CancelFunc
	done    chan struct{}
	heights chan uint64 // the latest height read, at most one waiting
}

// steerProbe runs the orderer height watcher while this peer does not lead
// and stall detection is on, and stops it otherwise. It then hands the
// election the latest height read, and logs any leader it blamed.
func (n *Node) steerProbe(ctx context.Context, leading bool) {
	ecfg := n.cfg.Election
	w, ok := n.deps.Orderer.(HeightWatcher)
	want := ok && !leading && !ecfg.Static && ecfg.StallTimeout > 0 && ecfg.ProbeInterval > 0
	switch {
	case want && n.ord.probe == nil:
		n.startProbe(ctx, w, time.Duration(ecfg.ProbeInterval)*n.cfg.TickInterval)
	case !want && n.ord.probe != nil:
		n.stopProbe()
	}
	if r := n.ord.probe; r != nil {
		select {
		case h := <-r.heights:
			n.peer.ObserveOrdererHeight(h)
		default:
		}
	}
	for _, s := range n.peer.TakeStalls() {
		n.log.Warn("org leader distrusted: org peers lack blocks the orderer has had for the stall timeout; electing without it",
			"leader", s.Leader.String(), "org_height", s.OrgHeight, "orderer_height", s.OrdererHeight,
			"penalty", time.Duration(s.Penalty)*n.cfg.TickInterval, "offence", s.Offence)
	}
}

// startProbe starts the watcher, probing every interval +-50% (jitter, so
// an org's followers do not probe in step).
func (n *Node) startProbe(ctx context.Context, w HeightWatcher, interval time.Duration) {
	rctx, cancel := context.WithCancel(ctx)
	r := &probeRun{cancel: cancel, done: make(chan struct{}), heights: make(chan uint64, 1)}
	n.ord.probe = r
	rng := rand.New(rand.NewPCG(n.peer.rng.Uint64(), 0x9e0be))
	wait := func() time.Duration { return interval/2 + time.Duration(rng.Int64N(int64(interval)+1)) }
	go func() {
		defer close(r.done)
		err := w.WatchHeight(rctx, wait, func(h uint64) {
			select { // keep only the latest height
			case <-r.heights:
			default:
			}
			r.heights <- h
		})
		if err != nil {
			n.log.Warn("orderer height watcher stopped; stall detection is off", "err", err)
		}
	}()
}

// stopProbe cancels the watcher and waits for it to return.
func (n *Node) stopProbe() {
	if r := n.ord.probe; r != nil {
		r.cancel()
		<-r.done
		n.ord.probe = nil
	}
}
