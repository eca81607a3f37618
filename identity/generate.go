package identity

import (
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"slices"
	"time"
)

// NetworkFile is the network description's file name inside a material dir.
const NetworkFile = "network-description.json"

// ErrMaterialExists is returned by Generate for a directory that already
// holds something other than material of the same shape.
var ErrMaterialExists = errors.New("directory already holds other files or different crypto material: remove it or choose another directory")

// NodePaths locates one member's files (absolute paths).
type NodePaths struct {
	Name, Org string
	Cert, Key string // cert.pem, key.pem
	CA        string // copy of the org CA certificate
}

// Load reads the member's identity.
func (p NodePaths) Load() (*Identity, error) { return LoadIdentity(p.Cert, p.Key) }

// Material is the crypto material Generate wrote (or found) in Dir.
type Material struct {
	Dir         string
	Network     *NetworkDescription
	NetworkPath string // Dir/network-description.json
	Orderer     NodePaths
	Peers       []NodePaths          // org-major order
	Admins      map[string]NodePaths // org name -> admin, incl. ordererorg
	Clients     map[string]NodePaths // peer org name -> client
}

// Generate writes a network's crypto material to dir in the layout the
// package documentation describes. dir may be missing or empty. If dir
// already holds material of the same shape (same orgs and peers), Generate
// loads and returns it without writing; any other content makes it fail
// with ErrMaterialExists, so nothing is ever overwritten.
func Generate(dir string, spec GenerateSpec) (*Material, error) {
	abs, err := filepath.Abs(dir)
	if err != nil {
		return nil, fmt.Errorf("generate in %s: %w", dir, err)
	}
	spec, err = spec.withDefaults()
	if err != nil {
		return nil, err
	}
	// Valid from five minutes ago, to tolerate clock skew between hosts.
	notBefore := time.Now().Add(-5 * time.Minute).Truncate(time.Second)
	b, err := newBundle(spec, notBefore, notBefore.Add(spec.Validity))
	if err != nil {
		return nil, err
	}
	mat, expected := layout(abs, b)
	entries, err := os.ReadDir(abs)
	switch {
	case errors.Is(err, os.ErrNotExist) || (err == nil && len(entries) == 0):
	case err != nil:
		return nil, fmt.Errorf("generate in %s: %w", abs, err)
	default:
		return existing(mat, expected)
	}
	if err := write(mat, b); err != nil {
		return nil, fmt.Errorf("generate in %s: %w (remove the directory before retrying)", abs, err)
	}
	return mat, nil
}

// layout computes where each file goes, and the entries each directory
// should hold when done.
func layout(dir string, b *Bundle) (*Material, map[string][]string) {
	mat := &Material{
		Dir: dir, Network: b.Network, NetworkPath: filepath.Join(dir, NetworkFile),
		Admins: map[string]NodePaths{}, Clients: map[string]NodePaths{},
	}
	expected := map[string][]string{dir: {NetworkFile}}
	node := func(id *Identity) NodePaths {
		d := filepath.Join(dir, id.Org, id.Name)
		expected[filepath.Join(dir, id.Org)] = append(expected[filepath.Join(dir, id.Org)], id.Name)
		expected[d] = []string{"ca.crt", "cert.pem", "key.pem"}
		return NodePaths{Name: id.Name, Org: id.Org, Cert: filepath.Join(d, "cert.pem"),
			Key: filepath.Join(d, "key.pem"), CA: filepath.Join(d, "ca.crt")}
	}
	for _, o := range b.Network.Orgs {
		expected[dir] = append(expected[dir], o.Name)
		expected[filepath.Join(dir, o.Name)] = []string{"ca"}
		expected[filepath.Join(dir, o.Name, "ca")] = []string{"ca.crt", "ca.key"}
		mat.Admins[o.Name] = node(b.Admins[o.Name])
		if c := b.Clients[o.Name]; c != nil {
			mat.Clients[o.Name] = node(c)
		}
	}
	mat.Orderer = node(b.Orderer)
	for _, p := range b.Peers {
		mat.Peers = append(mat.Peers, node(p))
	}
	return mat, expected
}

// existing returns the material already in mat.Dir if it has exactly the
// expected shape, and ErrMaterialExists otherwise.
func existing(mat *Material, expected map[string][]string) (*Material, error) {
	for d, want := range expected {
		entries, err := os.ReadDir(d)
		if err != nil {
			return nil, fmt.Errorf("%s: %w (%v)", mat.Dir, ErrMaterialExists, err)
		}
		var got []string
		for _, e := range entries {
			got = append(got, e.Name())
		}
		slices.Sort(got)
		if !slices.Equal(got, slices.Sorted(slices.Values(want))) {
			return nil, fmt.Errorf("%s: %w (%s holds %v, want %v)", mat.Dir, ErrMaterialExists, d, got, want)
		}
	}
	n, err := LoadNetworkDescription(mat.NetworkPath)
	if err != nil {
		return nil, fmt.Errorf("%s: %w (%v)", mat.Dir, ErrMaterialExists, err)
	}
	mat.Network = n
	return mat, nil
}

// write creates the directories and files; it never replaces a file.
func write(mat *Material, b *Bundle) error {
	if err := os.MkdirAll(mat.Dir, 0o755); err != nil {
		return err
	}
	for org, ca := range b.CAs {
		caDir := filepath.Join(mat.Dir, org, "ca")
		if err := os.MkdirAll(caDir, 0o700); err != nil {
			return err
		}
		if err := os.Chmod(filepath.Join(mat.Dir, org), 0o755); err != nil {
			return err
		}
		if err := writeNew(filepath.Join(caDir, "ca.crt"), ca.CertPEM(), 0o644); err != nil {
			return err
		}
		key, err := keyPEM(ca.Key)
		if err != nil {
			return err
		}
		if err := writeNew(filepath.Join(caDir, "ca.key"), key, 0o600); err != nil {
			return err
		}
	}
	ids := append([]*Identity{b.Orderer}, b.Peers...)
	for _, m := range []map[string]*Identity{b.Admins, b.Clients} {
		for _, id := range m {
			ids = append(ids, id)
		}
	}
	for _, id := range ids {
		if err := writeNode(filepath.Join(mat.Dir, id.Org, id.Name), id, b.CAs[id.Org]); err != nil {
			return err
		}
	}
	nd, err := b.Network.Marshal()
	if err != nil {
		return err
	}
	// Written last: its presence marks the material complete.
	return writeNew(mat.NetworkPath, nd, 0o644)
}

func writeNode(dir string, id *Identity, ca *CA) error {
	if err := os.Mkdir(dir, 0o700); err != nil {
		return err
	}
	key, err := id.KeyPEM()
	if err != nil {
		return err
	}
	if err := writeNew(filepath.Join(dir, "cert.pem"), id.CertPEM(), 0o644); err != nil {
		return err
	}
	if err := writeNew(filepath.Join(dir, "ca.crt"), ca.CertPEM(), 0o644); err != nil {
		return err
	}
	return writeNew(filepath.Join(dir, "key.pem"), key, 0o600)
}

// writeNew creates path with mode and content; it fails if path exists.
func writeNew(path string, content []byte, mode os.FileMode) error {
	f, err := os.OpenFile(path, os.O_WRONLY|os.O_CREATE|os.O_EXCL, mode)
	if err != nil {
		return err
	}
	if _, err := f.Write(content); err != nil {
		f.Close()
		return err
	}
	return f.Close()
}
