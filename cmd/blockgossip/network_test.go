package main

import (
	"context"
	"net"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/blockgossip/blockgossip/cmd/internal/netctl"
	"github.com/stretchr/testify/require"
)

func fakeNode(t *testing.T, name, ops string, exited bool) *started {
	log := filepath.Join(t.TempDir(), "node.log")
	require.NoError(t, os.WriteFile(log, []byte("line one\nfatal: cannot listen on 127.0.0.1:7051\n"), 0o644))
	p := &started{node: netctl.Node{Name: name, Operations: ops, Log: log}, done: make(chan struct{})}
	if exited {
		close(p.done)
	}
	return p
}

func TestWaitHealthyNamesTheNodeAndItsLog(t *testing.T) {
	healthy := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {}))
	defer healthy.Close()
	up := fakeNode(t, "org1-peer0", strings.TrimPrefix(healthy.URL, "http://"), false)
	require.NoError(t, waitHealthy(context.Background(), []*started{up}, 5*time.Second))

	dead := fakeNode(t, "org1-peer1", "127.0.0.1:1", true)
	err := waitHealthy(context.Background(), []*started{up, dead}, 5*time.Second)
	require.ErrorContains(t, err, "node org1-peer1 exited during start-up")
	require.ErrorContains(t, err, dead.node.Log)
	require.ErrorContains(t, err, "cannot listen on 127.0.0.1:7051", "the log's tail is quoted")

	ln, err := net.Listen("tcp", "127.0.0.1:0") // accepts, never answers HTTP
	require.NoError(t, err)
	defer ln.Close()
	silent := fakeNode(t, "org2-peer0", ln.Addr().String(), false)
	err = waitHealthy(context.Background(), []*started{up, silent}, 300*time.Millisecond)
	require.ErrorContains(t, err, "node org2-peer0 did not become healthy within 300ms")
	require.ErrorContains(t, err, silent.node.Log)
}

func TestBootstrapNeverPointsAtSelfAndCoversEveryOrg(t *testing.T) {
	f := &netctl.File{}
	for _, n := range []string{"org1-peer0", "org1-peer1", "org1-peer2", "org2-peer0", "org2-peer1"} {
		f.Nodes = append(f.Nodes, netctl.Node{Name: n, Role: netctl.RolePeer, Org: n[:4], Address: n})
	}
	require.Equal(t, []string{"org1-peer1", "org2-peer0"}, bootstrapFor(f, f.Nodes[0]))
	require.Equal(t, []string{"org1-peer0", "org2-peer0"}, bootstrapFor(f, f.Nodes[2]))
	require.Equal(t, []string{"org1-peer0", "org2-peer1"}, bootstrapFor(f, f.Nodes[3]))
}

func TestNodeEnvDropsPerNodeKeys(t *testing.T) {
	env, dropped := nodeEnv([]string{"PATH=/bin", "BLOCKGOSSIP_LOG_LEVEL=debug", "BLOCKGOSSIP_PEER_LISTENADDRESS=x:1",
		"BLOCKGOSSIP_OPERATIONS_LISTENADDRESS=x:2", "BLOCKGOSSIP_GOSSIP_FANOUT=6", "BLOCKGOSSIP_ORDERER_LEDGERDIR=/l"})
	require.Equal(t, []string{"PATH=/bin", "BLOCKGOSSIP_LOG_LEVEL=debug", "BLOCKGOSSIP_GOSSIP_FANOUT=6"}, env)
	require.Equal(t, []string{"BLOCKGOSSIP_PEER_LISTENADDRESS", "BLOCKGOSSIP_OPERATIONS_LISTENADDRESS", "BLOCKGOSSIP_ORDERER_LEDGERDIR"}, dropped)
}
