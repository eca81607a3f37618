package main

import (
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"text/tabwriter"

	"github.com/blockgossip/blockgossip/cmd/internal/config"
	"github.com/blockgossip/blockgossip/cmd/internal/node"
	"github.com/spf13/cobra"
	"go.yaml.in/yaml/v3"
)

// nodeFlags are the flags common to `peer start` and `orderer start`; each
// overrides its config key (and that key's environment variable).
type nodeFlags struct {
	config     string
	listen     string
	operations string
	logLevel   string
	ledgerDir  string
}

func (f *nodeFlags) add(c *cobra.Command, role string) {
	fs := c.Flags()
	fs.StringVar(&f.config, "config", "", "YAML config file (see cmd/blockgossip/sample-"+role+".yaml)")
	fs.StringVar(&f.listen, "listen", "", "gRPC listen address host:port ("+role+".listenAddress)")
	fs.StringVar(&f.operations, "operations", "", "operations HTTP listen address host:port (operations.listenAddress)")
	fs.StringVar(&f.logLevel, "log-level", "", "debug, info, warn or error (log.level)")
	fs.StringVar(&f.ledgerDir, "ledger-dir", "", "ledger directory ("+role+".ledgerDir)")
}

func (f *nodeFlags) apply(c *cobra.Command, listen, ledgerDir *string, ops *string, level *string) error {
	if c.Flags().Changed("listen") {
		*listen = f.listen
	}
	if c.Flags().Changed("operations") {
		*ops = f.operations
	}
	if c.Flags().Changed("log-level") {
		*level = f.logLevel
	}
	if c.Flags().Changed("ledger-dir") {
		abs, err := filepath.Abs(f.ledgerDir)
		if err != nil {
			return err
		}
		*ledgerDir = abs
	}
	return nil
}

func requireConfig(f *nodeFlags) error {
	if f.config == "" {
		return usageError{errors.New("--config FILE is required")}
	}
	return nil
}

func newPeerCmd() *cobra.Command {
	c := &cobra.Command{Use: "peer", Short: "Run a peer node"}
	var (
		f         nodeFlags
		bootstrap []string
		orderers  []string
	)
	start := &cobra.Command{
		Use:   "start --config FILE",
		Short: "Run a peer until SIGTERM or SIGINT, then stop cleanly",
		Long: `Start runs a peer: it loads its identity and the network description, opens
its ledger, joins the membership through the bootstrap peers, takes part in its
org's leader election (the leader pulls blocks from the orderer), gossips and
commits blocks, and serves Admin.LedgerInfo and the operations endpoints.

Keys come from the config file, then BLOCKGOSSIP_* environment variables
(BLOCKGOSSIP_PEER_LISTENADDRESS, BLOCKGOSSIP_GOSSIP_FANOUT, ...; list them with
` + "`blockgossip config keys --role peer`" + `), then these flags.`,
		Args: noArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			if err := requireConfig(&f); err != nil {
				return err
			}
			cfg, err := node.LoadPeerConfig(f.config, os.Environ())
			if err != nil {
				return err
			}
			if err := f.apply(cmd, &cfg.Peer.ListenAddress, &cfg.Peer.LedgerDir, &cfg.Operations.ListenAddress, &cfg.Log.Level); err != nil {
				return err
			}
			if cmd.Flags().Changed("bootstrap") {
				cfg.Peer.Bootstrap = bootstrap
			}
			if cmd.Flags().Changed("orderer") {
				cfg.Peer.Orderers = orderers
			}
			if err := cfg.Validate(); err != nil {
				return fmt.Errorf("config %s: %w", f.config, err)
			}
			logger, level := node.NewLogger(cfg.Log, cmd.ErrOrStderr())
			return node.RunPeer(cmd.Context(), cfg, logger, level)
		},
	}
	f.add(start, "peer")
	start.Flags().StringSliceVar(&bootstrap, "bootstrap", nil, "bootstrap peers host:port,... (peer.bootstrap)")
	start.Flags().StringSliceVar(&orderers, "orderer", nil, "orderer endpoints host:port,... (peer.orderers)")
	c.AddCommand(start)
	return c
}

func newOrdererCmd() *cobra.Command {
	c := &cobra.Command{Use: "orderer", Short: "Run the orderer stub"}
	var f nodeFlags
	start := &cobra.Command{
		Use:   "start --config FILE",
		Short: "Run the orderer stub until SIGTERM or SIGINT, then stop cleanly",
		Long: `Start runs the orderer stub: it writes the genesis block (the network
description) on first start, cuts submitted transactions into signed blocks,
persists them and streams them to the org leaders.

Keys come from the config file, then BLOCKGOSSIP_* environment variables
(BLOCKGOSSIP_ORDERER_LISTENADDRESS, BLOCKGOSSIP_ORDERING_BATCHMAXTX, ...; list
them with ` + "`blockgossip config keys --role orderer`" + `), then these flags.`,
		Args: noArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			if err := requireConfig(&f); err != nil {
				return err
			}
			cfg, err := node.LoadOrdererConfig(f.config, os.Environ())
			if err != nil {
				return err
			}
			if err := f.apply(cmd, &cfg.Orderer.ListenAddress, &cfg.Orderer.LedgerDir, &cfg.Operations.ListenAddress, &cfg.Log.Level); err != nil {
				return err
			}
			if err := cfg.Validate(); err != nil {
				return fmt.Errorf("config %s: %w", f.config, err)
			}
			logger, level := node.NewLogger(cfg.Log, cmd.ErrOrStderr())
			return node.RunOrderer(cmd.Context(), cfg, logger, level)
		},
	}
	f.add(start, "orderer")
	c.AddCommand(start)
	return c
}

func newConfigCmd() *cobra.Command {
	c := &cobra.Command{Use: "config", Short: "Describe node configuration keys"}
	var role string
	keys := &cobra.Command{
		Use:   "keys --role peer|orderer",
		Short: "List every config key with its environment variable and default",
		Args:  noArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			var defaults any
			switch role {
			case "peer":
				d := node.DefaultPeerConfig()
				defaults = &d
			case "orderer":
				d := node.DefaultOrdererConfig()
				defaults = &d
			default:
				return usageError{fmt.Errorf("--role must be peer or orderer, got %q", role)}
			}
			tw := tabwriter.NewWriter(cmd.OutOrStdout(), 0, 4, 2, ' ', 0)
			fmt.Fprintln(tw, "KEY\tENVIRONMENT\tDEFAULT")
			for _, k := range config.Keys(defaults) {
				fmt.Fprintf(tw, "%s\t%s\t%s\n", k.Path, k.Env, defaultOf(defaults, k.Path))
			}
			return tw.Flush()
		},
	}
	keys.Flags().StringVar(&role, "role", "peer", "peer or orderer")
	c.AddCommand(keys)
	return c
}

// defaultOf renders the default value at a dotted path as YAML.
func defaultOf(defaults any, path string) string {
	var doc yaml.Node
	if err := doc.Encode(defaults); err != nil {
		return "?"
	}
	n := &doc
	for _, p := range strings.Split(path, ".") {
		found := false
		for i := 0; i+1 < len(n.Content); i += 2 {
			if n.Content[i].Value == p {
				n, found = n.Content[i+1], true
				break
			}
		}
		if !found {
			return ""
		}
	}
	out, err := yaml.Marshal(n)
	if err != nil {
		return "?"
	}
	return strings.TrimRight(string(out), "\n")
}
