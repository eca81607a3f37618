package node

import (
	"context"
	"encoding/hex"
	"errors"
	"fmt"
	"log/slog"
	"time"

	"github.com/blockgossip/blockgossip/cmd/internal/config"
	"github.com/blockgossip/blockgossip/cmd/internal/ops"
	"github.com/blockgossip/blockgossip/cmd/internal/orderer"
	"github.com/blockgossip/blockgossip/comm"
	"github.com/blockgossip/blockgossip/ledger"
	pb "github.com/blockgossip/blockgossip/protos"
	"github.com/prometheus/client_golang/prometheus"
)

// OrdererSection is the orderer node's own keys.
type OrdererSection struct {
	Identity `yaml:",inline"`
	// ListenAddress is where the AtomicBroadcast and Admin services listen
	// (mutual TLS).
	ListenAddress string `yaml:"listenAddress"`
	// LedgerDir holds the orderer's LevelDB chain.
	LedgerDir string `yaml:"ledgerDir"`
	// ShutdownTimeout bounds the graceful stop of the gRPC server.
	ShutdownTimeout time.Duration `yaml:"shutdownTimeout"`
}

// OrdererConfig is the whole orderer configuration file.
type OrdererConfig struct {
	Orderer    OrdererSection `yaml:"orderer"`
	Ordering   orderer.Config `yaml:"ordering"`
	Comm       comm.Config    `yaml:"comm"`
	Operations ops.Config     `yaml:"operations"`
	Log        LogConfig      `yaml:"log"`
}

// DefaultOrdererConfig returns the defaults; the identity and ledger paths
// have none and must be set.
func DefaultOrdererConfig() OrdererConfig {
	return OrdererConfig{
		Orderer: OrdererSection{
			ListenAddress:   "127.0.0.1:7050", // Fabric's orderer port, loopback until configured otherwise
			LedgerDir:       "ledger",         // beside the config file
			ShutdownTimeout: 5 * time.Second,  // let Broadcast calls in flight finish
		},
		Ordering:   orderer.DefaultConfig(),
		Comm:       comm.DefaultConfig(),
		Operations: ops.DefaultConfig(),
		Log:        DefaultLogConfig(),
	}
}

// LoadOrdererConfig reads the file at path over the defaults, applies the
// environment and resolves paths relative to the file's directory.
func LoadOrdererConfig(path string, env []string) (OrdererConfig, error) {
	c := DefaultOrdererConfig()
	if err := config.Load(path, env, &c); err != nil {
		return c, err
	}
	c.Orderer.Identity.resolve(path)
	c.Orderer.LedgerDir = config.ResolvePath(path, c.Orderer.LedgerDir)
	return c, nil
}

// Validate reports every missing or bad key.
func (c OrdererConfig) Validate() error {
	errs := []error{
		c.Orderer.Identity.validate("orderer"),
		config.Required("orderer.listenAddress", c.Orderer.ListenAddress),
		config.Required("orderer.ledgerDir", c.Orderer.LedgerDir),
		c.Operations.Validate(),
		c.Log.Validate(),
	}
	if err := c.Ordering.Validate(); err != nil {
		errs = append(errs, fmt.Errorf("ordering: %w", err))
	}
	if err := c.Comm.Validate(); err != nil {
		errs = append(errs, fmt.Errorf("comm: %w", err))
	}
	if c.Orderer.ShutdownTimeout <= 0 {
		errs = append(errs, fmt.Errorf("%w: orderer.shutdownTimeout must be positive", config.ErrInvalid))
	}
	return errors.Join(errs...)
}

// RunOrderer runs the orderer stub until ctx is done, then stops it
// cleanly. It returns an error if the node cannot start or fails.
func RunOrderer(ctx context.Context, c OrdererConfig, logger *slog.Logger, level *slog.LevelVar) error {
	if err := c.Validate(); err != nil {
		return err
	}
	m, err := c.Orderer.Identity.load()
	if err != nil {
		return err
	}
	store, err := ledger.Open(c.Orderer.LedgerDir, m.verifier)
	if err != nil {
		return fmt.Errorf("open orderer ledger: %w", err)
	}
	defer store.Close()
	o, err := orderer.New(c.Ordering, m.id, m.network, store, logger)
	if err != nil {
		return err
	}
	ln, err := listen(c.Orderer.ListenAddress, "orderer.listenAddress", "--listen")
	if err != nil {
		return err
	}
	srv := comm.NewServer(c.Comm, m.id, m.msp)
	o.Register(srv)

	reg := newRegistry()
	reg.MustRegister(prometheus.NewGaugeFunc(prometheus.GaugeOpts{
		Name: "blockgossip_ledger_height", Help: "Blocks in the orderer's chain, genesis included.",
	}, func() float64 { return float64(o.Height()) }))
	var cutterErr error
	cutterDone := make(chan struct{})
	opsSrv := ops.New(c.Operations, ops.Options{
		Health: []ops.Check{
			{Component: "ledger", Check: func() error { return ledgerCheck(store) }},
			{Component: "cutter", Check: func() error {
				select {
				case <-cutterDone:
					return fmt.Errorf("block cutter stopped: %v", cutterErr)
				default:
					return nil
				}
			}},
		},
		Gatherer: reg,
		Level:    level,
		Logger:   logger,
		Status: func() any {
			return Status{Name: m.id.Name, Org: m.id.Org, Role: "orderer", Height: store.Height(), TipHash: hex.EncodeToString(store.Tip().CurrentHash)}
		},
	})
	if err := opsSrv.Start(); err != nil {
		ln.Close()
		return err
	}
	defer opsSrv.Close()

	runCtx, stopCutter := context.WithCancel(ctx)
	defer stopCutter()
	go func() {
		defer close(cutterDone)
		cutterErr = o.Run(runCtx)
	}()
	serveErr := make(chan error, 1)
	go func() { serveErr <- srv.Serve(ln) }()
	logger.Info("orderer started", "name", m.id.Name, "listen", ln.Addr().String(),
		"operations", opsSrv.Addr(), "height", o.Height(), "ledger", c.Orderer.LedgerDir)

	var failure error
	select {
	case <-ctx.Done():
	case <-cutterDone:
		failure = fmt.Errorf("orderer block cutter failed: %w", cutterErr)
	case err := <-serveErr:
		failure = fmt.Errorf("orderer gRPC server failed: %w", err)
	}
	logger.Info("orderer stopping")
	stopCutter() // ends the Deliver streams, so the graceful stop below is quick
	<-cutterDone
	stopServer(srv, c.Orderer.ShutdownTimeout)
	if failure != nil {
		return failure
	}
	if cutterErr != nil {
		return fmt.Errorf("orderer block cutter failed: %w", cutterErr)
	}
	logger.Info("orderer stopped", "height", store.Height())
	return nil
}

// Status is what a node reports on /status.
type Status struct {
	Name    string `json:"name"`
	Org     string `json:"org"`
	Role    string `json:"role"`
	Height  uint64 `json:"height"`
	TipHash string `json:"tip_hash"` // hex
	// Peer only.
	LivePeers int    `json:"live_peers,omitempty"`
	Leader    string `json:"leader,omitempty"`
	IsLeader  bool   `json:"is_leader,omitempty"`
}

// ledgerCheck fails when the last commit could not be written (a full
// disk) or the tip block cannot be read back (a closed or broken store).
func ledgerCheck(l interface {
	Height() uint64
	Block(uint64) (*pb.Block, error)
	Err() error
}) error {
	if err := l.Err(); err != nil {
		return fmt.Errorf("cannot write: %v", err)
	}
	h := l.Height()
	if h == 0 {
		return nil
	}
	if _, err := l.Block(h - 1); err != nil {
		return fmt.Errorf("cannot read block %d: %v", h-1, err)
	}
	return nil
}
