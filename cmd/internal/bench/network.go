package bench

import (
	"context"
	"fmt"
	"log/slog"
	"net"
	"os"
	"sync"
	"time"

	"github.com/blockgossip/blockgossip/cmd/internal/orderer"
	"github.com/blockgossip/blockgossip/comm"
	"github.com/blockgossip/blockgossip/comm/memnet"
	"github.com/blockgossip/blockgossip/gossip"
	"github.com/blockgossip/blockgossip/identity"
	"github.com/blockgossip/blockgossip/ledger"
	pb "github.com/blockgossip/blockgossip/protos"
	"google.golang.org/grpc"
)

// network is an orderer stub and its peers, all in this process. The
// wiring mirrors cmd/internal/node's RunOrderer and RunPeer, which cannot be
// reused as they are: they read identities from files and keep the commit
// stream and the transport to themselves, and the bench must count what
// each peer receives and time each commit.
type network struct {
	opts Options
	prof profile
	log  *slog.Logger

	dir      string // the orderer's LevelDB directory
	store    *ledger.Store
	ord      *orderer.Orderer
	ordSrv   *grpc.Server // grpc transport only
	ordAddr  string
	mem      *memnet.Network // mem transport only
	pub      *publisher      // mem transport only: wakes local deliver sources
	verifier identity.OrdererVerifier

	peers []*peerNode

	cancel   context.CancelFunc
	wg       sync.WaitGroup // orderer cutter, gRPC servers, nodes, commit readers
	stopOnce sync.Once
}

// peerNode is one peer and what the bench hangs on it.
type peerNode struct {
	idx      int
	org      string
	id       *identity.Identity
	endpoint string
	node     *gossip.Node
	tr       *countingTransport
	src      countingSource
	crypto   *gossip.MSPCrypto
	srv      *grpc.Server // grpc transport only
	ctr      *counters
	done     chan struct{} // closed when the node's Run returns
}

// startNetwork builds and starts the orderer and the peers; commits are
// passed to rec. On error everything started is stopped.
func startNetwork(ctx context.Context, opts Options, prof profile, rec *recorder, logger *slog.Logger) (_ *network, err error) {
	ctx, cancel := context.WithCancel(ctx)
	n := &network{opts: opts, prof: prof, log: logger, cancel: cancel}
	defer func() {
		if err != nil {
			n.stop()
		}
	}()
	perOrg := (opts.Peers + opts.Orgs - 1) / opts.Orgs
	bundle, err := identity.NewBundle(identity.GenerateSpec{Orgs: opts.Orgs, PeersPerOrg: perOrg})
	if err != nil {
		return n, fmt.Errorf("crypto material: %w", err)
	}
	if n.verifier, err = bundle.Network.OrdererVerifier(); err != nil {
		return n, err
	}
	if err := n.startOrderer(ctx, bundle); err != nil {
		return n, err
	}
	if opts.Transport == TransportMem {
		n.mem = memnet.New(memnet.Config{Seed: opts.Seed, ShareEnvelopes: true, QueueSize: 4096})
	}
	ids := pickPeers(bundle.Peers, opts.Orgs, perOrg, opts.Peers)
	for i, id := range ids {
		p, err := n.newPeer(i, id, bundle)
		if err != nil {
			return n, fmt.Errorf("peer %s: %w", id.Name, err)
		}
		n.peers = append(n.peers, p)
	}
	// Bootstrap: each peer knows the first peer of its org and the first
	// peer of org1 (an anchor), as a Fabric deployment would configure.
	first := map[string]string{}
	for _, p := range n.peers {
		if _, ok := first[p.org]; !ok {
			first[p.org] = p.endpoint
		}
	}
	for _, p := range n.peers {
		var boot []string
		if !prof.direct {
			for _, ep := range []string{first[p.org], n.peers[0].endpoint} {
				if ep != p.endpoint && (len(boot) == 0 || boot[0] != ep) {
					boot = append(boot, ep)
				}
			}
		}
		if err := n.startPeer(ctx, p, boot, rec); err != nil {
			return n, fmt.Errorf("peer %s: %w", p.id.Name, err)
		}
		if len(boot) > 0 && opts.Transport == TransportGRPC {
			n.waitJoined(ctx, p)
		}
	}
	return n, nil
}

// waitJoined waits, briefly, until a new peer knows some live member.
// Peers join one after another instead of all at once: a hundred
// simultaneous mutual-TLS dials at one bootstrap peer, on a loaded machine,
// time out and retry faster than they succeed (untimed warm-up only).
func (n *network) waitJoined(ctx context.Context, p *peerNode) {
	deadline := time.Now().Add(joinWait)
	for time.Now().Before(deadline) && ctx.Err() == nil {
		if p.node.Status().LivePeers > 0 {
			return
		}
		time.Sleep(10 * time.Millisecond) // polling a status snapshot, not waiting for protocol progress in a test
	}
}

// joinWait bounds how long one peer's join may hold up the next.
const joinWait = 2 * time.Second

// pickPeers takes count peers spread round-robin over orgs from a bundle
// made with perOrg peers per org (org-major order).
func pickPeers(all []*identity.Identity, orgs, perOrg, count int) []*identity.Identity {
	var out []*identity.Identity
	for k := 0; len(out) < count; k++ {
		org, slot := k%orgs, k/orgs
		out = append(out, all[org*perOrg+slot])
	}
	return out
}

func (n *network) startOrderer(ctx context.Context, bundle *identity.Bundle) error {
	dir, err := os.MkdirTemp("", "blockgossip-bench-")
	if err != nil {
		return fmt.Errorf("orderer ledger directory: %w", err)
	}
	n.dir = dir
	if n.store, err = ledger.Open(dir, n.verifier); err != nil {
		return fmt.Errorf("orderer ledger: %w", err)
	}
	if n.ord, err = orderer.New(orderer.DefaultConfig(), bundle.Orderer, bundle.Network, n.store, n.log); err != nil {
		return err
	}
	n.wg.Add(1)
	go func() {
		defer n.wg.Done()
		if err := n.ord.Run(ctx); err != nil {
			n.log.Error("orderer cutter stopped", "err", err)
		}
	}()
	if n.opts.Transport == TransportMem {
		n.pub = newPublisher(n.store.Height())
		return nil
	}
	msp, err := bundle.MSP()
	if err != nil {
		return err
	}
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		return fmt.Errorf("orderer listener: %w", err)
	}
	n.ordAddr = ln.Addr().String()
	n.ordSrv = comm.NewServer(comm.DefaultConfig(), bundle.Orderer, msp)
	n.ord.Register(n.ordSrv)
	n.serve(n.ordSrv, ln)
	return nil
}

func (n *network) serve(s *grpc.Server, ln net.Listener) {
	n.wg.Add(1)
	go func() {
		defer n.wg.Done()
		_ = s.Serve(ln) // returns when stop stops the server
	}()
}

// newPeer builds a peer's transport and deliver source; nothing runs yet.
func (n *network) newPeer(i int, id *identity.Identity, bundle *identity.Bundle) (*peerNode, error) {
	p := &peerNode{idx: i, org: id.Org, id: id, ctr: &counters{}, done: make(chan struct{})}
	msp, err := bundle.MSP()
	if err != nil {
		return nil, err
	}
	var inner comm.Transport
	var src gossip.BlockSource
	ccfg := comm.DefaultConfig()
	if n.opts.Transport == TransportMem {
		p.endpoint = fmt.Sprintf("peer%d", i)
		ep, err := n.mem.Join(id.ID, p.endpoint, id.Org, id.CertDER)
		if err != nil {
			return nil, err
		}
		inner = ep
		src = localSource{store: n.store, pub: n.pub}
	} else {
		g, err := comm.NewGRPC(ccfg, id, msp, n.log)
		if err != nil {
			return nil, err
		}
		inner = g
		ln, err := net.Listen("tcp", "127.0.0.1:0")
		if err != nil {
			g.Close()
			return nil, fmt.Errorf("listener: %w", err)
		}
		p.endpoint = ln.Addr().String()
		p.srv = comm.NewServer(ccfg, id, msp)
		g.Register(p.srv)
		n.serve(p.srv, ln)
		src = comm.NewDeliverClient(comm.DefaultDeliverConfig(), []string{n.ordAddr}, comm.DialOptions(ccfg, id, msp), n.log)
	}
	p.tr = newCountingTransport(inner, p.ctr)
	p.src = countingSource{src: src, c: p.ctr}
	p.crypto = gossip.NewMSPCrypto(id, msp)
	return p, nil
}

// startPeer builds the peer's node, now that every endpoint is known for
// its bootstrap list, and starts its forwarder, node and commit reader.
func (n *network) startPeer(ctx context.Context, p *peerNode, boot []string, rec *recorder) error {
	node, err := gossip.NewNode(n.prof.gossip, gossip.Deps{
		Transport:    p.tr,
		Ledger:       ledger.OpenMemory(n.verifier),
		Verifier:     n.verifier,
		Crypto:       p.crypto,
		Self:         gossip.Self{ID: p.id.ID, Endpoint: p.endpoint, Org: p.org, Cert: p.id.CertDER},
		Incarnations: &gossip.MemoryIncarnationStore{},
		Bootstrap:    boot,
		Orderer:      p.src,
		Logger:       n.log,
		Tracer:       dupTracer{c: p.ctr},
		Seed:         n.opts.Seed*1_000_003 + uint64(p.idx) + 1,
	})
	if err != nil {
		return err
	}
	p.node = node
	p.tr.start()
	n.wg.Add(2)
	go func() {
		defer n.wg.Done()
		defer close(p.done)
		if err := p.node.Run(ctx); err != nil {
			n.log.Error("gossip node stopped", "peer", p.id.Name, "err", err)
		}
	}()
	go func() {
		defer n.wg.Done()
		for ev := range p.node.Commits() { // closed when Run returns
			rec.commit(p.idx, ev)
		}
	}()
	return nil
}

// peerIDs lists the peers' PKI-IDs by index.
func (n *network) peerIDs() []identity.PKIID {
	ids := make([]identity.PKIID, len(n.peers))
	for i, p := range n.peers {
		ids[i] = p.id.ID
	}
	return ids
}

// stop stops every node, transport, server and the orderer, and removes
// the orderer's ledger. It is safe on a partly started network, and
// idempotent.
func (n *network) stop() { n.stopOnce.Do(n.stopAll) }

func (n *network) stopAll() {
	n.cancel()
	for _, p := range n.peers {
		if p.node != nil {
			select {
			case <-p.done:
			case <-time.After(10 * time.Second):
				n.log.Warn("gossip node slow to stop", "peer", p.id.Name)
			}
		}
	}
	var wg sync.WaitGroup
	for _, p := range n.peers {
		wg.Add(1)
		go func() {
			defer wg.Done()
			p.tr.Close()
			if p.srv != nil {
				p.srv.Stop()
			}
		}()
	}
	wg.Wait()
	if n.ordSrv != nil {
		n.ordSrv.Stop()
	}
	if n.mem != nil {
		n.mem.Close()
	}
	n.wg.Wait()
	if n.store != nil {
		n.store.Close()
	}
	if n.dir != "" {
		os.RemoveAll(n.dir)
	}
}

// publisher tells local deliver sources (mem transport) that the orderer
// cut a block.
type publisher struct {
	mu     sync.Mutex
	height uint64
	notify chan struct{} // closed and replaced on every publish
}

func newPublisher(height uint64) *publisher {
	return &publisher{height: height, notify: make(chan struct{})}
}

func (p *publisher) publish(height uint64) {
	p.mu.Lock()
	defer p.mu.Unlock()
	p.height = height
	close(p.notify)
	p.notify = make(chan struct{})
}

func (p *publisher) state() (uint64, <-chan struct{}) {
	p.mu.Lock()
	defer p.mu.Unlock()
	return p.height, p.notify
}

// localSource is the deliver client of the mem transport: it reads the
// orderer's ledger in-process, following new blocks as they are published.
type localSource struct {
	store *ledger.Store
	pub   *publisher
}

func (s localSource) Run(ctx context.Context, from uint64, deliver func(*pb.Block)) error {
	next := from
	for {
		height, notify := s.pub.state()
		for ; next < height; next++ {
			b, err := s.store.Block(next)
			if err != nil {
				return fmt.Errorf("read orderer block %d: %w", next, err)
			}
			deliver(b)
			if ctx.Err() != nil {
				return nil
			}
		}
		select {
		case <-notify:
		case <-ctx.Done():
			return nil
		}
	}
}
