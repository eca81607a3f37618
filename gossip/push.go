package gossip

import (
	"github.com/blockgossip/blockgossip/identity"
	pb "github.com/blockgossip/blockgossip/protos"
)

// pushState holds forwards waiting for the batching window (PushBatch > 0).
type pushState struct {
	batch      []batched
	batchStart uint64
}

type batched struct {
	env    *pb.Envelope
	number uint64
	hops   uint32
}

// forward pushes a newly accepted block to Fanout random live peers of our
// org other than the sender, unless its hop budget is spent.
func (p *Peer) forward(from identity.PKIID, n uint64, b *pb.Block, w wireBlock, hops uint32) {
	if int(hops) >= p.cfg.MaxHops {
		return
	}
	env := w.envelope(b, hops+1)
	if p.cfg.PushBatch > 0 {
		if len(p.batch) == 0 {
			p.batchStart = p.now
		}
		p.batch = append(p.batch, batched{env, n, hops + 1})
		return
	}
	targets := p.pickPeers(p.liveOrg.ids, p.cfg.Fanout, from, p.self.ID)
	for _, to := range targets {
		p.send(to, env)
	}
	p.tracer.BlockForwarded(n, hops+1, len(targets))
}

// tickPush flushes a batch whose window has passed: every block in it
// goes to the same random set of peers.
func (p *Peer) tickPush() {
	if len(p.batch) == 0 || p.now-p.batchStart < uint64(p.cfg.PushBatch) {
		return
	}
	targets := p.pickPeers(p.liveOrg.ids, p.cfg.Fanout, p.self.ID, p.self.ID)
	for _, e := range p.batch {
		for _, to := range targets {
			p.send(to, e.env)
		}
		p.tracer.BlockForwarded(e.number, e.hops, len(targets))
	}
	clear(p.batch)
	p.batch = p.batch[:0]
}
