package client

import (
	"os"
	"path/filepath"
	"testing"

	"github.com/blockgossip/blockgossip/identity"
	"github.com/stretchr/testify/require"
	"go.uber.org/goleak"
)

func TestMain(m *testing.M) { goleak.VerifyTestMain(m) }

func TestTrustFromBundleOrNetworkDescription(t *testing.T) {
	b, err := identity.NewBundle(identity.GenerateSpec{Orgs: 2, PeersPerOrg: 1})
	require.NoError(t, err)
	dir := t.TempDir()
	bundle := filepath.Join(dir, "ca-bundle.pem")
	require.NoError(t, WriteBundle(bundle, b.Network))
	nd, err := b.Network.Marshal()
	require.NoError(t, err)
	ndPath := filepath.Join(dir, "network-description.json")
	require.NoError(t, os.WriteFile(ndPath, nd, 0o644))

	for _, path := range []string{bundle, ndPath} {
		msp, err := LoadTrust(path)
		require.NoError(t, err, path)
		require.ElementsMatch(t, []string{"org1", "org2", identity.OrdererOrg}, msp.Orgs(), path)
		_, err = msp.Validate(b.Orderer.CertDER)
		require.NoError(t, err, "the orderer is trusted through %s", path)
		_, err = msp.Validate(b.Peers[1].CertDER)
		require.NoError(t, err)
	}

	foreign, err := identity.NewBundle(identity.GenerateSpec{Orgs: 1, PeersPerOrg: 1})
	require.NoError(t, err)
	msp, err := LoadTrust(bundle)
	require.NoError(t, err)
	_, err = msp.Validate(foreign.Peers[0].CertDER)
	require.ErrorIs(t, err, identity.ErrUnknownCA, "another network's member is not trusted")
}

func TestCredentialErrorsSayWhatIsMissing(t *testing.T) {
	err := Credentials{Cert: "c", CA: "a"}.Validate()
	require.ErrorIs(t, err, ErrCredentials)
	require.ErrorContains(t, err, "--key is required")

	dir := t.TempDir()
	empty := filepath.Join(dir, "empty.pem")
	require.NoError(t, os.WriteFile(empty, []byte("nothing here"), 0o644))
	_, err = LoadTrust(empty)
	require.ErrorContains(t, err, "holds no PEM certificate")
	_, err = LoadTrust(filepath.Join(dir, "missing.pem"))
	require.ErrorContains(t, err, "missing.pem")
	_, _, err = Credentials{Cert: filepath.Join(dir, "c.pem"), Key: filepath.Join(dir, "k.pem"), CA: empty}.Load()
	require.ErrorContains(t, err, "c.pem")
}
