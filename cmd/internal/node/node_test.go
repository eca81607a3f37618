package node

import (
	"context"
	"fmt"
	"io"
	"log/slog"
	"net"
	"net/http"
	"os"
	"path/filepath"
	"testing"
	"time"

	"github.com/blockgossip/blockgossip/cmd/internal/client"
	"github.com/blockgossip/blockgossip/cmd/internal/config"
	"github.com/blockgossip/blockgossip/cmd/internal/netctl"
	"github.com/blockgossip/blockgossip/identity"
	pb "github.com/blockgossip/blockgossip/protos"
	"github.com/stretchr/testify/require"
	"go.uber.org/goleak"
)

func TestMain(m *testing.M) {
	// goleveldb's mpoolDrain outlives DB.Close briefly (upstream behaviour).
	goleak.VerifyTestMain(m, goleak.IgnoreTopFunction("github.com/syndtr/goleveldb/leveldb.(*DB).mpoolDrain"))
}

func writeFile(t *testing.T, path, text string) string {
	t.Helper()
	require.NoError(t, os.MkdirAll(filepath.Dir(path), 0o755))
	require.NoError(t, os.WriteFile(path, []byte(text), 0o644))
	return path
}

func TestPeerConfigLayersFileEnvAndResolvesPaths(t *testing.T) {
	dir := t.TempDir()
	cfg := writeFile(t, filepath.Join(dir, "node", "peer.yaml"), `
peer:
  cert: ../crypto/cert.pem
  key: /abs/key.pem
  networkDescription: ../crypto/nd.json
  orderers: [127.0.0.1:7050]
gossip:
  fanout: 6
`)
	env := []string{"BLOCKGOSSIP_PEER_LISTENADDRESS=127.0.0.1:9999", "BLOCKGOSSIP_GOSSIP_PULL_PULLPEERS=5", "BLOCKGOSSIP_PEER_BOOTSTRAP=a:1,b:2"}
	t.Chdir(t.TempDir()) // paths must not depend on the working directory
	c, err := LoadPeerConfig(cfg, env)
	require.NoError(t, err)
	require.NoError(t, c.Validate())
	require.Equal(t, filepath.Join(dir, "crypto", "cert.pem"), c.Peer.Cert)
	require.Equal(t, "/abs/key.pem", c.Peer.Key)
	require.Equal(t, filepath.Join(dir, "node", "ledger"), c.Peer.LedgerDir, "the default ledger sits beside the config")
	require.Equal(t, filepath.Join(dir, "node", "incarnation"), c.Peer.IncarnationFile)
	require.Equal(t, "127.0.0.1:9999", c.Peer.ListenAddress)
	require.Equal(t, []string{"a:1", "b:2"}, c.Peer.Bootstrap)
	require.Equal(t, 6, c.Gossip.Fanout)
	require.Equal(t, 5, c.Gossip.Pull.PullPeers)

	_, err = LoadPeerConfig(cfg, []string{"BLOCKGOSSIP_GOSSIP_FANOUT=many"})
	require.ErrorIs(t, err, config.ErrInvalid)
}

func TestPeerConfigFabricProfile(t *testing.T) {
	cfg := writeFile(t, filepath.Join(t.TempDir(), "p.yaml"), "peer:\n  profile: fabric\ngossip:\n  maxhops: 9\n")
	c, err := LoadPeerConfig(cfg, nil)
	require.NoError(t, err)
	require.Equal(t, 3, c.Gossip.Fanout, "fabric pushes to 3")
	require.Equal(t, 9, c.Gossip.MaxHops, "the file still overrides the profile")

	cfg = writeFile(t, filepath.Join(t.TempDir(), "p.yaml"), "peer:\n  profile: turbo\n")
	_, err = LoadPeerConfig(cfg, nil)
	require.ErrorContains(t, err, `peer.profile is "turbo"`)
}

func TestConfigValidationNamesEveryProblem(t *testing.T) {
	c := DefaultPeerConfig()
	c.Peer.Bootstrap = []string{"nohostport"}
	c.Log.Format = "xml"
	err := c.Validate()
	for _, want := range []string{"peer.cert is required", "BLOCKGOSSIP_PEER_CERT", "peer.orderers is required", `"nohostport"`, "log.format"} {
		require.ErrorContains(t, err, want)
	}
	o := DefaultOrdererConfig()
	o.Ordering.BatchMaxTx = 0
	err = o.Validate()
	require.ErrorContains(t, err, "orderer.key is required")
	require.ErrorContains(t, err, "ordering:")
}

// testNet is crypto material and free ports for in-process nodes.
type testNet struct {
	mat   *identity.Material
	dir   string
	ports *netctl.PortAllocator
}

func newTestNet(t *testing.T, orgs, peers int) *testNet {
	dir := t.TempDir()
	mat, err := identity.Generate(filepath.Join(dir, "crypto"), identity.GenerateSpec{Orgs: orgs, PeersPerOrg: peers})
	require.NoError(t, err)
	return &testNet{mat: mat, dir: dir, ports: netctl.NewPortAllocator(uint64(time.Now().UnixNano()))}
}

func (n *testNet) port(t *testing.T) string {
	p, err := n.ports.Free("")
	require.NoError(t, err)
	return p
}

func (n *testNet) ordererConfig(t *testing.T) OrdererConfig {
	c := DefaultOrdererConfig()
	c.Orderer.Identity = Identity{Cert: n.mat.Orderer.Cert, Key: n.mat.Orderer.Key, NetworkDescription: n.mat.NetworkPath}
	c.Orderer.ListenAddress = n.port(t)
	c.Orderer.LedgerDir = filepath.Join(n.dir, "orderer", "ledger")
	c.Operations.ListenAddress = n.port(t)
	return c
}

func (n *testNet) peerConfig(t *testing.T, i int, orderer string, bootstrap []string) PeerConfig {
	p := n.mat.Peers[i]
	c := DefaultPeerConfig()
	c.Peer.Identity = Identity{Cert: p.Cert, Key: p.Key, NetworkDescription: n.mat.NetworkPath}
	c.Peer.ListenAddress = n.port(t)
	c.Peer.LedgerDir = filepath.Join(n.dir, p.Name, "ledger")
	c.Peer.IncarnationFile = filepath.Join(n.dir, p.Name, "incarnation")
	c.Peer.Orderers = []string{orderer}
	c.Peer.Bootstrap = bootstrap
	c.Operations.ListenAddress = n.port(t)
	return c
}

func quietLogger() (*slog.Logger, *slog.LevelVar) {
	return NewLogger(DefaultLogConfig(), io.Discard)
}

func TestOrdererReportsPortInUseAndBadFiles(t *testing.T) {
	n := newTestNet(t, 1, 1)
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	require.NoError(t, err)
	defer ln.Close()
	logger, level := quietLogger()

	c := n.ordererConfig(t)
	c.Orderer.ListenAddress = ln.Addr().String()
	err = RunOrderer(context.Background(), c, logger, level)
	require.ErrorIs(t, err, ErrPortInUse)
	require.ErrorContains(t, err, ln.Addr().String())
	require.ErrorContains(t, err, "orderer.listenAddress or --listen")

	c = n.ordererConfig(t)
	c.Operations.ListenAddress = ln.Addr().String()
	err = RunOrderer(context.Background(), c, logger, level)
	require.ErrorContains(t, err, "operations.listenAddress")

	c = n.ordererConfig(t)
	c.Orderer.Key = filepath.Join(n.dir, "missing.pem")
	err = RunOrderer(context.Background(), c, logger, level)
	require.ErrorContains(t, err, "missing.pem")

	c = n.ordererConfig(t)
	c.Orderer.Cert, c.Orderer.Key = n.mat.Peers[0].Cert, n.mat.Peers[0].Key
	err = RunOrderer(context.Background(), c, logger, level)
	require.Error(t, err, "a peer certificate cannot run the orderer")

	pc := n.peerConfig(t, 0, "127.0.0.1:1", nil)
	pc.Peer.Cert, pc.Peer.Key = n.mat.Orderer.Cert, n.mat.Orderer.Key
	err = RunPeer(context.Background(), pc, logger, level)
	require.ErrorContains(t, err, "a peer needs a peer certificate")
}

// TestOrdererAndPeersInProcess runs an orderer and three peers of two orgs
// in this process, submits transactions, waits until every peer holds the
// orderer's chain and stops them all: every Run returns nil and no
// goroutine is left behind (goleak in TestMain).
func TestOrdererAndPeersInProcess(t *testing.T) {
	if testing.Short() {
		t.Skip("starts real nodes on loopback")
	}
	n := newTestNet(t, 2, 2)
	logger, level := quietLogger()
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()

	oc := n.ordererConfig(t)
	errs := make(chan error, 4)
	go func() { errs <- RunOrderer(ctx, oc, logger, level) }()
	var peers []PeerConfig
	first := ""
	for i := range n.mat.Peers {
		var boot []string
		if first != "" {
			boot = []string{first}
		}
		pc := n.peerConfig(t, i, oc.Orderer.ListenAddress, boot)
		if first == "" {
			first = pc.Peer.ListenAddress
		}
		peers = append(peers, pc)
		go func() { errs <- RunPeer(ctx, pc, logger, level) }()
	}
	started := 1 + len(peers)

	httpc := &http.Client{Timeout: time.Second}
	waitFor(t, 30*time.Second, "every node healthy", func() error {
		if err := netctl.Healthy(ctx, httpc, oc.Operations.ListenAddress); err != nil {
			return err
		}
		for _, p := range peers {
			if err := netctl.Healthy(ctx, httpc, p.Operations.ListenAddress); err != nil {
				return err
			}
		}
		return nil
	}, errs)

	admin := n.mat.Admins["org1"]
	id, msp, err := client.Credentials{Cert: admin.Cert, Key: admin.Key, CA: n.mat.NetworkPath}.Load()
	require.NoError(t, err)
	conn, err := client.Dial(oc.Orderer.ListenAddress, id, msp)
	require.NoError(t, err)
	defer conn.Close()
	resp, err := pb.NewAtomicBroadcastClient(conn).Broadcast(ctx, &pb.SubmitRequest{
		Transactions: [][]byte{[]byte("a"), []byte("b"), []byte("c")}, WaitForBlocks: true})
	require.NoError(t, err)
	require.EqualValues(t, 3, resp.GetAccepted())
	want, err := client.LedgerInfo(ctx, conn, 5*time.Second)
	require.NoError(t, err)
	require.GreaterOrEqual(t, want.GetHeight(), uint64(2))

	waitFor(t, 30*time.Second, "every peer at the orderer's tip", func() error {
		for _, p := range peers {
			pconn, err := client.Dial(p.Peer.ListenAddress, id, msp)
			if err != nil {
				return err
			}
			got, err := client.LedgerInfo(ctx, pconn, time.Second)
			pconn.Close()
			if err != nil {
				return err
			}
			if got.GetHeight() != want.GetHeight() || string(got.GetCurrentBlockHash()) != string(want.GetCurrentBlockHash()) {
				return fmt.Errorf("%s at height %d, orderer at %d", got.GetName(), got.GetHeight(), want.GetHeight())
			}
		}
		return nil
	}, errs)

	waitFor(t, 30*time.Second, "every peer ready", func() error {
		for _, p := range peers {
			resp, err := httpc.Get("http://" + p.Operations.ListenAddress + "/readyz")
			if err != nil {
				return err
			}
			body, _ := io.ReadAll(resp.Body)
			resp.Body.Close()
			if resp.StatusCode != http.StatusOK {
				return fmt.Errorf("%s: %s", p.Peer.ListenAddress, body)
			}
		}
		return nil
	}, errs)

	resp2, err := httpc.Get("http://" + peers[0].Operations.ListenAddress + "/metrics")
	require.NoError(t, err)
	body, _ := io.ReadAll(resp2.Body)
	resp2.Body.Close()
	require.Contains(t, string(body), "go_goroutines", "the node's own registry is served")
	require.Regexp(t, `(?m)^blockgossip_comm_streams [1-9]`, string(body), "a ready peer holds streams to others, and says so")
	require.Regexp(t, `(?m)^blockgossip_comm_streams_reaped_total 0$`, string(body), "no stream was idle for a minute yet")

	cancel()
	for range started {
		select {
		case err := <-errs:
			require.NoError(t, err, "a node stops cleanly on cancel")
		case <-time.After(20 * time.Second):
			t.Fatal("a node did not stop within 20 s of cancel")
		}
	}
}

// waitFor polls cond (real sockets, real processes' worth of work: there is
// no event to wait on) until it holds, failing early if a node returned.
func waitFor(t *testing.T, d time.Duration, what string, cond func() error, errs <-chan error) {
	t.Helper()
	deadline := time.Now().Add(d)
	var err error
	for time.Now().Before(deadline) {
		select {
		case e := <-errs:
			t.Fatalf("a node stopped while waiting for %s: %v", what, e)
		default:
		}
		if err = cond(); err == nil {
			return
		}
		time.Sleep(100 * time.Millisecond)
	}
	t.Fatalf("%s: not within %v: %v", what, d, err)
}

func TestTracerKeepsTheHighestBlockHeardOf(t *testing.T) {
	tr := &tracer{log: slog.New(slog.DiscardHandler)}
	require.Zero(t, tr.heardHeight())
	tr.BlockAccepted(identity.PKIID{}, 4, 0, 1)
	tr.BlockDuplicate(identity.PKIID{}, 2, 0)
	require.EqualValues(t, 5, tr.heardHeight())
	tr.BlockDropped(40, nil)
	require.EqualValues(t, 41, tr.heardHeight(), "a block beyond the window still shows how far the chain is")
	tr.BlockCommitted(0, 0, 0)
	require.EqualValues(t, 41, tr.heardHeight())
}
