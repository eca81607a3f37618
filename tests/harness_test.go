package tests

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"runtime"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"
)

// binary is built once per test process, on first use.
var (
	buildOnce sync.Once
	binPath   string
	buildErr  error
)

// blockgossip returns the path of a freshly built blockgossip binary.
func blockgossip(t *testing.T) string {
	t.Helper()
	buildOnce.Do(func() {
		dir, err := os.MkdirTemp("", "blockgossip-bin-")
		if err != nil {
			buildErr = err
			return
		}
		binPath = filepath.Join(dir, "blockgossip")
		_, file, _, _ := runtime.Caller(0)
		root := filepath.Dir(filepath.Dir(file))
		cmd := exec.Command("go", "build", "-o", binPath, "./cmd/blockgossip")
		cmd.Dir = root
		out, err := cmd.CombinedOutput()
		if err != nil {
			buildErr = fmt.Errorf("go build ./cmd/blockgossip: %v\n%s", err, out)
		}
	})
	if buildErr != nil {
		t.Fatal(buildErr)
	}
	return binPath
}

// run executes the binary with args and a deadline; it returns stdout and
// fails the test, with stderr, if the command fails.
func run(t *testing.T, timeout time.Duration, args ...string) string {
	t.Helper()
	out, err := tryRun(timeout, blockgossip(t), args...)
	if err != nil {
		t.Fatalf("blockgossip %s: %v", strings.Join(args, " "), err)
	}
	return out
}

func tryRun(timeout time.Duration, bin string, args ...string) (string, error) {
	ctx, cancel := context.WithTimeout(context.Background(), timeout)
	defer cancel()
	cmd := exec.CommandContext(ctx, bin, args...)
	var stdout, stderr bytes.Buffer
	cmd.Stdout, cmd.Stderr = &stdout, &stderr
	if err := cmd.Run(); err != nil {
		return stdout.String(), fmt.Errorf("%v (stderr: %s)", err, strings.TrimSpace(stderr.String()))
	}
	return stdout.String(), nil
}

// networkFile mirrors the network.json contract of `blockgossip network up`.
type networkFile struct {
	Nodes []struct {
		Name       string `json:"name"`
		Role       string `json:"role"`
		Org        string `json:"org"`
		Address    string `json:"address"`
		Operations string `json:"operations"`
		Config     string `json:"config"`
		LedgerDir  string `json:"ledger_dir"`
		Log        string `json:"log"`
		PID        int    `json:"pid"`
	} `json:"nodes"`
	Admin struct {
		Cert string `json:"cert"`
		Key  string `json:"key"`
		CA   string `json:"ca"`
	} `json:"admin"`
}

func readNetwork(t *testing.T, dir string) *networkFile {
	t.Helper()
	raw, err := os.ReadFile(filepath.Join(dir, "network.json"))
	if err != nil {
		t.Fatalf("network up wrote no network.json: %v", err)
	}
	var n networkFile
	if err := json.Unmarshal(raw, &n); err != nil {
		t.Fatalf("network.json is not valid: %v\n%s", err, raw)
	}
	return &n
}

// ledgerInfo is the --json output contract of `blockgossip ledger height`.
type ledgerInfo struct {
	Height            uint64 `json:"height"`
	CurrentBlockHash  string `json:"currentBlockHash"`
	PreviousBlockHash string `json:"previousBlockHash"`
}

func height(t *testing.T, dir, node string) (ledgerInfo, error) {
	t.Helper()
	out, err := tryRun(10*time.Second, blockgossip(t), "ledger", "height", "--network", dir, "--peer", node, "--json")
	if err != nil {
		return ledgerInfo{}, err
	}
	var li ledgerInfo
	if err := json.Unmarshal([]byte(out), &li); err != nil {
		return ledgerInfo{}, fmt.Errorf("ledger height --json printed %q: %v", out, err)
	}
	return li, nil
}

// upNetwork starts a local network of 2 orgs x 3 peers, detached, in a
// fresh directory, and brings it down when the test ends.
func upNetwork(t *testing.T) (string, *networkFile) {
	t.Helper()
	dir := filepath.Join(t.TempDir(), "net")
	run(t, 2*time.Minute, "network", "up", "--dir", dir, "--orgs", "2", "--peers-per-org", "3", "--detach")
	net := readNetwork(t, dir)
	t.Cleanup(func() {
		if _, err := tryRun(time.Minute, blockgossip(t), "network", "down", "--dir", dir); err != nil {
			t.Errorf("network down: %v", err)
		}
	})
	return dir, net
}

// atOrdererTip reports, as an error naming the first laggard and its log,
// whether every peer of net is at the orderer's height and tip hash; it
// returns the orderer's ledger info.
func atOrdererTip(t *testing.T, dir string, net *networkFile) (ledgerInfo, error) {
	t.Helper()
	o, err := height(t, dir, "orderer")
	if err != nil {
		return o, err
	}
	if o.Height < 2 {
		return o, fmt.Errorf("orderer height %d: the submitted transactions were not cut", o.Height)
	}
	for _, n := range net.Nodes {
		if n.Role != "peer" {
			continue
		}
		p, err := height(t, dir, n.Name)
		if err != nil {
			return o, fmt.Errorf("%s: %v", n.Name, err)
		}
		if p != o {
			return o, fmt.Errorf("%s at height %d (%.8s), orderer at %d (%.8s); log %s",
				n.Name, p.Height, p.CurrentBlockHash, o.Height, o.CurrentBlockHash, n.Log)
		}
	}
	return o, nil
}

// alive reports whether pid is a running (not zombie) process.
func alive(pid int) bool {
	if err := syscall.Kill(pid, 0); err != nil {
		return false
	}
	stat, err := os.ReadFile(fmt.Sprintf("/proc/%d/stat", pid))
	if err != nil {
		return false
	}
	// The state follows the parenthesised command name.
	s := string(stat)
	if i := strings.LastIndexByte(s, ')'); i >= 0 && i+2 < len(s) {
		return s[i+2] != 'Z'
	}
	return true
}

// httpc polls operations endpoints; no keep-alive, so no idle connection
// goroutine outlives a test (goleak checks).
var httpc = &http.Client{Timeout: 2 * time.Second, Transport: &http.Transport{DisableKeepAlives: true}}

// getOps fetches path from the operations server at addr.
func getOps(addr, path string) (int, string, error) {
	resp, err := httpc.Get("http://" + addr + path)
	if err != nil {
		return 0, "", err
	}
	defer resp.Body.Close()
	body, err := io.ReadAll(io.LimitReader(resp.Body, 1<<20))
	return resp.StatusCode, string(body), err
}

// eventually polls cond every interval until it returns nil or the deadline
// passes, then fails with the last error and what.
func eventually(t *testing.T, deadline time.Duration, what string, cond func() error) {
	t.Helper()
	end := time.Now().Add(deadline)
	var err error
	for time.Now().Before(end) {
		if err = cond(); err == nil {
			return
		}
		time.Sleep(200 * time.Millisecond)
	}
	t.Fatalf("%s: not reached within %v: %v", what, deadline, err)
}

// tailLog returns the last lines of a node's log, for failure messages.
func tailLog(path string, lines int) string {
	raw, err := os.ReadFile(path)
	if err != nil {
		return fmt.Sprintf("(no log at %s: %v)", path, err)
	}
	all := strings.Split(strings.TrimRight(string(raw), "\n"), "\n")
	if len(all) > lines {
		all = all[len(all)-lines:]
	}
	return strings.Join(all, "\n")
}
