package main

import (
	"bytes"
	"context"
	"encoding/binary"
	"io"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/blockgossip/blockgossip/cmd/internal/config"
	"github.com/blockgossip/blockgossip/cmd/internal/netctl"
	"github.com/blockgossip/blockgossip/cmd/internal/node"
	"github.com/blockgossip/blockgossip/identity"
	"github.com/blockgossip/blockgossip/ledger"
	pb "github.com/blockgossip/blockgossip/protos"
	"github.com/stretchr/testify/require"
	"github.com/syndtr/goleveldb/leveldb"
	"go.uber.org/goleak"
	"go.yaml.in/yaml/v3"
	"google.golang.org/protobuf/proto"
)

// goleveldb leaves its mpoolDrain goroutine behind Close for up to a second (upstream behaviour).
func TestMain(m *testing.M) {
	goleak.VerifyTestMain(m, goleak.IgnoreTopFunction("github.com/syndtr/goleveldb/leveldb.(*DB).mpoolDrain"))
}

// cli runs one command line through the cobra tree, in process.
func cli(t *testing.T, args ...string) (code int, stdout, stderr string) {
	t.Helper()
	var out, errb bytes.Buffer
	code = run(context.Background(), args, &out, &errb)
	return code, out.String(), errb.String()
}

func TestCryptoGenerateEndToEnd(t *testing.T) {
	dir := filepath.Join(t.TempDir(), "crypto")
	code, out, errOut := cli(t, "crypto", "generate", "--orgs", "2", "--peers-per-org", "2", "--out", dir)
	require.Equal(t, 0, code, errOut)
	require.Contains(t, out, "crypto material for 2 orgs x 2 peers")

	nd, err := identity.LoadNetworkDescription(filepath.Join(dir, identity.NetworkFile))
	require.NoError(t, err)
	msp, err := nd.MSP()
	require.NoError(t, err)
	for _, name := range []string{"org1-peer0", "org1-peer1", "org2-peer0", "org2-peer1"} {
		org := strings.Split(name, "-")[0]
		id, err := identity.LoadIdentity(filepath.Join(dir, org, name, "cert.pem"), filepath.Join(dir, org, name, "key.pem"))
		require.NoError(t, err, name)
		require.Equal(t, name, id.Name)
		require.Equal(t, identity.RolePeer, id.Role)
		_, err = msp.Validate(id.CertDER)
		require.NoError(t, err, "%s is a member of the generated network", name)
		require.Contains(t, out, name)
	}
	orderer, err := identity.LoadIdentity(filepath.Join(dir, "ordererorg", "orderer", "cert.pem"), filepath.Join(dir, "ordererorg", "orderer", "key.pem"))
	require.NoError(t, err)
	v, err := nd.OrdererVerifier()
	require.NoError(t, err)
	require.NoError(t, v.VerifyBlockSignature([]byte("h"), orderer.Sign([]byte("h"))), "the generated orderer is the pinned one")

	code, _, errOut = cli(t, "crypto", "generate", "--orgs", "2", "--peers-per-org", "2", "--out", dir)
	require.Equal(t, 0, code, "the same shape again reuses the material: %s", errOut)
	code, _, errOut = cli(t, "crypto", "generate", "--orgs", "3", "--peers-per-org", "2", "--out", dir)
	require.Equal(t, 1, code)
	require.Contains(t, errOut, dir, "the refusal names the directory")
	require.NotContains(t, errOut, "Usage:", "a runtime error prints no usage")
}

func TestUsageErrorsPrintUsageAndExit2(t *testing.T) {
	code, _, errOut := cli(t, "crypto", "generate", "--orgs", "2")
	require.Equal(t, 2, code)
	require.Contains(t, errOut, "--out DIR is required")
	require.Contains(t, errOut, "Usage:")

	code, _, errOut = cli(t, "ledger", "height", "--bogus")
	require.Equal(t, 2, code)
	require.Contains(t, errOut, "unknown flag: --bogus")

	code, _, errOut = cli(t, "peer", "start")
	require.Equal(t, 2, code)
	require.Contains(t, errOut, "--config FILE is required")

	code, _, errOut = cli(t, "submit", "--count", "1")
	require.Equal(t, 2, code)
	require.Contains(t, errOut, "--network DIR")
}

func TestNodeStartReportsConfigProblems(t *testing.T) {
	dir := t.TempDir()
	cfg := filepath.Join(dir, "peer.yaml")
	require.NoError(t, os.WriteFile(cfg, []byte("peer:\n  listenAdress: 127.0.0.1:1\n"), 0o644))
	code, _, errOut := cli(t, "peer", "start", "--config", cfg)
	require.Equal(t, 1, code)
	require.Contains(t, errOut, `unknown key "listenAdress" under peer`)

	require.NoError(t, os.WriteFile(cfg, []byte("peer:\n  listenAddress: 127.0.0.1:1\n"), 0o644))
	code, _, errOut = cli(t, "peer", "start", "--config", cfg)
	require.Equal(t, 1, code)
	for _, want := range []string{"peer.cert is required", "peer.key is required", "peer.networkDescription is required", "peer.orderers is required"} {
		require.Contains(t, errOut, want)
	}

	require.NoError(t, os.WriteFile(cfg, []byte("orderer:\n  cert: c.pem\n  key: k.pem\n  networkDescription: n.json\n"), 0o644))
	code, _, errOut = cli(t, "orderer", "start", "--config", cfg, "--log-level", "loud")
	require.Equal(t, 1, code)
	require.Contains(t, errOut, "log.level")

	code, _, errOut = cli(t, "orderer", "start", "--config", cfg)
	require.Equal(t, 1, code)
	require.Contains(t, errOut, filepath.Join(dir, "c.pem"), "an unreadable cert is named by its resolved path")
}

// sampleKeysPresent checks that the sample file sets every key of the
// configuration.
func sampleKeysPresent(t *testing.T, file string, defaults any) {
	t.Helper()
	raw, err := os.ReadFile(file)
	require.NoError(t, err)
	var doc yaml.Node
	require.NoError(t, yaml.Unmarshal(raw, &doc))
	for _, k := range config.Keys(defaults) {
		n := doc.Content[0]
		for _, p := range strings.Split(k.Path, ".") {
			var next *yaml.Node
			for i := 0; i+1 < len(n.Content); i += 2 {
				if n.Content[i].Value == p {
					next = n.Content[i+1]
				}
			}
			if next == nil {
				t.Errorf("%s does not document %s: add it with its default (`blockgossip config keys` shows it) and a one-line comment", file, k.Path)
				break
			}
			n = next
		}
	}
}

func TestSamplePeerConfigDocumentsEveryKeyWithItsDefault(t *testing.T) {
	want := node.DefaultPeerConfig()
	sampleKeysPresent(t, "sample-peer.yaml", &want)
	got, err := node.LoadPeerConfig("sample-peer.yaml", nil)
	require.NoError(t, err)
	require.NoError(t, got.Validate())
	abs, err := filepath.Abs(".")
	require.NoError(t, err)
	require.Equal(t, filepath.Join(abs, "crypto/org1/org1-peer0/cert.pem"), got.Peer.Cert, "paths resolve against the file's directory")
	require.Equal(t, filepath.Join(abs, "ledger"), got.Peer.LedgerDir)
	// Apart from the required keys (which have no default), the sample's
	// values are the defaults.
	want.Peer.Identity, want.Peer.Orderers, want.Peer.Bootstrap = got.Peer.Identity, got.Peer.Orderers, []string{}
	want.Peer.LedgerDir, want.Peer.IncarnationFile = got.Peer.LedgerDir, got.Peer.IncarnationFile
	require.Equal(t, want, got)
}

func TestSampleOrdererConfigDocumentsEveryKeyWithItsDefault(t *testing.T) {
	want := node.DefaultOrdererConfig()
	sampleKeysPresent(t, "sample-orderer.yaml", &want)
	got, err := node.LoadOrdererConfig("sample-orderer.yaml", nil)
	require.NoError(t, err)
	require.NoError(t, got.Validate())
	want.Orderer.Identity, want.Orderer.LedgerDir = got.Orderer.Identity, got.Orderer.LedgerDir
	require.Equal(t, want, got)
}

func TestNetworkUpRefusesAForeignDirectory(t *testing.T) {
	dir := t.TempDir()
	require.NoError(t, os.WriteFile(filepath.Join(dir, "thesis.tex"), []byte("x"), 0o644))
	code, _, errOut := cli(t, "network", "up", "--dir", dir, "--detach")
	require.Equal(t, 1, code)
	require.Contains(t, errOut, "thesis.tex")
	require.Contains(t, errOut, "choose an empty or new --dir")
	entries, err := os.ReadDir(dir)
	require.NoError(t, err)
	require.Len(t, entries, 1, "nothing was written")

	code, _, errOut = cli(t, "network", "down", "--dir", dir)
	require.Equal(t, 1, code)
	require.Contains(t, errOut, "network.json does not exist")
}

func TestPlanWritesConfigsThatLoad(t *testing.T) {
	dir := filepath.Join(t.TempDir(), "net")
	cmd := newNetworkUpCmd()
	cmd.SetOut(io.Discard)
	plan, err := planNetwork(cmd, dir, upOptions{orgs: 2, peersPerOrg: 2, rate: 2})
	require.NoError(t, err)
	require.NoError(t, plan.file.Validate())
	require.Len(t, plan.file.Nodes, 5)
	require.Len(t, plan.names, 5)
	addrs := map[string]bool{}
	for _, n := range plan.file.Nodes {
		require.False(t, addrs[n.Address] || addrs[n.Operations], "ports are distinct")
		addrs[n.Address], addrs[n.Operations] = true, true
		if n.Role == netctl.RoleOrderer {
			c, err := node.LoadOrdererConfig(n.Config, nil)
			require.NoError(t, err)
			require.NoError(t, c.Validate())
			require.Equal(t, n.Address, c.Orderer.ListenAddress)
			require.Equal(t, n.LedgerDir, c.Orderer.LedgerDir)
			require.Equal(t, 1, c.Ordering.BatchMaxTx, "--rate feeds one transaction per block")
			_, err = identity.LoadIdentity(c.Orderer.Cert, c.Orderer.Key)
			require.NoError(t, err)
			continue
		}
		c, err := node.LoadPeerConfig(n.Config, nil)
		require.NoError(t, err)
		require.NoError(t, c.Validate())
		require.Equal(t, n.Address, c.Peer.ListenAddress)
		require.Equal(t, n.Operations, c.Operations.ListenAddress)
		require.Equal(t, n.LedgerDir, c.Peer.LedgerDir)
		require.NotEmpty(t, c.Peer.Bootstrap, "%s knows someone", n.Name)
		require.NotContains(t, c.Peer.Bootstrap, n.Address, "%s does not bootstrap to itself", n.Name)
		id, err := identity.LoadIdentity(c.Peer.Cert, c.Peer.Key)
		require.NoError(t, err)
		require.Equal(t, n.Name, id.Name)
		require.Equal(t, n.Name, plan.names[id.ID])
	}
	_, err = os.Stat(plan.file.Admin.CA)
	require.NoError(t, err)

	// A directory holding a network (stopped) is reused, with its shape.
	require.NoError(t, plan.file.Write(dir))
	again, err := planNetwork(cmd, dir, upOptions{orgs: 2, peersPerOrg: 2})
	require.NoError(t, err)
	require.Equal(t, plan.file.Names(), again.file.Names())
	require.Equal(t, plan.file.Admin, again.file.Admin)
	require.NoError(t, cmd.Flags().Set("orgs", "3"))
	_, err = planNetwork(cmd, dir, upOptions{orgs: 3, peersPerOrg: 2})
	require.ErrorContains(t, err, "holds a network of 2 orgs x 2 peers, not 3 x 2")
}

func TestLedgerVerifyNamesTheFirstBadBlock(t *testing.T) {
	tmp := t.TempDir()
	mat, err := identity.Generate(filepath.Join(tmp, "crypto"), identity.GenerateSpec{Orgs: 1, PeersPerOrg: 1})
	require.NoError(t, err)
	orderer, err := mat.Orderer.Load()
	require.NoError(t, err)
	v, err := mat.Network.OrdererVerifier()
	require.NoError(t, err)
	ndJSON, err := mat.Network.Marshal()
	require.NoError(t, err)

	dir := filepath.Join(tmp, "ledger")
	store, err := ledger.Open(dir, v)
	require.NoError(t, err)
	prev := []byte(nil)
	for n := range uint64(5) {
		txs := [][]byte{ndJSON}
		if n > 0 {
			txs = [][]byte{[]byte("tx-a"), []byte("tx-b")}
		}
		b := ledger.NewBlock(n, prev, txs, time.Now().UnixNano())
		ledger.SignBlock(b, orderer.Sign)
		require.NoError(t, store.Append(b))
		prev = ledger.HeaderHash(b)
	}
	require.NoError(t, store.Close())

	code, out, errOut := cli(t, "ledger", "verify", "--dir", dir, "--quiet")
	require.Equal(t, 0, code, errOut)
	require.Contains(t, out, "5 blocks, all good")

	// Tamper with block 3's transactions behind the ledger's back.
	db, err := leveldb.OpenFile(dir, nil)
	require.NoError(t, err)
	key := binary.BigEndian.AppendUint64([]byte{'b'}, 3)
	raw, err := db.Get(key, nil)
	require.NoError(t, err)
	var b pb.Block
	require.NoError(t, proto.Unmarshal(raw, &b))
	b.Data.Transactions[0] = []byte("tx-A")
	raw, err = proto.Marshal(&b)
	require.NoError(t, err)
	require.NoError(t, db.Put(key, raw, nil))
	require.NoError(t, db.Close())

	code, _, errOut = cli(t, "ledger", "verify", "--dir", dir, "--quiet")
	require.Equal(t, 1, code)
	require.Contains(t, errOut, "block 3 is bad")
	require.Contains(t, errOut, "the 3 blocks before it are good")

	code, _, errOut = cli(t, "ledger", "verify", "--dir", filepath.Join(tmp, "nothing"))
	require.Equal(t, 1, code)
	require.NotEmpty(t, errOut)
}

func TestJoinNumbers(t *testing.T) {
	require.Equal(t, "1-3, 5, 7-8", joinNumbers([]uint64{1, 2, 3, 5, 7, 8}))
	require.Equal(t, "", joinNumbers(nil))
}

func TestConfigKeysListsEnvNamesAndDefaults(t *testing.T) {
	code, out, errOut := cli(t, "config", "keys", "--role", "peer")
	require.Equal(t, 0, code, errOut)
	require.Regexp(t, `peer\.listenAddress\s+BLOCKGOSSIP_PEER_LISTENADDRESS\s+127\.0\.0\.1:7051`, out)
	require.Regexp(t, `gossip\.tickinterval\s+BLOCKGOSSIP_GOSSIP_TICKINTERVAL\s+100ms`, out)
	code, out, _ = cli(t, "config", "keys", "--role", "orderer")
	require.Equal(t, 0, code)
	require.Regexp(t, `ordering\.batchtimeout\s+BLOCKGOSSIP_ORDERING_BATCHTIMEOUT\s+200ms`, out)
	code, _, _ = cli(t, "config", "keys", "--role", "bard")
	require.Equal(t, 2, code)
}

// A profile run writes the CPU and heap profiles it is asked for, as
// gzipped pprof files, and still prints its result.
func TestBenchChildWritesProfiles(t *testing.T) {
	dir := t.TempDir()
	cpu, heap := filepath.Join(dir, "cpu", "run.pprof"), filepath.Join(dir, "heap", "run-heap.pprof")
	code, out, errOut := cli(t, "bench", "--child-profile", "default", "--transport", "mem",
		"--peers", "3", "--blocks", "2", "--block-size", "1024", "--rate", "0", "--warmup-blocks", "0",
		"--cpuprofile", cpu, "--memprofile", heap)
	require.Equal(t, 0, code, errOut)
	require.Contains(t, out, `"profile":"default"`)
	require.NotContains(t, errOut, "profile:", "no profile failed")
	for _, path := range []string{cpu, heap} {
		b, err := os.ReadFile(path)
		require.NoError(t, err)
		require.Greater(t, len(b), 2, path)
		require.Equal(t, []byte{0x1f, 0x8b}, b[:2], "%s: a pprof profile is gzipped", path)
	}
}
