// Command blockgossip is the one binary of a blockgossip network: it
// generates crypto material, runs the orderer stub and peer nodes, starts
// and stops a whole local network, submits transactions and inspects
// ledgers.
//
//	blockgossip crypto generate --orgs 2 --peers-per-org 3 --out crypto
//	blockgossip orderer start --config orderer.yaml
//	blockgossip peer start --config peer.yaml
//	blockgossip network up [--dir ./blockgossip-net] [--detach]
//	blockgossip network down --dir ./blockgossip-net
//	blockgossip submit --network ./blockgossip-net --count 10 --size 256
//	blockgossip ledger height --network ./blockgossip-net --peer org1-peer0 [--json]
//	blockgossip ledger verify --dir ./blockgossip-net/org1-peer0/ledger
//
// Runtime errors print one line saying what is wrong and what to do, and
// exit with status 1; usage errors also print the command's usage.
package main

import (
	"context"
	"errors"
	"fmt"
	"io"
	"os"
	"os/signal"
	"syscall"

	"github.com/spf13/cobra"
)

func main() {
	// The first SIGINT/SIGTERM cancels the command's context (nodes and
	// `network up` stop cleanly); after it, signals get their default action
	// again, so a second Ctrl-C ends a stop that hangs.
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	go func() { <-ctx.Done(); stop() }()
	code := run(ctx, os.Args[1:], os.Stdout, os.Stderr)
	stop()
	os.Exit(code)
}

// run executes one command line and returns the exit status.
func run(ctx context.Context, args []string, stdout, stderr io.Writer) int {
	root := newRootCmd()
	root.SetArgs(args)
	root.SetOut(stdout)
	root.SetErr(stderr)
	cmd, err := root.ExecuteContextC(ctx)
	if err == nil {
		return 0
	}
	fmt.Fprintf(stderr, "blockgossip: %v\n", err)
	var ue usageError
	if errors.As(err, &ue) && cmd != nil {
		fmt.Fprintf(stderr, "\n%s", cmd.UsageString())
		return 2
	}
	return 1
}

// usageError marks an error in the command line itself (as opposed to a
// failure while running), for which the usage is worth printing.
type usageError struct{ error }

func (e usageError) Unwrap() error { return e.error }

func newRootCmd() *cobra.Command {
	root := &cobra.Command{
		Use:   "blockgossip",
		Short: "Block dissemination for a permissioned blockchain",
		Long: `blockgossip spreads blocks cut by an orderer to every peer of a permissioned
network: one elected leader per organisation pulls them from the orderer and
the peers gossip them to each other over mutual-TLS gRPC, verifying every block
before forwarding or committing it.`,
		SilenceErrors: true,
		SilenceUsage:  true,
	}
	root.SetFlagErrorFunc(func(c *cobra.Command, err error) error {
		c.SilenceUsage = false
		return usageError{err}
	})
	root.AddCommand(newCryptoCmd(), newLedgerCmd(), newNetworkCmd(), newSubmitCmd(),
		newPeerCmd(), newOrdererCmd(), newConfigCmd())
	root.AddCommand(newBenchCmd())
	root.AddCommand(newSimCmd())
	return root
}

// noArgs rejects positional arguments as a usage error.
func noArgs(c *cobra.Command, args []string) error {
	if len(args) > 0 {
		c.SilenceUsage = false
		return usageError{fmt.Errorf("%s takes no arguments, got %q", c.CommandPath(), args)}
	}
	return nil
}
