// Package node runs one blockgossip process: the orderer stub or a peer.
// It maps a configuration file (see cmd/internal/config and the samples in
// cmd/blockgossip) to the Config structs of identity, ledger, comm, gossip
// and the orderer stub, wires them, serves gRPC and the operations
// listener, and stops everything in order when its context ends.
package node

import (
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net"
	"strings"
	"time"

	"github.com/blockgossip/blockgossip/cmd/internal/config"
	"github.com/blockgossip/blockgossip/cmd/internal/ops"
	"github.com/blockgossip/blockgossip/identity"
	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/collectors"
	"google.golang.org/grpc"
)

// LogConfig chooses the log level and format.
type LogConfig struct {
	// Level is debug, info, warn or error; PUT /logspec changes it at runtime.
	Level string `yaml:"level"`
	// Format is text (key=value, for people) or json (for log pipelines).
	Format string `yaml:"format"`
}

// DefaultLogConfig returns the defaults.
func DefaultLogConfig() LogConfig {
	return LogConfig{
		Level:  "info", // start, stop, leadership and errors; not per-block chatter
		Format: "text", // read by people in node.log
	}
}

// Validate checks the level and format names.
func (c LogConfig) Validate() error {
	if _, err := ops.ParseLevel(c.Level); err != nil {
		return fmt.Errorf("%w: log.level: %v", config.ErrInvalid, err)
	}
	if c.Format != "text" && c.Format != "json" {
		return fmt.Errorf("%w: log.format is %q: use text or json", config.ErrInvalid, c.Format)
	}
	return nil
}

// NewLogger returns a logger writing to w at a level that can change at
// runtime through the returned LevelVar.
func NewLogger(c LogConfig, w io.Writer) (*slog.Logger, *slog.LevelVar) {
	level := new(slog.LevelVar)
	if l, err := ops.ParseLevel(c.Level); err == nil {
		level.Set(l)
	}
	opts := &slog.HandlerOptions{Level: level}
	if c.Format == "json" {
		return slog.New(slog.NewJSONHandler(w, opts)), level
	}
	return slog.New(slog.NewTextHandler(w, opts)), level
}

// Identity says who a node is: the files of its member certificate and key,
// and of the network description (trusted CAs, pinned orderer certificate).
type Identity struct {
	// Cert is the node's certificate (PEM).
	Cert string `yaml:"cert"`
	// Key is the node's ed25519 private key (PEM PKCS#8).
	Key string `yaml:"key"`
	// NetworkDescription is network-description.json written by
	// `crypto generate`.
	NetworkDescription string `yaml:"networkDescription"`
}

func (c *Identity) resolve(configPath string) {
	c.Cert = config.ResolvePath(configPath, c.Cert)
	c.Key = config.ResolvePath(configPath, c.Key)
	c.NetworkDescription = config.ResolvePath(configPath, c.NetworkDescription)
}

func (c Identity) validate(section string) error {
	return errors.Join(
		config.Required(section+".cert", c.Cert),
		config.Required(section+".key", c.Key),
		config.Required(section+".networkDescription", c.NetworkDescription),
	)
}

// material is what a node loads from its Identity files.
type material struct {
	id       *identity.Identity
	network  *identity.NetworkDescription
	msp      *identity.MSP
	verifier identity.OrdererVerifier
}

func (c Identity) load() (*material, error) {
	id, err := identity.LoadIdentity(c.Cert, c.Key)
	if err != nil {
		return nil, fmt.Errorf("load node identity: %w", err)
	}
	nd, err := identity.LoadNetworkDescription(c.NetworkDescription)
	if err != nil {
		return nil, fmt.Errorf("load network description: %w", err)
	}
	msp, err := nd.MSP()
	if err != nil {
		return nil, fmt.Errorf("network description %s: %w", c.NetworkDescription, err)
	}
	v, err := nd.OrdererVerifier()
	if err != nil {
		return nil, fmt.Errorf("network description %s: %w", c.NetworkDescription, err)
	}
	if _, err := msp.Validate(id.CertDER); err != nil {
		return nil, fmt.Errorf("node certificate %s is not a member of this network: %w (generate it with the same `crypto generate` as %s)", c.Cert, err, c.NetworkDescription)
	}
	return &material{id: id, network: nd, msp: msp, verifier: v}, nil
}

// ErrPortInUse means a listen address could not be bound.
var ErrPortInUse = errors.New("cannot listen")

// listen binds addr, explaining a port in use.
func listen(addr, key, flag string) (net.Listener, error) {
	ln, err := net.Listen("tcp", addr)
	if err != nil {
		hint := ""
		if strings.Contains(err.Error(), "address already in use") {
			hint = " (another process uses this port: stop it or choose another port"
		} else {
			hint = " (check the address"
		}
		return nil, fmt.Errorf("%w on %s: %v%s with %s or %s)", ErrPortInUse, addr, err, hint, key, flag)
	}
	return ln, nil
}

// newRegistry returns a per-node Prometheus registry with the Go runtime
// and process collectors.
func newRegistry() *prometheus.Registry {
	reg := prometheus.NewRegistry()
	reg.MustRegister(collectors.NewGoCollector(), collectors.NewProcessCollector(collectors.ProcessCollectorOpts{}))
	return reg
}

// stopServer stops a gRPC server gracefully, forcing it after timeout.
func stopServer(s *grpc.Server, timeout time.Duration) {
	done := make(chan struct{})
	go func() { s.GracefulStop(); close(done) }()
	select {
	case <-done:
	case <-time.After(timeout):
		s.Stop()
		<-done
	}
}
