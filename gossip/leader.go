package gossip

import (
	"context"
	"errors"
	"time"

	pb "github.com/blockgossip/blockgossip/protos"
)

// ordererRun is the deliver client goroutine the Node runs while leader.
type ordererRun struct {
	cancel context.CancelFunc
	blocks chan *pb.Block
	done   chan error
}

// ordererState lives in Node; kept here with the code that uses it.
type ordererState struct {
	run        *ordererRun
	retryAfter time.Time
	probe      *probeRun // the orderer height watcher, while we follow (stall.go)
}

func (n *Node) ordererBlocks() <-chan *pb.Block {
	if n.ord.run == nil {
		return nil
	}
	return n.ord.run.blocks
}

func (n *Node) ordererDone() <-chan error {
	if n.ord.run == nil {
		return nil
	}
	return n.ord.run.done
}

// steerOrderer starts the deliver client when we lead and stops it when
// we do not; while we do not, it runs the orderer height watcher instead.
func (n *Node) steerOrderer(ctx context.Context) {
	src := n.deps.Orderer
	if src == nil {
		return
	}
	leading := n.peer.IsLeader()
	switch {
	case leading && n.ord.run == nil && !time.Now().Before(n.ord.retryAfter):
		rctx, cancel := context.WithCancel(ctx)
		r := &ordererRun{cancel: cancel, blocks: make(chan *pb.Block), done: make(chan error, 1)}
		n.ord.run = r
		from := n.peer.Height()
		n.log.Info("leading: starting orderer deliver client", "from", from)
		go func() {
			r.done <- src.Run(rctx, from, func(b *pb.Block) {
				select {
				case r.blocks <- b:
				case <-rctx.Done():
				}
			})
		}()
	case !leading && n.ord.run != nil:
		n.log.Info("no longer leading: stopping orderer deliver client")
		n.stopDeliver()
	}
	n.steerProbe(ctx, leading)
}

// stopOrderer stops everything that talks to the orderer (the deliver
// client and the height watcher) and waits for them to return. Run calls it
// on its way out.
func (n *Node) stopOrderer() {
	n.stopDeliver()
	n.stopProbe()
}

// stopDeliver cancels the deliver client and waits for it to return.
func (n *Node) stopDeliver() {
	if r := n.ord.run; r != nil {
		r.cancel()
		<-r.done
		n.ord.run = nil
	}
}

// ordererExited handles the deliver client returning on its own: retry
// after a pause while we still lead.
func (n *Node) ordererExited(err error) {
	n.ord.run = nil
	n.ord.retryAfter = time.Now().Add(n.cfg.TickInterval * time.Duration(n.cfg.BootstrapRetry))
	if err != nil && !errors.Is(err, context.Canceled) {
		n.log.Warn("orderer deliver client stopped; retrying", "err", err, "after", n.cfg.TickInterval*time.Duration(n.cfg.BootstrapRetry))
	}
}
