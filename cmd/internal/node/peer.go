package node

import (
	"context"
	"encoding/hex"
	"errors"
	"fmt"
	"log/slog"

	"github.com/prometheus/client_golang/prometheus"

	"github.com/blockgossip/blockgossip/cmd/internal/config"
	"github.com/blockgossip/blockgossip/cmd/internal/ops"
	"github.com/blockgossip/blockgossip/comm"
	"github.com/blockgossip/blockgossip/gossip"
	"github.com/blockgossip/blockgossip/identity"
	"github.com/blockgossip/blockgossip/ledger"
	pb "github.com/blockgossip/blockgossip/protos"
)

// adminServer answers Admin.LedgerInfo from the peer's ledger.
type adminServer struct {
	pb.UnimplementedAdminServer
	store *ledger.Store
	id    *identity.Identity
}

func (a *adminServer) LedgerInfo(context.Context, *pb.LedgerInfoRequest) (*pb.LedgerInfoResponse, error) {
	tip := a.store.Tip()
	return &pb.LedgerInfoResponse{
		Height: tip.Height, CurrentBlockHash: tip.CurrentHash, PreviousBlockHash: tip.PreviousHash,
		Name: a.id.Name, Org: a.id.Org,
	}, nil
}

// RunPeer runs a peer until ctx is done, then stops it cleanly.
func RunPeer(ctx context.Context, c PeerConfig, logger *slog.Logger, level *slog.LevelVar) error {
	if err := c.Validate(); err != nil {
		return err
	}
	m, err := c.Peer.Identity.load()
	if err != nil {
		return err
	}
	if m.id.Role != identity.RolePeer {
		return fmt.Errorf("%w: %s is a %s certificate; a peer needs a peer certificate", config.ErrInvalid, c.Peer.Cert, m.id.Role)
	}
	store, err := ledger.Open(c.Peer.LedgerDir, m.verifier)
	if err != nil {
		return fmt.Errorf("open peer ledger: %w", err)
	}
	defer store.Close()

	transport, err := comm.NewGRPC(c.Comm, m.id, m.msp, logger.With("component", "comm"))
	if err != nil {
		return fmt.Errorf("gossip transport: %w", err)
	}
	defer transport.Close()
	ln, err := listen(c.Peer.ListenAddress, "peer.listenAddress", "--listen")
	if err != nil {
		return err
	}
	srv := comm.NewServer(c.Comm, m.id, m.msp)
	transport.Register(srv)
	pb.RegisterAdminServer(srv, &adminServer{store: store, id: m.id})

	reg := newRegistry()
	metrics, err := gossip.NewMetrics(reg)
	if err != nil {
		ln.Close()
		return fmt.Errorf("metrics: %w", err)
	}
	reg.MustRegister(
		prometheus.NewGaugeFunc(prometheus.GaugeOpts{
			Name: "blockgossip_comm_streams", Help: "Gossip streams open to other peers, active or draining.",
		}, func() float64 { return float64(transport.Stats().Streams) }),
		prometheus.NewCounterFunc(prometheus.CounterOpts{
			Name: "blockgossip_comm_streams_reaped_total", Help: "Gossip streams this peer dialled and retired after comm.idletimeout without traffic.",
		}, func() float64 { return float64(transport.Stats().StreamsReaped) }),
	)
	endpoint := c.Peer.ExternalEndpoint
	if endpoint == "" {
		endpoint = ln.Addr().String()
	}
	trace := &tracer{log: logger.With("component", "gossip")}
	deliver := comm.NewDeliverClient(c.Deliver, c.Peer.Orderers, comm.DialOptions(c.Comm, m.id, m.msp), logger.With("component", "deliver"))
	gnode, err := gossip.NewNode(c.Gossip, gossip.Deps{
		Transport:    transport,
		Ledger:       store,
		Verifier:     m.verifier,
		Crypto:       gossip.NewMSPCrypto(m.id, m.msp),
		Self:         gossip.Self{ID: m.id.ID, Endpoint: endpoint, Org: m.id.Org, Cert: m.id.CertDER},
		Incarnations: &gossip.FileIncarnationStore{Path: c.Peer.IncarnationFile},
		Bootstrap:    c.Peer.Bootstrap,
		Orderer:      deliver,
		Logger:       logger.With("component", "gossip"),
		Metrics:      metrics,
		Tracer:       trace,
	})
	if err != nil {
		ln.Close()
		return fmt.Errorf("gossip node: %w", err)
	}

	gossipDone := make(chan struct{})
	var gossipErr error
	opsSrv := ops.New(c.Operations, ops.Options{
		Health: []ops.Check{
			{Component: "ledger", Check: func() error { return ledgerCheck(store) }},
			{Component: "gossip", Check: func() error {
				select {
				case <-gossipDone:
					return fmt.Errorf("gossip node stopped: %v", gossipErr)
				default:
					return nil
				}
			}},
		},
		Ready: func() error {
			st := gnode.Status()
			if st.Height == 0 {
				return errors.New("no genesis block yet: waiting for the org leader or peers")
			}
			if st.LivePeers < c.Peer.ReadyMinPeers {
				return fmt.Errorf("%d live peers known, want %d (check peer.bootstrap)", st.LivePeers, c.Peer.ReadyMinPeers)
			}
			if heard := trace.heardHeight(); heard > st.Height+c.Peer.ReadyMaxLag {
				return fmt.Errorf("catching up: height %d, blocks up to %d seen (more than peer.readyMaxLag=%d behind)", st.Height, heard-1, c.Peer.ReadyMaxLag)
			}
			return nil
		},
		Gatherer: reg,
		Level:    level,
		Logger:   logger,
		Status:   func() any { return peerStatus(m.id, gnode.Status()) },
	})
	if err := opsSrv.Start(); err != nil {
		ln.Close()
		return err
	}
	defer opsSrv.Close()

	runCtx, stopGossip := context.WithCancel(ctx)
	defer stopGossip()
	go func() {
		defer close(gossipDone)
		gossipErr = gnode.Run(runCtx)
	}()
	go func() { // drain commit events (the tracer logs them): undrained they count as drops; closes when Run returns
		for range gnode.Commits() {
		}
	}()
	serveErr := make(chan error, 1)
	go func() { serveErr <- srv.Serve(ln) }()
	logger.Info("peer started", "name", m.id.Name, "org", m.id.Org, "listen", ln.Addr().String(),
		"operations", opsSrv.Addr(), "height", store.Height(), "bootstrap", c.Peer.Bootstrap, "orderers", c.Peer.Orderers)

	var failure error
	select {
	case <-ctx.Done():
	case <-gossipDone:
		failure = fmt.Errorf("gossip node stopped: %v", gossipErr)
	case err := <-serveErr:
		failure = fmt.Errorf("peer gRPC server failed: %w", err)
	}
	logger.Info("peer stopping")
	stopGossip()
	<-gossipDone
	// Closing the transport ends the gossip streams, so the graceful stop
	// below has only short Admin calls to wait for.
	if err := transport.Close(); err != nil {
		logger.Warn("closing transport", "err", err)
	}
	stopServer(srv, c.Peer.ShutdownTimeout)
	if failure != nil {
		return failure
	}
	logger.Info("peer stopped", "height", store.Height())
	return nil
}

func peerStatus(id *identity.Identity, st gossip.Status) Status {
	s := Status{Name: id.Name, Org: id.Org, Role: "peer", Height: st.Height, TipHash: hex.EncodeToString(st.TipHash),
		LivePeers: st.LivePeers, IsLeader: st.IsLeader}
	if st.HasLeader {
		s.Leader = fmt.Sprintf("%x", st.Leader[:])
	}
	return s
}
