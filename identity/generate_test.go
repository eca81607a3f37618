package identity

import (
	"errors"
	"io/fs"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"
)

func TestGenerateTreeAndModes(t *testing.T) {
	dir := filepath.Join(t.TempDir(), "crypto", "net") // nested, not yet there
	mat, err := Generate(dir, GenerateSpec{Orgs: 2, PeersPerOrg: 2})
	if err != nil {
		t.Fatal(err)
	}
	modes := map[string]fs.FileMode{}
	err = filepath.WalkDir(dir, func(p string, d fs.DirEntry, err error) error {
		if err != nil {
			return err
		}
		info, err := d.Info()
		rel, _ := filepath.Rel(dir, p)
		modes[filepath.ToSlash(rel)] = info.Mode()
		return err
	})
	if err != nil {
		t.Fatal(err)
	}
	want := map[string]fs.FileMode{
		"network-description.json": 0o644,
		"org1":                     fs.ModeDir | 0o755,
		"org1/ca":                  fs.ModeDir | 0o700,
		"org1/ca/ca.crt":           0o644,
		"org1/ca/ca.key":           0o600,
		"ordererorg/ca/ca.key":     0o600,
	}
	for _, node := range []string{"org1/org1-peer0", "org1/org1-peer1", "org2/org2-peer1", "org1/org1-admin",
		"org2/org2-client", "ordererorg/orderer", "ordererorg/ordererorg-admin"} {
		want[node] = fs.ModeDir | 0o700
		want[node+"/cert.pem"] = 0o644
		want[node+"/ca.crt"] = 0o644
		want[node+"/key.pem"] = 0o600
	}
	for p, m := range want {
		if modes[p] != m {
			t.Errorf("%s: mode %v, want %v", p, modes[p], m)
		}
	}
	// root + json + 3 orgs x (org dir, ca dir, 2 CA files) + 10 nodes x 4 entries.
	if len(modes) != 1+1+3*4+10*4 {
		t.Errorf("%d entries in the tree, want 54: %v", len(modes), modes)
	}
	if _, err := os.Stat(filepath.Join(dir, "ordererorg", "ordererorg-client")); err == nil {
		t.Error("ordererorg has a client; it should have only an admin and the orderer")
	}
	if mat.NetworkPath != filepath.Join(dir, NetworkFile) || !filepath.IsAbs(mat.Orderer.Cert) {
		t.Fatalf("paths not absolute: %+v", mat)
	}
}

func TestGenerateRoundTrip(t *testing.T) {
	dir := t.TempDir() // exists and is empty
	mat, err := Generate(dir, GenerateSpec{Orgs: 1, PeersPerOrg: 2})
	if err != nil {
		t.Fatal(err)
	}
	n, err := LoadNetworkDescription(mat.NetworkPath)
	if err != nil {
		t.Fatal(err)
	}
	m, err := n.MSP()
	if err != nil {
		t.Fatal(err)
	}
	v, err := n.OrdererVerifier()
	if err != nil {
		t.Fatal(err)
	}
	nodes := append([]NodePaths{mat.Orderer, mat.Admins[OrdererOrg], mat.Admins["org1"], mat.Clients["org1"]}, mat.Peers...)
	for _, p := range nodes {
		id, err := p.Load()
		if err != nil {
			t.Fatal(err)
		}
		if id.Name != p.Name || id.Org != p.Org {
			t.Fatalf("%s loaded as %s of %s", p.Name, id.Name, id.Org)
		}
		if _, err := m.VerifySignature(id.CertDER, []byte("x"), id.Sign([]byte("x"))); err != nil {
			t.Fatalf("%s: %v", p.Name, err)
		}
		ca, err := os.ReadFile(p.CA)
		if err != nil || string(ca) != n.Orgs[orgIndex(n, p.Org)].CACertPEM {
			t.Fatalf("%s: ca.crt differs from the description's CA (%v)", p.Name, err)
		}
	}
	orderer, _ := mat.Orderer.Load()
	// Real material is not backdated like in-memory test bundles.
	if age := time.Since(orderer.Cert.NotBefore); age < 0 || age > time.Hour {
		t.Fatalf("generated cert NotBefore %v is not just before now", orderer.Cert.NotBefore)
	}
	if err := v.VerifyBlockSignature([]byte("h"), orderer.Sign([]byte("h"))); err != nil {
		t.Fatal(err)
	}
}

func orgIndex(n *NetworkDescription, org string) int {
	for i, o := range n.Orgs {
		if o.Name == org {
			return i
		}
	}
	return -1
}

func TestGenerateNeverOverwrites(t *testing.T) {
	dir := t.TempDir()
	first, err := Generate(dir, GenerateSpec{Orgs: 1, PeersPerOrg: 1})
	if err != nil {
		t.Fatal(err)
	}
	again, err := Generate(dir, GenerateSpec{Orgs: 1, PeersPerOrg: 1})
	if err != nil {
		t.Fatalf("same shape again: %v", err)
	}
	if again.Network.OrdererCertPEM != first.Network.OrdererCertPEM {
		t.Fatal("same-shape Generate replaced the material instead of returning it")
	}
	for _, spec := range []GenerateSpec{{Orgs: 2, PeersPerOrg: 1}, {Orgs: 1, PeersPerOrg: 2}} {
		_, err := Generate(dir, spec)
		if !errors.Is(err, ErrMaterialExists) || !strings.Contains(err.Error(), dir) {
			t.Fatalf("different shape %+v: %v, want ErrMaterialExists naming %s", spec, err, dir)
		}
	}
	after, err := LoadNetworkDescription(first.NetworkPath)
	if err != nil || after.OrdererCertPEM != first.Network.OrdererCertPEM {
		t.Fatalf("material changed after refused Generate: %v", err)
	}

	other := t.TempDir()
	if err := os.WriteFile(filepath.Join(other, "notes.txt"), []byte("mine"), 0o644); err != nil {
		t.Fatal(err)
	}
	if _, err := Generate(other, GenerateSpec{Orgs: 1, PeersPerOrg: 1}); !errors.Is(err, ErrMaterialExists) {
		t.Fatalf("unrelated non-empty dir: %v", err)
	}
	if _, err := Generate(t.TempDir(), GenerateSpec{Orgs: 0, PeersPerOrg: 1}); err == nil {
		t.Fatal("0 orgs accepted")
	}
}

func TestLoadIdentityErrors(t *testing.T) {
	mat, err := Generate(t.TempDir(), GenerateSpec{Orgs: 1, PeersPerOrg: 2})
	if err != nil {
		t.Fatal(err)
	}
	p0, p1 := mat.Peers[0], mat.Peers[1]
	missing := filepath.Join(t.TempDir(), "nope.pem")
	if _, err := LoadIdentity(missing, p0.Key); err == nil || !strings.Contains(err.Error(), missing) {
		t.Fatalf("missing cert: %v, want an error naming %s", err, missing)
	}
	if _, err := LoadIdentity(p0.Cert, p1.Key); !errors.Is(err, ErrKeyMismatch) {
		t.Fatalf("other node's key: %v", err)
	}
	if _, err := LoadIdentity(p0.Cert, p0.Cert); !errors.Is(err, ErrBadPEM) {
		t.Fatalf("cert as key: %v", err)
	}
	if _, err := LoadNetworkDescription(p0.Cert); !errors.Is(err, ErrBadNetwork) {
		t.Fatalf("cert as network description: %v", err)
	}
}

// TestOpenSSLReadsEd25519 checks that generated certificates are standard
// enough for openssl to parse and see as ED25519.
func TestOpenSSLReadsEd25519(t *testing.T) {
	openssl, err := exec.LookPath("openssl")
	if err != nil {
		t.Skip("openssl not on PATH; cannot cross-check the certificates with another implementation")
	}
	mat, err := Generate(t.TempDir(), GenerateSpec{Orgs: 1, PeersPerOrg: 1})
	if err != nil {
		t.Fatal(err)
	}
	for _, path := range []string{mat.Peers[0].Cert, mat.Peers[0].CA, mat.Orderer.Cert} {
		out, err := exec.Command(openssl, "x509", "-noout", "-text", "-in", path).CombinedOutput()
		if err != nil {
			t.Fatalf("openssl on %s: %v\n%s", path, err, out)
		}
		if !strings.Contains(string(out), "Public Key Algorithm: ED25519") ||
			!strings.Contains(string(out), "Signature Algorithm: ED25519") {
			t.Fatalf("openssl does not see %s as ED25519:\n%s", path, out)
		}
	}
	out, err := exec.Command(openssl, "pkey", "-noout", "-text", "-in", mat.Peers[0].Key).CombinedOutput()
	if err != nil || !strings.Contains(string(out), "ED25519 Private-Key") {
		t.Fatalf("openssl pkey: %v\n%s", err, out)
	}
}
