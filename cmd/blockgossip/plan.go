package main

import (
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"time"

	"github.com/blockgossip/blockgossip/cmd/internal/client"
	"github.com/blockgossip/blockgossip/cmd/internal/netctl"
	"github.com/blockgossip/blockgossip/identity"
	"github.com/spf13/cobra"
)

// netPlan is a network ready to start: material, configs and network.json
// (pids still zero).
type netPlan struct {
	dir   string
	mat   *identity.Material
	file  *netctl.File
	names map[identity.PKIID]string // node name by PKI-ID, for the leader column
}

const (
	cryptoDirName = "crypto"
	bundleName    = "ca-bundle.pem"
)

// ErrNotANetworkDir means DIR holds files network up did not write.
var ErrNotANetworkDir = errors.New("directory holds something other than a blockgossip network")

// planNetwork prepares DIR: fresh, or an existing stopped network to reuse.
func planNetwork(cmd *cobra.Command, dir string, o upOptions) (*netPlan, error) {
	prev, err := inspectDir(dir, o)
	if err != nil {
		return nil, err
	}
	if prev != nil {
		var running []string
		for _, n := range prev.Nodes {
			if netctl.Alive(n.PID) && isNodeProcess(n.PID, n.Config) {
				running = append(running, fmt.Sprintf("%s (pid %d)", n.Name, n.PID))
			}
		}
		if len(running) > 0 {
			return nil, fmt.Errorf("the network in %s is already running: %s; stop it first with `blockgossip network down --dir %s`", dir, strings.Join(running, ", "), dir)
		}
		orgs, peers := shapeOf(prev)
		if (cmd.Flags().Changed("orgs") && o.orgs != orgs) || (cmd.Flags().Changed("peers-per-org") && o.peersPerOrg != peers) {
			return nil, fmt.Errorf("%s holds a network of %d orgs x %d peers, not %d x %d: omit --orgs/--peers-per-org to restart it, or choose another --dir", dir, orgs, peers, o.orgs, o.peersPerOrg)
		}
		o.orgs, o.peersPerOrg = orgs, peers
		fmt.Fprintf(cmd.OutOrStdout(), "reusing the network in %s (%d orgs x %d peers); its ledgers continue\n", dir, orgs, peers)
	}
	if err := os.MkdirAll(dir, 0o755); err != nil {
		return nil, fmt.Errorf("create %s: %w", dir, err)
	}
	mat, err := identity.Generate(filepath.Join(dir, cryptoDirName), identity.GenerateSpec{Orgs: o.orgs, PeersPerOrg: o.peersPerOrg})
	if err != nil {
		return nil, fmt.Errorf("crypto material: %w", err)
	}
	bundle := filepath.Join(dir, bundleName)
	if err := client.WriteBundle(bundle, mat.Network); err != nil {
		return nil, fmt.Errorf("write %s: %w", bundle, err)
	}
	admin, err := adminCredentials(mat, bundle)
	if err != nil {
		return nil, err
	}
	plan := &netPlan{dir: dir, mat: mat, file: &netctl.File{Admin: admin}, names: map[identity.PKIID]string{}}

	prevAddr := map[string]netctl.Node{}
	if prev != nil {
		for _, n := range prev.Nodes {
			prevAddr[n.Name] = n
		}
	}
	ports := netctl.NewPortAllocator(uint64(time.Now().UnixNano()))
	members := append([]identity.NodePaths{mat.Orderer}, mat.Peers...)
	for _, m := range members {
		role := netctl.RolePeer
		if m.Name == mat.Orderer.Name {
			role = netctl.RoleOrderer
		}
		addr, err := ports.Free(prevAddr[m.Name].Address)
		if err != nil {
			return nil, err
		}
		opsAddr, err := ports.Free(prevAddr[m.Name].Operations)
		if err != nil {
			return nil, err
		}
		nodeDir := filepath.Join(dir, m.Name)
		plan.file.Nodes = append(plan.file.Nodes, netctl.Node{
			Name: m.Name, Role: role, Org: m.Org, Address: addr, Operations: opsAddr,
			Config:    filepath.Join(nodeDir, "config.yaml"),
			LedgerDir: filepath.Join(nodeDir, "ledger"),
			Log:       filepath.Join(nodeDir, "node.log"),
		})
		if id, err := identity.LoadIdentity(m.Cert, m.Key); err == nil {
			plan.names[id.ID] = m.Name
		}
	}
	for i, n := range plan.file.Nodes {
		if err := os.MkdirAll(filepath.Dir(n.Config), 0o755); err != nil {
			return nil, err
		}
		text := nodeConfigText(plan, members[i], n, o)
		if err := os.WriteFile(n.Config, []byte(text), 0o644); err != nil {
			return nil, fmt.Errorf("write %s: %w", n.Config, err)
		}
	}
	return plan, nil
}

// inspectDir accepts a missing or empty DIR (nil), or one written by
// network up (its network.json, possibly empty of nodes if a previous
// start failed early), and refuses anything else.
func inspectDir(dir string, o upOptions) (*netctl.File, error) {
	entries, err := os.ReadDir(dir)
	if errors.Is(err, os.ErrNotExist) {
		return nil, nil
	}
	if err != nil {
		return nil, fmt.Errorf("read %s: %w", dir, err)
	}
	if len(entries) == 0 {
		return nil, nil
	}
	if !slices.ContainsFunc(entries, func(e os.DirEntry) bool { return e.Name() == netctl.FileName }) {
		var names []string
		for _, e := range entries {
			names = append(names, e.Name())
		}
		if len(names) > 5 {
			names = append(names[:5], "...")
		}
		return nil, fmt.Errorf("%w: %s holds %s but no %s; choose an empty or new --dir (default %s)",
			ErrNotANetworkDir, dir, strings.Join(names, ", "), netctl.FileName, defaultNetworkDir)
	}
	prev, err := netctl.Read(dir)
	if err != nil {
		return nil, fmt.Errorf("%w: %v", ErrNotANetworkDir, err)
	}
	allowed := map[string]bool{netctl.FileName: true, cryptoDirName: true, bundleName: true}
	for _, n := range prev.Nodes {
		allowed[n.Name] = true
	}
	for _, e := range entries {
		if !allowed[e.Name()] && !strings.HasPrefix(e.Name(), ".") {
			return nil, fmt.Errorf("%w: %s holds %q, which network up did not write; move it away or choose another --dir", ErrNotANetworkDir, dir, e.Name())
		}
	}
	return prev, nil
}

// shapeOf counts the orgs and peers per org of an existing network.
func shapeOf(f *netctl.File) (orgs, peersPerOrg int) {
	perOrg := map[string]int{}
	for _, n := range f.Nodes {
		if n.Role == netctl.RolePeer {
			perOrg[n.Org]++
		}
	}
	for _, c := range perOrg {
		peersPerOrg = max(peersPerOrg, c)
	}
	return len(perOrg), peersPerOrg
}

// nodeConfigText writes a node's config: only what network up decides;
// every other key keeps its default (see the sample configs). Paths are
// relative to the config file, so the directory can move.
func nodeConfigText(plan *netPlan, m identity.NodePaths, n netctl.Node, o upOptions) string {
	nodeDir := filepath.Dir(n.Config)
	rel := func(p string) string {
		if r, err := filepath.Rel(nodeDir, p); err == nil {
			return r
		}
		return p
	}
	var b strings.Builder
	fmt.Fprintf(&b, "# %s: rewritten by every `blockgossip network up` on this directory; paths are\n# relative to this file. Keys not set here keep their defaults (see sample-%s.yaml).\n", n.Name, n.Role)
	fmt.Fprintf(&b, "# Start by hand with: blockgossip %s start --config %s\n", n.Role, n.Config)
	section := n.Role
	fmt.Fprintf(&b, "%s:\n", section)
	fmt.Fprintf(&b, "  cert: %s\n  key: %s\n  networkDescription: %s\n", rel(m.Cert), rel(m.Key), rel(plan.mat.NetworkPath))
	fmt.Fprintf(&b, "  listenAddress: %s\n  ledgerDir: %s\n", n.Address, rel(n.LedgerDir))
	if n.Role == netctl.RolePeer {
		orderer, _ := plan.file.Orderer()
		fmt.Fprintf(&b, "  orderers: [%s]\n", orderer.Address)
		fmt.Fprintf(&b, "  bootstrap: [%s]\n", strings.Join(bootstrapFor(plan.file, n), ", "))
	}
	if n.Role == netctl.RoleOrderer && o.rate > 0 {
		b.WriteString("ordering:\n  batchmaxtx: 1 # network up --rate: one fed transaction per block\n")
	}
	fmt.Fprintf(&b, "operations:\n  listenAddress: %s\n", n.Operations)
	return b.String()
}

// bootstrapFor picks a peer's bootstrap endpoints: peer0 of every org, and
// peer1 of its own org for a peer0, so nobody bootstraps only to itself and
// membership spreads the rest.
func bootstrapFor(f *netctl.File, self netctl.Node) []string {
	var out []string
	for _, n := range f.Nodes {
		if n.Role != netctl.RolePeer || n.Name == self.Name {
			continue
		}
		if strings.HasSuffix(n.Name, "-peer0") || (n.Org == self.Org && strings.HasSuffix(self.Name, "-peer0") && strings.HasSuffix(n.Name, "-peer1")) {
			out = append(out, n.Address)
		}
	}
	return out
}
