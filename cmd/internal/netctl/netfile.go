// Package netctl manages a local blockgossip network on one machine: the
// network.json file that describes it, free ports, and the node processes
// (start with their own session so they outlive a detached parent, wait
// for their health checks, stop with SIGTERM then SIGKILL).
package netctl

import (
	"encoding/json"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"slices"
	"strings"
)

// FileName is the network description `network up` writes in its directory.
const FileName = "network.json"

// Roles of a node in network.json.
const (
	RoleOrderer = "orderer"
	RolePeer    = "peer"
)

// File is network.json: every node of a local network and the admin
// credentials that talk to them. All paths are absolute.
type File struct {
	Nodes []Node `json:"nodes"`
	Admin Admin  `json:"admin"`
}

// Node is one process of the network.
type Node struct {
	Name       string `json:"name"`
	Role       string `json:"role"` // RoleOrderer or RolePeer
	Org        string `json:"org"`
	Address    string `json:"address"`    // gRPC host:port
	Operations string `json:"operations"` // operations HTTP host:port
	Config     string `json:"config"`
	LedgerDir  string `json:"ledger_dir"`
	Log        string `json:"log"`
	PID        int    `json:"pid"`
}

// Admin is the identity scripts use to submit and query: a member
// certificate and key, and a PEM bundle of every org's CA certificate.
type Admin struct {
	Cert string `json:"cert"`
	Key  string `json:"key"`
	CA   string `json:"ca"`
}

// ErrNoNetwork means the directory holds no network.json.
var ErrNoNetwork = errors.New("no network here")

// Read loads DIR/network.json.
func Read(dir string) (*File, error) {
	p := filepath.Join(dir, FileName)
	raw, err := os.ReadFile(p)
	if errors.Is(err, os.ErrNotExist) {
		return nil, fmt.Errorf("%w: %s does not exist (start one with `blockgossip network up --dir %s`)", ErrNoNetwork, p, dir)
	}
	if err != nil {
		return nil, fmt.Errorf("read %s: %w", p, err)
	}
	var f File
	if err := json.Unmarshal(raw, &f); err != nil {
		return nil, fmt.Errorf("%s is not a valid network file: %v (remove the directory and run network up again)", p, err)
	}
	if err := f.Validate(); err != nil {
		return nil, fmt.Errorf("%s: %w", p, err)
	}
	return &f, nil
}

// Validate checks the invariants network up guarantees: unique names,
// known roles, absolute paths.
func (f *File) Validate() error {
	seen := map[string]bool{}
	for _, n := range f.Nodes {
		if n.Name == "" || seen[n.Name] {
			return fmt.Errorf("node name %q is empty or repeated", n.Name)
		}
		seen[n.Name] = true
		if n.Role != RoleOrderer && n.Role != RolePeer {
			return fmt.Errorf("node %s has role %q, want %q or %q", n.Name, n.Role, RoleOrderer, RolePeer)
		}
		for _, p := range []string{n.Config, n.LedgerDir, n.Log} {
			if !filepath.IsAbs(p) {
				return fmt.Errorf("node %s: path %q is not absolute", n.Name, p)
			}
		}
	}
	return nil
}

// Write stores f as DIR/network.json atomically (temp file, then rename),
// so a reader never sees half a file.
func (f *File) Write(dir string) error {
	if err := f.Validate(); err != nil {
		return err
	}
	raw, err := json.MarshalIndent(f, "", "  ")
	if err != nil {
		return err
	}
	tmp, err := os.CreateTemp(dir, ".network-*.json")
	if err != nil {
		return fmt.Errorf("write network file in %s: %w", dir, err)
	}
	defer os.Remove(tmp.Name()) // after a successful rename this is a no-op
	if _, err := tmp.Write(append(raw, '\n')); err != nil {
		tmp.Close()
		return fmt.Errorf("write %s: %w", tmp.Name(), err)
	}
	if err := tmp.Close(); err != nil {
		return err
	}
	if err := os.Chmod(tmp.Name(), 0o644); err != nil {
		return err
	}
	return os.Rename(tmp.Name(), filepath.Join(dir, FileName))
}

// ErrUnknownNode means a name is not in network.json.
var ErrUnknownNode = errors.New("unknown node")

// Node returns the node called name; the error lists the names there are.
func (f *File) Node(name string) (Node, error) {
	for _, n := range f.Nodes {
		if n.Name == name {
			return n, nil
		}
	}
	return Node{}, fmt.Errorf("%w %q: this network has %s", ErrUnknownNode, name, strings.Join(f.Names(), ", "))
}

// Names lists the node names in file order.
func (f *File) Names() []string {
	names := make([]string, 0, len(f.Nodes))
	for _, n := range f.Nodes {
		names = append(names, n.Name)
	}
	return names
}

// Orderer returns the orderer node.
func (f *File) Orderer() (Node, error) {
	i := slices.IndexFunc(f.Nodes, func(n Node) bool { return n.Role == RoleOrderer })
	if i < 0 {
		return Node{}, fmt.Errorf("%w: the network file lists no orderer", ErrUnknownNode)
	}
	return f.Nodes[i], nil
}
