package node

import (
	"errors"
	"fmt"
	"net"
	"time"

	"github.com/blockgossip/blockgossip/cmd/internal/config"
	"github.com/blockgossip/blockgossip/cmd/internal/ops"
	"github.com/blockgossip/blockgossip/comm"
	"github.com/blockgossip/blockgossip/gossip"
)

// PeerSection is the peer node's own keys.
type PeerSection struct {
	Identity `yaml:",inline"`
	// ListenAddress is where the gossip and Admin services listen (mutual TLS).
	ListenAddress string `yaml:"listenAddress"`
	// ExternalEndpoint is the address other peers dial, announced in alive
	// messages; empty means ListenAddress.
	ExternalEndpoint string `yaml:"externalEndpoint"`
	// Bootstrap lists peers (host:port) to learn the membership from.
	Bootstrap []string `yaml:"bootstrap"`
	// Orderers lists the orderer endpoints the org leader pulls blocks from.
	Orderers []string `yaml:"orderers"`
	// LedgerDir holds the peer's LevelDB chain.
	LedgerDir string `yaml:"ledgerDir"`
	// IncarnationFile keeps the incarnation number that grows across restarts.
	IncarnationFile string `yaml:"incarnationFile"`
	// Profile picks the gossip defaults the gossip section overrides:
	// "default" or "fabric" (Hyperledger Fabric's, to compare against).
	Profile string `yaml:"profile"`
	// ReadyMinPeers is how many live peers /readyz wants before it says ready.
	ReadyMinPeers int `yaml:"readyMinPeers"`
	// ReadyMaxLag is how many blocks the peer may trail the highest block
	// it has heard of and still be ready.
	ReadyMaxLag uint64 `yaml:"readyMaxLag"`
	// ShutdownTimeout bounds the graceful stop of the gRPC server.
	ShutdownTimeout time.Duration `yaml:"shutdownTimeout"`
}

// PeerConfig is the whole peer configuration file.
type PeerConfig struct {
	Peer       PeerSection        `yaml:"peer"`
	Gossip     gossip.Config      `yaml:"gossip"`
	Comm       comm.Config        `yaml:"comm"`
	Deliver    comm.DeliverConfig `yaml:"deliver"`
	Operations ops.Config         `yaml:"operations"`
	Log        LogConfig          `yaml:"log"`
}

// DefaultPeerConfig returns the defaults; the identity paths and the
// orderer endpoints have none and must be set.
func DefaultPeerConfig() PeerConfig {
	return PeerConfig{
		Peer: PeerSection{
			ListenAddress:   "127.0.0.1:7051", // Fabric's peer port, loopback until configured otherwise
			LedgerDir:       "ledger",         // beside the config file
			IncarnationFile: "incarnation",    // beside the config file, outside the ledger's LevelDB
			Profile:         "default",        // blockgossip's own tuning
			ReadyMinPeers:   1,                // one live peer: gossip can start moving blocks
			ReadyMaxLag:     10,               // a few blocks in flight are normal; more means catching up
			ShutdownTimeout: 5 * time.Second,  // let streams drain; then force
		},
		Gossip:     gossip.DefaultConfig(),
		Comm:       comm.DefaultConfig(),
		Deliver:    comm.DefaultDeliverConfig(),
		Operations: ops.DefaultConfig(),
		Log:        DefaultLogConfig(),
	}
}

// LoadPeerConfig reads the file at path over the defaults (of the profile
// the file or environment selects), applies the environment and resolves
// paths relative to the file's directory.
func LoadPeerConfig(path string, env []string) (PeerConfig, error) {
	c := DefaultPeerConfig()
	if err := config.Load(path, env, &c); err != nil {
		return c, err
	}
	switch c.Peer.Profile {
	case "default":
	case "fabric":
		c = DefaultPeerConfig()
		c.Gossip = gossip.FabricConfig()
		if err := config.Load(path, env, &c); err != nil {
			return c, err
		}
	default:
		return c, fmt.Errorf("%w: peer.profile is %q: use default or fabric", config.ErrInvalid, c.Peer.Profile)
	}
	c.Peer.Identity.resolve(path)
	c.Peer.LedgerDir = config.ResolvePath(path, c.Peer.LedgerDir)
	c.Peer.IncarnationFile = config.ResolvePath(path, c.Peer.IncarnationFile)
	return c, nil
}

// Validate reports every missing or bad key.
func (c PeerConfig) Validate() error {
	errs := []error{
		c.Peer.Identity.validate("peer"),
		config.Required("peer.listenAddress", c.Peer.ListenAddress),
		config.Required("peer.ledgerDir", c.Peer.LedgerDir),
		config.Required("peer.incarnationFile", c.Peer.IncarnationFile),
		c.Operations.Validate(),
		c.Log.Validate(),
	}
	if len(c.Peer.Orderers) == 0 {
		errs = append(errs, fmt.Errorf("%w: peer.orderers is required: list the orderer endpoints (host:port) in the config file or in BLOCKGOSSIP_PEER_ORDERERS", config.ErrInvalid))
	}
	for _, ep := range append(append([]string{}, c.Peer.Orderers...), c.Peer.Bootstrap...) {
		if _, _, err := net.SplitHostPort(ep); err != nil {
			errs = append(errs, fmt.Errorf("%w: endpoint %q in peer.orderers or peer.bootstrap is not host:port", config.ErrInvalid, ep))
		}
	}
	if err := c.Gossip.Validate(); err != nil {
		errs = append(errs, fmt.Errorf("gossip: %w", err))
	}
	if c.Gossip.TickInterval <= 0 {
		errs = append(errs, fmt.Errorf("%w: gossip.tickinterval must be positive", config.ErrInvalid))
	}
	if err := c.Comm.Validate(); err != nil {
		errs = append(errs, fmt.Errorf("comm: %w", err))
	}
	if err := c.Deliver.Validate(); err != nil {
		errs = append(errs, fmt.Errorf("deliver: %w", err))
	}
	if c.Peer.ShutdownTimeout <= 0 {
		errs = append(errs, fmt.Errorf("%w: peer.shutdownTimeout must be positive", config.ErrInvalid))
	}
	return errors.Join(errs...)
}
