package tests

import (
	"path/filepath"
	"testing"
	"time"
)

// TestNetworkUpSubmitHeightDown is the user's main path: a local network of
// 2 orgs x 3 peers comes up detached, 50 transactions are submitted, every
// peer reaches the orderer's height and tip hash, and network down leaves
// no process behind.
func TestNetworkUpSubmitHeightDown(t *testing.T) {
	if testing.Short() {
		t.Skip("multi-process test; skipped with -short")
	}
	dir, net := upNetwork(t)
	if got := len(net.Nodes); got != 7 {
		t.Fatalf("network.json lists %d nodes, want 7 (1 orderer + 6 peers)", got)
	}
	for _, n := range net.Nodes {
		if !filepath.IsAbs(n.Config) || !filepath.IsAbs(n.LedgerDir) || !filepath.IsAbs(n.Log) {
			t.Errorf("node %s: paths must be absolute: %+v", n.Name, n)
		}
		if !alive(n.PID) {
			t.Fatalf("node %s (pid %d) is not running after network up --detach; log:\n%s", n.Name, n.PID, tailLog(n.Log, 20))
		}
	}

	run(t, time.Minute, "submit", "--network", dir, "--count", "50", "--size", "256")

	var want ledgerInfo
	eventually(t, 60*time.Second, "every peer at the orderer's height and tip", func() error {
		var err error
		want, err = atOrdererTip(t, dir, net)
		return err
	})
	t.Logf("all 6 peers at height %d, tip %s", want.Height, want.CurrentBlockHash)

	run(t, time.Minute, "network", "down", "--dir", dir)
	for _, n := range net.Nodes {
		if alive(n.PID) {
			t.Errorf("node %s (pid %d) still running after network down", n.Name, n.PID)
		}
	}
}
