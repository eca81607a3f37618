package main

import (
	"context"
	"errors"
	"fmt"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strings"
	"time"

	"github.com/blockgossip/blockgossip/cmd/internal/config"
	"github.com/blockgossip/blockgossip/cmd/internal/netctl"
	"github.com/blockgossip/blockgossip/identity"
	"github.com/spf13/cobra"
)

// defaultNetworkDir is where `network up` puts a network unless told.
const defaultNetworkDir = "./blockgossip-net"

func newNetworkCmd() *cobra.Command {
	c := &cobra.Command{Use: "network", Short: "Start and stop a whole local network (orderer + peers) on this machine"}
	c.AddCommand(newNetworkUpCmd(), newNetworkDownCmd())
	return c
}

type upOptions struct {
	dir         string
	orgs        int
	peersPerOrg int
	rate        float64
	blockSize   int
	detach      bool
	timeout     time.Duration
	grace       time.Duration
	refresh     time.Duration
}

func newNetworkUpCmd() *cobra.Command {
	var o upOptions
	c := &cobra.Command{
		Use:   "up [--dir DIR] [--orgs 2] [--peers-per-org 3] [--rate BLOCKS_PER_S] [--block-size BYTES] [--detach]",
		Short: "Generate crypto, write a config per node and start the orderer and every peer as child processes",
		Long: `Up starts a local network in DIR (default ` + defaultNetworkDir + `): crypto material in
DIR/crypto, one directory per node (DIR/<name>/config.yaml, ledger/, node.log)
and DIR/network.json listing every node's addresses, files and pid.

A DIR that already holds a network (stopped) is reused: same crypto, the
ledgers continue. A DIR holding anything else is refused.

In the foreground a table of every node's height and each org's leader
refreshes until Ctrl-C, which stops every node. With --detach the command
returns once every node answers its health check; stop the network with
` + "`blockgossip network down --dir DIR`" + `.

With --rate the command also feeds the orderer: one transaction of
--block-size bytes per block, --rate blocks a second.`,
		Args: noArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			return networkUp(cmd, o)
		},
	}
	f := c.Flags()
	f.StringVar(&o.dir, "dir", defaultNetworkDir, "directory of the network")
	f.IntVar(&o.orgs, "orgs", 2, "peer organisations")
	f.IntVar(&o.peersPerOrg, "peers-per-org", 3, "peers per organisation")
	f.Float64Var(&o.rate, "rate", 0, "feed this many blocks a second (0: no feeding)")
	f.IntVar(&o.blockSize, "block-size", 10<<10, "bytes of each fed block's transaction")
	f.BoolVar(&o.detach, "detach", false, "return once every node is healthy, leaving the network running")
	f.DurationVar(&o.timeout, "timeout", 90*time.Second, "how long nodes may take to become healthy (--detach)")
	f.DurationVar(&o.grace, "grace", 10*time.Second, "how long nodes may take to stop before SIGKILL")
	f.DurationVar(&o.refresh, "refresh", time.Second, "table refresh interval")
	return c
}

// started is a node process this command started and reaps.
type started struct {
	node netctl.Node
	cmd  *exec.Cmd
	done chan struct{} // closed once the process has exited
	err  error         // its exit status, after done
}

func (s *started) exited() bool {
	select {
	case <-s.done:
		return true
	default:
		return false
	}
}

func networkUp(cmd *cobra.Command, o upOptions) error {
	if o.orgs < 1 || o.peersPerOrg < 1 {
		return usageError{errors.New("--orgs and --peers-per-org must be at least 1")}
	}
	if o.rate < 0 || o.blockSize < 1 {
		return usageError{errors.New("--rate must be >= 0 and --block-size positive")}
	}
	if o.rate > 0 && o.detach {
		return usageError{errors.New("--rate feeds blocks from this process, so it needs the foreground: drop --detach, or feed a detached network with `blockgossip submit`")}
	}
	dir, err := filepath.Abs(o.dir)
	if err != nil {
		return err
	}
	plan, err := planNetwork(cmd, dir, o)
	if err != nil {
		return err
	}
	bin, err := os.Executable()
	if err != nil {
		return fmt.Errorf("find the blockgossip executable to start nodes with: %w", err)
	}
	w := cmd.OutOrStdout()
	fmt.Fprintf(w, "starting %d nodes in %s\n", len(plan.file.Nodes), dir)

	env, dropped := nodeEnv(os.Environ())
	if len(dropped) > 0 {
		fmt.Fprintf(cmd.ErrOrStderr(), "not passing %s to the nodes: network up sets these keys per node\n", strings.Join(dropped, ", "))
	}
	procs := make([]*started, 0, len(plan.file.Nodes))
	stopAll := func() {
		pids := make([]int, 0, len(procs))
		byPID := map[int]*started{}
		for _, p := range procs {
			pids = append(pids, p.cmd.Process.Pid)
			byPID[p.cmd.Process.Pid] = p
		}
		killed, err := netctl.Stop(pids, netctl.StopOptions{Grace: o.grace, Exited: func(pid int) bool { return byPID[pid].exited() }})
		if len(killed) > 0 {
			fmt.Fprintf(cmd.ErrOrStderr(), "killed %d nodes that did not stop within %v: pids %v\n", len(killed), o.grace, killed)
		}
		if err != nil {
			fmt.Fprintf(cmd.ErrOrStderr(), "%v\n", err)
		}
	}
	for i := range plan.file.Nodes {
		n := &plan.file.Nodes[i]
		role := "peer"
		if n.Role == netctl.RoleOrderer {
			role = "orderer"
		}
		c, err := netctl.Start(bin, []string{role, "start", "--config", n.Config}, env, n.Log)
		if err != nil {
			stopAll()
			return fmt.Errorf("start node %s: %w", n.Name, err)
		}
		n.PID = c.Process.Pid
		p := &started{node: *n, cmd: c, done: make(chan struct{})}
		go func() { p.err = c.Wait(); close(p.done) }()
		procs = append(procs, p)
	}
	if err := plan.file.Write(dir); err != nil {
		stopAll()
		return fmt.Errorf("write %s: %w", filepath.Join(dir, netctl.FileName), err)
	}

	if o.detach {
		if err := waitHealthy(cmd.Context(), procs, o.timeout); err != nil {
			fmt.Fprintf(cmd.ErrOrStderr(), "stopping the network: %v\n", err)
			stopAll()
			return err
		}
		for _, p := range procs {
			fmt.Fprintf(w, "  %-14s %-8s pid %-7d grpc %-16s ops %-16s log %s\n", p.node.Name, p.node.Role, p.node.PID, p.node.Address, p.node.Operations, p.node.Log)
		}
		fmt.Fprintf(w, "network up in %s (network.json lists every node); stop it with: blockgossip network down --dir %s\n", dir, dir)
		return nil // the nodes lead their own sessions and outlive this process
	}

	ctx, cancel := context.WithCancel(cmd.Context())
	defer cancel()
	var feed *feeder
	if o.rate > 0 {
		feed, err = startFeeder(ctx, plan.file, o.rate, o.blockSize)
		if err != nil {
			stopAll()
			return err
		}
	}
	runTable(ctx, w, plan, procs, feed, o.refresh)
	cancel()
	if feed != nil {
		feed.wait()
	}
	fmt.Fprintln(w, "stopping the network...")
	stopAll()
	fmt.Fprintln(w, "network stopped; start it again with the same --dir to continue its ledgers")
	return nil
}

// waitHealthy polls every node's /healthz until all answer 200, a node
// exits, or the deadline passes; the error names the node and its log.
func waitHealthy(ctx context.Context, procs []*started, timeout time.Duration) error {
	ctx, cancel := context.WithTimeout(ctx, timeout)
	defer cancel()
	httpc := &http.Client{Timeout: time.Second}
	pending := slices.Clone(procs)
	lastErr := map[string]error{}
	tick := time.NewTicker(200 * time.Millisecond)
	defer tick.Stop()
	for len(pending) > 0 {
		var still []*started
		for _, p := range pending {
			if p.exited() {
				return fmt.Errorf("node %s exited during start-up (%v); its log %s ends with:\n%s", p.node.Name, p.err, p.node.Log, tail(p.node.Log, 15))
			}
			if err := netctl.Healthy(ctx, httpc, p.node.Operations); err != nil {
				lastErr[p.node.Name] = err
				still = append(still, p)
			}
		}
		pending = still
		if len(pending) == 0 {
			break
		}
		select {
		case <-ctx.Done():
			p := pending[0]
			return fmt.Errorf("node %s did not become healthy within %v (last: %v); see its log %s:\n%s", p.node.Name, timeout, lastErr[p.node.Name], p.node.Log, tail(p.node.Log, 15))
		case <-tick.C:
		}
	}
	return nil
}

// tail returns the last lines of a file, for error messages.
func tail(path string, lines int) string {
	raw, err := os.ReadFile(path)
	if err != nil {
		return fmt.Sprintf("(cannot read %s: %v)", path, err)
	}
	all := strings.Split(strings.TrimRight(string(raw), "\n"), "\n")
	if len(all) > lines {
		all = all[len(all)-lines:]
	}
	return "  " + strings.Join(all, "\n  ")
}

func newNetworkDownCmd() *cobra.Command {
	var (
		dir   string
		grace time.Duration
	)
	c := &cobra.Command{
		Use:   "down --dir DIR",
		Short: "Stop every node of a local network: SIGTERM, then SIGKILL after a grace period; returns when all have exited",
		Args:  noArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			nf, err := netctl.Read(dir)
			if err != nil {
				return err
			}
			var pids []int
			for _, n := range nf.Nodes {
				if netctl.Alive(n.PID) && isNodeProcess(n.PID, n.Config) {
					pids = append(pids, n.PID)
				}
			}
			if len(pids) == 0 {
				fmt.Fprintf(cmd.OutOrStdout(), "no node of %s is running\n", dir)
				return nil
			}
			killed, err := netctl.Stop(pids, netctl.StopOptions{Grace: grace})
			if err != nil {
				return err
			}
			fmt.Fprintf(cmd.OutOrStdout(), "stopped %d nodes", len(pids))
			if len(killed) > 0 {
				fmt.Fprintf(cmd.OutOrStdout(), " (%d killed after %v: pids %v)", len(killed), grace, killed)
			}
			fmt.Fprintln(cmd.OutOrStdout())
			return nil
		},
	}
	c.Flags().StringVar(&dir, "dir", defaultNetworkDir, "directory of the network")
	c.Flags().DurationVar(&grace, "grace", 10*time.Second, "how long nodes may take to stop after SIGTERM before SIGKILL")
	return c
}

// isNodeProcess guards against a recycled pid: the process must be running
// with the node's config file on its command line.
func isNodeProcess(pid int, configPath string) bool {
	raw, err := os.ReadFile(fmt.Sprintf("/proc/%d/cmdline", pid))
	if err != nil {
		return true // no /proc: trust network.json
	}
	return slices.Contains(strings.Split(string(raw), "\x00"), configPath)
}

// adminCredentials picks the identity network.json offers to scripts: the
// admin of the first peer org, trusting every org's CA.
func adminCredentials(mat *identity.Material, bundle string) (netctl.Admin, error) {
	orgs := make([]string, 0, len(mat.Admins))
	for org := range mat.Admins {
		if org != identity.OrdererOrg {
			orgs = append(orgs, org)
		}
	}
	slices.Sort(orgs)
	if len(orgs) == 0 {
		return netctl.Admin{}, errors.New("the crypto material has no peer-org admin")
	}
	a := mat.Admins[orgs[0]]
	return netctl.Admin{Cert: a.Cert, Key: a.Key, CA: bundle}, nil
}

// nodeEnv is the environment of the nodes network up starts: this
// process's, so BLOCKGOSSIP_LOG_LEVEL=debug or BLOCKGOSSIP_GOSSIP_FANOUT=6
// reach every node, minus the variables that would override what network
// up sets per node (addresses, identity, ledger and peer lists): one value
// for all would make every node collide.
func nodeEnv(environ []string) (env, dropped []string) {
	perNode := map[string]bool{"OPERATIONS_LISTENADDRESS": true}
	for _, role := range []string{"PEER", "ORDERER"} {
		for _, key := range []string{"LISTENADDRESS", "EXTERNALENDPOINT", "CERT", "KEY", "NETWORKDESCRIPTION", "LEDGERDIR", "INCARNATIONFILE", "BOOTSTRAP", "ORDERERS"} {
			perNode[role+"_"+key] = true
		}
	}
	for _, kv := range environ {
		name, _, _ := strings.Cut(kv, "=")
		if rest, ok := strings.CutPrefix(name, config.EnvPrefix); ok && perNode[rest] {
			dropped = append(dropped, name)
			continue
		}
		env = append(env, kv)
	}
	return env, dropped
}
