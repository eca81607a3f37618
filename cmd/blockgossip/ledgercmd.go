package main

import (
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"strings"
	"time"

	"github.com/blockgossip/blockgossip/cmd/internal/client"
	"github.com/blockgossip/blockgossip/cmd/internal/netctl"
	"github.com/blockgossip/blockgossip/identity"
	"github.com/blockgossip/blockgossip/ledger"
	pb "github.com/blockgossip/blockgossip/protos"
	"github.com/spf13/cobra"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/status"
)

func newLedgerCmd() *cobra.Command {
	c := &cobra.Command{Use: "ledger", Short: "Inspect ledgers: a running node's height, or a ledger directory offline"}
	c.AddCommand(newLedgerHeightCmd(), newLedgerVerifyCmd())
	return c
}

// target is how a client command finds a node: by name in a network
// started by `network up`, or by address and credential files.
type target struct {
	network string
	name    string
	addr    string
	creds   client.Credentials
}

func (t *target) addFlags(c *cobra.Command, nameFlag, nameHelp, addrFlag string) {
	f := c.Flags()
	f.StringVar(&t.network, "network", "", "directory of a network started by network up (reads its network.json)")
	if nameFlag != "" {
		f.StringVar(&t.name, nameFlag, "", nameHelp)
	}
	f.StringVar(&t.addr, addrFlag, "", "node gRPC address host:port (with --cert, --key, --ca)")
	f.StringVar(&t.creds.Cert, "cert", "", "client certificate (PEM)")
	f.StringVar(&t.creds.Key, "key", "", "client key (PEM)")
	f.StringVar(&t.creds.CA, "ca", "", "trusted CA certificates (PEM bundle) or network-description.json")
}

// resolve turns the flags into an address and credentials.
func (t *target) resolve(nameFlag, addrFlag string, defaultName func(*netctl.File) (netctl.Node, error)) (string, client.Credentials, error) {
	if t.network != "" {
		if t.addr != "" {
			return "", t.creds, usageError{fmt.Errorf("give either --network or --%s, not both", addrFlag)}
		}
		nf, err := netctl.Read(t.network)
		if err != nil {
			return "", t.creds, err
		}
		var n netctl.Node
		switch {
		case t.name != "":
			n, err = nf.Node(t.name)
		case defaultName != nil:
			n, err = defaultName(nf)
		default:
			err = usageError{fmt.Errorf("--%s NAME is required with --network (one of: %v)", nameFlag, nf.Names())}
		}
		if err != nil {
			return "", t.creds, err
		}
		creds := client.Credentials{Cert: nf.Admin.Cert, Key: nf.Admin.Key, CA: nf.Admin.CA}
		if t.creds.Cert != "" || t.creds.Key != "" || t.creds.CA != "" {
			creds = t.creds // explicit files win over the network's admin
		}
		return n.Address, creds, nil
	}
	if t.addr == "" {
		return "", t.creds, usageError{fmt.Errorf("say which node: --network DIR (with --%s NAME) or --%s ADDR with --cert, --key and --ca", nameFlag, addrFlag)}
	}
	return t.addr, t.creds, t.creds.Validate()
}

// ledgerInfoJSON is the --json contract of `ledger height`.
type ledgerInfoJSON struct {
	Height            uint64 `json:"height"`
	CurrentBlockHash  string `json:"currentBlockHash"`
	PreviousBlockHash string `json:"previousBlockHash"`
}

func newLedgerHeightCmd() *cobra.Command {
	var (
		t       target
		asJSON  bool
		timeout time.Duration
	)
	c := &cobra.Command{
		Use:   "height (--network DIR --peer NAME | --peer-addr ADDR --cert F --key F --ca F) [--json]",
		Short: "Ask a running peer (or the orderer: --peer orderer) for its ledger height and current block hash",
		Args:  noArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			addr, creds, err := t.resolve("peer", "peer-addr", nil)
			if err != nil {
				return err
			}
			id, msp, err := creds.Load()
			if err != nil {
				return err
			}
			conn, err := client.Dial(addr, id, msp)
			if err != nil {
				return err
			}
			defer conn.Close()
			info, err := client.LedgerInfo(cmd.Context(), conn, timeout)
			if err != nil {
				return explainRPC(err, addr)
			}
			return printLedgerInfo(cmd.OutOrStdout(), info, asJSON)
		},
	}
	t.addFlags(c, "peer", "node name in network.json (e.g. org1-peer0, or orderer)", "peer-addr")
	c.Flags().BoolVar(&asJSON, "json", false, `print exactly one JSON object {"height":N,"currentBlockHash":"hex","previousBlockHash":"hex"}`)
	c.Flags().DurationVar(&timeout, "timeout", 5*time.Second, "how long to wait for the answer")
	return c
}

func printLedgerInfo(w io.Writer, info *pb.LedgerInfoResponse, asJSON bool) error {
	out := ledgerInfoJSON{
		Height:            info.GetHeight(),
		CurrentBlockHash:  hex.EncodeToString(info.GetCurrentBlockHash()),
		PreviousBlockHash: hex.EncodeToString(info.GetPreviousBlockHash()),
	}
	if asJSON {
		return json.NewEncoder(w).Encode(out)
	}
	name := info.GetName()
	if info.GetOrg() != "" {
		name += " (" + info.GetOrg() + ")"
	}
	if name != "" {
		fmt.Fprintf(w, "node:                %s\n", name)
	}
	fmt.Fprintf(w, "height:              %d\n", out.Height)
	fmt.Fprintf(w, "current block hash:  %s\n", out.CurrentBlockHash)
	fmt.Fprintf(w, "previous block hash: %s\n", out.PreviousBlockHash)
	return nil
}

// explainRPC adds what to do to the usual gRPC failures.
func explainRPC(err error, addr string) error {
	msg := err.Error()
	if strings.Contains(msg, "certificate") || strings.Contains(msg, "tls:") {
		return fmt.Errorf("%w (TLS refused: the node must accept --cert as a member of its network, and --ca must trust the node's org)", err)
	}
	switch status.Code(errors.Unwrap(err)) {
	case codes.Unavailable:
		return fmt.Errorf("%w (is the node at %s running, and is --cert a member of its network? `network up` writes each log to DIR/<name>/node.log)", err, addr)
	case codes.DeadlineExceeded:
		return fmt.Errorf("%w (the node at %s did not answer in time; raise --timeout or check its log)", err, addr)
	case codes.PermissionDenied, codes.Unauthenticated:
		return fmt.Errorf("%w (the node refused these credentials: use a member certificate of this network)", err)
	}
	return err
}

func newLedgerVerifyCmd() *cobra.Command {
	var (
		dir   string
		quiet bool
	)
	c := &cobra.Command{
		Use:   "verify --dir LEDGER_DIR",
		Short: "Re-check a ledger directory offline: linkage, data hashes and orderer signatures of every block",
		Long: `Verify opens a stopped node's ledger read-only and checks every block from
genesis: it decodes, links to its predecessor, its data hash matches its
transactions and the orderer signed it. The orderer key is the one pinned in
the network description carried by genesis block 0. It names the first bad
block and exits non-zero.`,
		Args: noArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			if dir == "" {
				return usageError{fmt.Errorf("--dir LEDGER_DIR is required")}
			}
			w := cmd.OutOrStdout()
			var last time.Time
			progress := func(done, total uint64) {
				if quiet || (done != total && time.Since(last) < time.Second) {
					return
				}
				last = time.Now()
				fmt.Fprintf(cmd.ErrOrStderr(), "verified %d/%d blocks\n", done, total)
			}
			height, err := ledger.VerifyChain(dir, verifierFromGenesis, progress)
			if err != nil {
				var ce *ledger.ChainError
				if errors.As(err, &ce) {
					return fmt.Errorf("ledger %s: block %d is bad: %v (the %d blocks before it are good; remove the ledger directory to re-sync it from peers)", dir, ce.Number, ce.Err, height)
				}
				return fmt.Errorf("ledger verify: %w", err)
			}
			fmt.Fprintf(w, "ledger %s: %d blocks, all good\n", dir, height)
			return nil
		},
	}
	c.Flags().StringVar(&dir, "dir", "", "ledger directory (a node's ledger_dir); the node must be stopped")
	c.Flags().BoolVar(&quiet, "quiet", false, "no progress lines")
	return c
}

// verifierFromGenesis reads the network description that genesis block 0
// carries as its single transaction and returns the pinned orderer key.
func verifierFromGenesis(genesis *pb.Block) (ledger.BlockVerifier, error) {
	txs := genesis.GetData().GetTransactions()
	if len(txs) != 1 {
		return nil, fmt.Errorf("genesis block holds %d transactions, want 1 (the network description)", len(txs))
	}
	nd, err := identity.ParseNetworkDescription(txs[0])
	if err != nil {
		return nil, fmt.Errorf("genesis block: %w", err)
	}
	v, err := nd.OrdererVerifier()
	if err != nil {
		return nil, fmt.Errorf("genesis block: %w", err)
	}
	return v, nil
}
