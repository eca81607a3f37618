package identity

import (
	"encoding/json"
	"errors"
	"fmt"
	"strings"
	"sync"
	"testing"
)

var (
	bundleOnce sync.Once
	bundle     *Bundle
	bundleErr  error
)

// testBundle is one 2-org x 2-peer network shared by the tests that only
// read it (making one costs a few dozen key generations).
func testBundle(t testing.TB) *Bundle {
	t.Helper()
	bundleOnce.Do(func() { bundle, bundleErr = NewBundle(GenerateSpec{Orgs: 2, PeersPerOrg: 2}) })
	if bundleErr != nil {
		t.Fatal(bundleErr)
	}
	return bundle
}

func TestBundleShape(t *testing.T) {
	b := testBundle(t)
	var names []string
	for _, p := range b.Peers {
		names = append(names, p.Name)
	}
	if got := strings.Join(names, " "); got != "org1-peer0 org1-peer1 org2-peer0 org2-peer1" {
		t.Fatalf("peers %q, want org-major order", got)
	}
	m, err := b.MSP()
	if err != nil {
		t.Fatal(err)
	}
	if got := fmt.Sprint(m.Orgs()); got != "[ordererorg org1 org2]" {
		t.Fatalf("orgs %s", got)
	}
	all := append([]*Identity{b.Orderer, b.Admins[OrdererOrg], b.Admins["org2"], b.Clients["org1"]}, b.Peers...)
	for _, id := range all {
		mem, err := m.Validate(id.CertDER)
		if err != nil || mem.Role != id.Role || mem.Org != id.Org {
			t.Fatalf("%s: member %+v, err %v", id.Name, mem, err)
		}
	}
	if b.Orderer.Role != RoleOrderer || b.Admins["org1"].Name != "org1-admin" || b.Clients["org2"].Role != RoleClient {
		t.Fatal("roles or names wrong")
	}
}

func TestNetworkDescriptionRoundTrip(t *testing.T) {
	b := testBundle(t)
	n := *b.Network
	n.Revoked = []string{b.Peers[3].Cert.SerialNumber.Text(16)}
	raw, err := n.Marshal()
	if err != nil {
		t.Fatal(err)
	}
	back, err := ParseNetworkDescription(raw)
	if err != nil {
		t.Fatal(err)
	}
	m, err := back.MSP()
	if err != nil {
		t.Fatal(err)
	}
	if _, err := m.Validate(b.Peers[0].CertDER); err != nil {
		t.Fatal(err)
	}
	if _, err := m.Validate(b.Peers[3].CertDER); !errors.Is(err, ErrRevoked) {
		t.Fatalf("revoked via description: %v", err)
	}
	v, err := back.OrdererVerifier()
	if err != nil {
		t.Fatal(err)
	}
	header := []byte("header bytes")
	if err := v.VerifyBlockSignature(header, b.Orderer.Sign(header)); err != nil {
		t.Fatal(err)
	}
	if err := v.VerifyBlockSignature([]byte("other header"), b.Orderer.Sign(header)); !errors.Is(err, ErrBadSignature) {
		t.Fatalf("tampered header: %v", err)
	}
	if err := v.VerifyBlockSignature(header, b.Peers[0].Sign(header)); !errors.Is(err, ErrBadSignature) {
		t.Fatalf("peer-signed header: %v", err)
	}
	if err := (OrdererVerifier{}).VerifyBlockSignature(header, nil); err == nil {
		t.Fatal("zero verifier accepted a block")
	}
}

func TestParseNetworkDescriptionRejects(t *testing.T) {
	b := testBundle(t)
	edit := func(f func(n *NetworkDescription)) []byte {
		n := *b.Network
		n.Orgs = append([]OrgDescription(nil), n.Orgs...)
		f(&n)
		raw, err := json.Marshal(n)
		if err != nil {
			t.Fatal(err)
		}
		return raw
	}
	for name, raw := range map[string][]byte{
		"not JSON":           []byte("{"),
		"wrong shape":        []byte(`{"orgs": 3}`),
		"no orgs":            edit(func(n *NetworkDescription) { n.Orgs = nil }),
		"duplicate org":      edit(func(n *NetworkDescription) { n.Orgs = append(n.Orgs, n.Orgs[1]) }),
		"unnamed org":        edit(func(n *NetworkDescription) { n.Orgs[1].Name = "" }),
		"bad CA PEM":         edit(func(n *NetworkDescription) { n.Orgs[1].CACertPEM = "junk" }),
		"CA under wrong org": edit(func(n *NetworkDescription) { n.Orgs[1].Name = "orgX" }),
		"orderer org absent": edit(func(n *NetworkDescription) { n.OrdererOrg = "nope" }),
		"orderer not pinned": edit(func(n *NetworkDescription) { n.OrdererCertPEM = "" }),
		"peer as orderer":    edit(func(n *NetworkDescription) { n.OrdererCertPEM = string(b.Peers[0].CertPEM()) }),
		"orderer org's admin": edit(func(n *NetworkDescription) {
			n.OrdererCertPEM = string(b.Admins[OrdererOrg].CertPEM())
		}),
		"bad serial": edit(func(n *NetworkDescription) { n.Revoked = []string{"xyz"} }),
	} {
		if _, err := ParseNetworkDescription(raw); !errors.Is(err, ErrBadNetwork) {
			t.Errorf("%s: err = %v, want ErrBadNetwork", name, err)
		}
	}
}
