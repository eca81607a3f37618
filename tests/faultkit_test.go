//go:build faults

package tests

import (
	"encoding/json"
	"fmt"
	"math/rand/v2"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"sync"
	"sync/atomic"
	"syscall"
	"testing"
	"time"
)

// faultNet is a local network started by `network up --detach` that a
// fault scenario kills, stops, restarts and starves. Every process it
// (re)starts is recorded in network.json, so `network down` in the
// cleanup stops it too; anything still alive after that is killed by pid.
type faultNet struct {
	t   *testing.T
	dir string
	env []string // BLOCKGOSSIP_* settings for every node, at up and at restart

	mu    sync.Mutex
	procs []*exec.Cmd // restarted by us; a goroutine reaps each
	reap  sync.WaitGroup
}

// fastFailureEnv makes failure detection quick enough for a bounded
// suite: a member silent for 3 s (30 ticks) is dead, alive every 0.5 s.
var fastFailureEnv = []string{
	"BLOCKGOSSIP_GOSSIP_ALIVEINTERVAL=5",
	"BLOCKGOSSIP_GOSSIP_EXPIRATION=30",
	"BLOCKGOSSIP_GOSSIP_RECONNECTINTERVAL=10",
}

// upNet starts orgs x peersPerOrg peers and an orderer in a temporary
// directory, with env on top of the defaults.
func upNet(t *testing.T, orgs, peersPerOrg int, env ...string) *faultNet {
	t.Helper()
	if testing.Short() {
		t.Skip("multi-process fault test; skipped with -short")
	}
	f := &faultNet{t: t, dir: filepath.Join(t.TempDir(), "net"), env: env}
	args := []string{"network", "up", "--dir", f.dir, "--orgs", fmt.Sprint(orgs),
		"--peers-per-org", fmt.Sprint(peersPerOrg), "--detach"}
	t.Cleanup(f.down)
	if out, err := f.cli(2*time.Minute, args...); err != nil {
		t.Fatalf("network up: %v\n%s", err, out)
	}
	return f
}

// cli runs the blockgossip binary with the network's environment.
func (f *faultNet) cli(timeout time.Duration, args ...string) (string, error) {
	cmd := exec.Command(blockgossip(f.t), args...)
	cmd.Env = append(os.Environ(), f.env...)
	var out strings.Builder
	cmd.Stdout, cmd.Stderr = &out, &out
	if err := cmd.Start(); err != nil {
		return "", err
	}
	done := make(chan error, 1)
	go func() { done <- cmd.Wait() }()
	select {
	case err := <-done:
		return out.String(), err
	case <-time.After(timeout):
		_ = cmd.Process.Kill()
		<-done
		return out.String(), fmt.Errorf("blockgossip %s: no answer within %v", strings.Join(args, " "), timeout)
	}
}

// down stops every node (network down), then kills by pid whatever we
// started that survived, and waits for the reapers.
func (f *faultNet) down() {
	if _, err := os.Stat(filepath.Join(f.dir, "network.json")); err == nil {
		for _, n := range f.net().Nodes { // a SIGSTOPped node cannot take SIGTERM
			_ = syscall.Kill(n.PID, syscall.SIGCONT)
		}
		if out, err := f.cli(time.Minute, "network", "down", "--dir", f.dir, "--grace", "5s"); err != nil {
			f.t.Errorf("network down: %v\n%s", err, out)
		}
	}
	f.mu.Lock()
	procs := f.procs
	f.mu.Unlock()
	for _, p := range procs {
		if alive(p.Process.Pid) {
			_ = p.Process.Kill()
		}
	}
	f.reap.Wait()
}

type node = struct {
	Name       string `json:"name"`
	Role       string `json:"role"`
	Org        string `json:"org"`
	Address    string `json:"address"`
	Operations string `json:"operations"`
	Config     string `json:"config"`
	LedgerDir  string `json:"ledger_dir"`
	Log        string `json:"log"`
	PID        int    `json:"pid"`
}

func (f *faultNet) net() *networkFile { return readNetwork(f.t, f.dir) }

// tryReadNetwork is readNetwork for goroutines that must not fail the test.
func tryReadNetwork(dir string) (*networkFile, error) {
	raw, err := os.ReadFile(filepath.Join(dir, "network.json"))
	if err != nil {
		return nil, err
	}
	var n networkFile
	return &n, json.Unmarshal(raw, &n)
}

func (f *faultNet) node(name string) node {
	f.t.Helper()
	for _, n := range f.net().Nodes {
		if n.Name == name {
			return n
		}
	}
	f.t.Fatalf("no node %q in network.json", name)
	return node{}
}

// peers lists the peers, optionally of one org.
func (f *faultNet) peers(org string) []node {
	var out []node
	for _, n := range f.net().Nodes {
		if n.Role == "peer" && (org == "" || n.Org == org) {
			out = append(out, n)
		}
	}
	return out
}

func (f *faultNet) orgs() []string {
	seen := map[string]bool{}
	var out []string
	for _, n := range f.peers("") {
		if !seen[n.Org] {
			seen[n.Org] = true
			out = append(out, n.Org)
		}
	}
	return out
}

// signal sends sig to the node's process.
func (f *faultNet) signal(name string, sig syscall.Signal) {
	f.t.Helper()
	n := f.node(name)
	if err := syscall.Kill(n.PID, sig); err != nil {
		f.t.Fatalf("kill -%d %s (pid %d): %v", sig, name, n.PID, err)
	}
}

// kill9 kills the node with SIGKILL and waits until its process is gone.
func (f *faultNet) kill9(name string) {
	f.t.Helper()
	f.signal(name, syscall.SIGKILL)
	pid := f.node(name).PID
	eventually(f.t, 10*time.Second, name+" gone after SIGKILL", func() error {
		if !exited(pid) {
			return fmt.Errorf("pid %d still has running threads", pid)
		}
		return nil
	})
}

// exited reports whether every thread of pid is gone. alive() is not
// enough after SIGKILL: the thread-group leader turns zombie while another
// thread still finishes an fsync, and the process keeps its files (and
// LevelDB's lock) until the last thread exits.
func exited(pid int) bool {
	if alive(pid) {
		return false
	}
	tasks, err := os.ReadDir(fmt.Sprintf("/proc/%d/task", pid))
	return err != nil || len(tasks) <= 1
}

// stop stops the node gracefully (SIGTERM) and waits for it to exit.
func (f *faultNet) stop(name string) {
	f.t.Helper()
	f.signal(name, syscall.SIGTERM)
	pid := f.node(name).PID
	eventually(f.t, 20*time.Second, name+" exits after SIGTERM", func() error {
		if !exited(pid) {
			return fmt.Errorf("pid %d still alive", pid)
		}
		return nil
	})
}

// restart starts a stopped node again from its config, appending to its
// log, records its new pid in network.json and waits until /healthz is 200.
func (f *faultNet) restart(name string) { f.t.Helper(); f.restartWith(name) }

// restartWith is restart with extra environment for this node only.
func (f *faultNet) restartWith(name string, env ...string) {
	f.t.Helper()
	n := f.node(name)
	if alive(n.PID) {
		f.t.Fatalf("restart %s: pid %d is still running", name, n.PID)
	}
	logf, err := os.OpenFile(n.Log, os.O_APPEND|os.O_CREATE|os.O_WRONLY, 0o644)
	if err != nil {
		f.t.Fatal(err)
	}
	fmt.Fprintf(logf, "---- restarted by the fault suite at %s ----\n", time.Now().UTC().Format(time.RFC3339Nano))
	cmd := exec.Command(blockgossip(f.t), n.Role, "start", "--config", n.Config)
	cmd.Env = append(append(os.Environ(), f.env...), env...)
	cmd.Stdout, cmd.Stderr = logf, logf
	cmd.SysProcAttr = &syscall.SysProcAttr{Setsid: true}
	if err := cmd.Start(); err != nil {
		logf.Close()
		f.t.Fatalf("restart %s: %v", name, err)
	}
	f.mu.Lock()
	f.procs = append(f.procs, cmd)
	f.mu.Unlock()
	f.reap.Add(1)
	go func() {
		defer f.reap.Done()
		_ = cmd.Wait()
		logf.Close()
	}()
	f.setPID(name, cmd.Process.Pid)
	f.waitHealthy(name, 30*time.Second)
}

// setPID rewrites network.json with name's new pid (atomically).
func (f *faultNet) setPID(name string, pid int) {
	f.t.Helper()
	nf := f.net()
	for i := range nf.Nodes {
		if nf.Nodes[i].Name == name {
			nf.Nodes[i].PID = pid
		}
	}
	raw, err := json.MarshalIndent(nf, "", "  ")
	if err != nil {
		f.t.Fatal(err)
	}
	tmp := filepath.Join(f.dir, ".network-faults.json")
	if err := os.WriteFile(tmp, append(raw, '\n'), 0o644); err != nil {
		f.t.Fatal(err)
	}
	if err := os.Rename(tmp, filepath.Join(f.dir, "network.json")); err != nil {
		f.t.Fatal(err)
	}
}

// get fetches path from the node's operations server.
func get(n node, path string) (int, string, error) { return getOps(n.Operations, path) }

func (f *faultNet) waitHealthy(name string, d time.Duration) {
	f.t.Helper()
	n := f.node(name)
	f.eventually(d, name+" healthy", func() error {
		if !alive(n.PID) {
			return fmt.Errorf("process %d exited; log:\n%s", n.PID, tailLog(n.Log, 15))
		}
		code, body, err := get(n, "/healthz")
		if err != nil || code != 200 {
			return fmt.Errorf("/healthz %d %q %v", code, body, err)
		}
		return nil
	})
}

// nodeStatus is GET /status.
type nodeStatus struct {
	Name      string `json:"name"`
	Height    uint64 `json:"height"`
	TipHash   string `json:"tip_hash"`
	LivePeers int    `json:"live_peers"`
	Leader    string `json:"leader"`
	IsLeader  bool   `json:"is_leader"`
}

func status(n node) (nodeStatus, error) {
	code, body, err := get(n, "/status")
	if err != nil {
		return nodeStatus{}, err
	}
	if code != 200 {
		return nodeStatus{}, fmt.Errorf("/status answered %d: %s", code, body)
	}
	var s nodeStatus
	if err := json.Unmarshal([]byte(body), &s); err != nil {
		return nodeStatus{}, fmt.Errorf("/status %q: %v", body, err)
	}
	return s, nil
}

// eventually is the harness's eventually with a poll of 100 ms, so that
// measured recovery times are not rounded to 200 ms.
func (f *faultNet) eventually(d time.Duration, what string, cond func() error) {
	f.t.Helper()
	end := time.Now().Add(d)
	var err error
	for {
		if err = cond(); err == nil {
			return
		}
		if time.Now().After(end) {
			f.t.Fatalf("%s: not reached within %v: %v", what, d, err)
		}
		time.Sleep(100 * time.Millisecond)
	}
}

// livePeers are the peers whose process runs (and is not stopped by us:
// the caller passes those in except).
func (f *faultNet) livePeers(except ...string) []node {
	var out []node
next:
	for _, n := range f.peers("") {
		for _, e := range except {
			if n.Name == e {
				continue next
			}
		}
		if alive(n.PID) {
			out = append(out, n)
		}
	}
	return out
}

// converge waits until every live peer (but except) has the orderer's
// height and tip hash, polling /status; it then checks the same through
// `ledger height --json` (the user's view) and returns the orderer's tip
// and how long it took.
func (f *faultNet) converge(d time.Duration, except ...string) (ledgerInfo, time.Duration) {
	f.t.Helper()
	start := time.Now()
	orderer := f.node("orderer")
	f.eventually(d, "every live peer at the orderer's height and tip", func() error {
		o, err := status(orderer)
		if err != nil {
			return fmt.Errorf("orderer: %v", err)
		}
		for _, p := range f.livePeers(except...) {
			s, err := status(p)
			if err != nil {
				return fmt.Errorf("%s: %v", p.Name, err)
			}
			if s.Height != o.Height || s.TipHash != o.TipHash {
				return fmt.Errorf("%s at %d (%.8s), orderer at %d (%.8s); log %s",
					p.Name, s.Height, s.TipHash, o.Height, o.TipHash, p.Log)
			}
		}
		return nil
	})
	took := time.Since(start)
	o, err := height(f.t, f.dir, "orderer")
	if err != nil {
		f.t.Fatalf("ledger height orderer: %v", err)
	}
	for _, p := range f.livePeers(except...) {
		li, err := height(f.t, f.dir, p.Name)
		if err != nil {
			f.t.Fatalf("ledger height %s: %v", p.Name, err)
		}
		if li != o {
			f.t.Fatalf("%s: ledger height says %+v, orderer %+v", p.Name, li, o)
		}
	}
	return o, took
}

// follow samples the orderer's height h and waits until every live peer
// (but except) has reached h: with blocks still streaming this is "they keep
// up", where converge would chase a moving tip.
func (f *faultNet) follow(d time.Duration, except ...string) time.Duration {
	f.t.Helper()
	start := time.Now()
	h := f.ordererHeight()
	f.eventually(d, fmt.Sprintf("every live peer at the orderer's height %d", h), func() error {
		for _, p := range f.livePeers(except...) {
			s, err := status(p)
			if err != nil {
				return fmt.Errorf("%s: %v", p.Name, err)
			}
			if s.Height < h {
				return fmt.Errorf("%s at %d; log %s", p.Name, s.Height, p.Log)
			}
		}
		return nil
	})
	return time.Since(start)
}

// leaders returns, per org, the live peers (but except) that say they lead.
func (f *faultNet) leaders(except ...string) (map[string][]string, error) {
	out := map[string][]string{}
	for _, p := range f.livePeers(except...) {
		s, err := status(p)
		if err != nil {
			return nil, fmt.Errorf("%s: %v", p.Name, err)
		}
		if s.IsLeader {
			out[p.Org] = append(out[p.Org], p.Name)
		}
	}
	return out, nil
}

// oneLeaderPerOrg waits until each org has exactly one leader among its
// live peers (but except) and returns them.
func (f *faultNet) oneLeaderPerOrg(d time.Duration, except ...string) map[string]string {
	f.t.Helper()
	got := map[string]string{}
	f.eventually(d, "exactly one leader per org", func() error {
		ls, err := f.leaders(except...)
		if err != nil {
			return err
		}
		for _, org := range f.orgs() {
			if len(ls[org]) != 1 {
				return fmt.Errorf("org %s has leaders %v", org, ls[org])
			}
			got[org] = ls[org][0]
		}
		return nil
	})
	return got
}

// feeder submits transactions in the background, a batch every interval,
// until stop is called; submissions may fail while the orderer is down.
type feeder struct {
	stopc  chan struct{}
	done   chan struct{}
	ok     atomic.Int64
	failed atomic.Int64
}

func (f *faultNet) feed(interval time.Duration, perBatch int) *feeder {
	fd := &feeder{stopc: make(chan struct{}), done: make(chan struct{})}
	go func() {
		defer close(fd.done)
		tick := time.NewTicker(interval)
		defer tick.Stop()
		for {
			select {
			case <-fd.stopc:
				return
			case <-tick.C:
			}
			if _, err := f.cli(20*time.Second, "submit", "--network", f.dir, "--count", fmt.Sprint(perBatch),
				"--size", "512", "--no-wait", "--timeout", "3s"); err != nil {
				fd.failed.Add(1)
			} else {
				fd.ok.Add(1)
			}
		}
	}()
	f.t.Cleanup(fd.stop)
	return fd
}

// stop ends the feeder and waits for its last submission; idempotent.
func (fd *feeder) stop() {
	select {
	case <-fd.stopc:
	default:
		close(fd.stopc)
	}
	<-fd.done
}

// submit submits n transactions and waits until they are cut.
func (f *faultNet) submit(n int) {
	f.t.Helper()
	if out, err := f.cli(time.Minute, "submit", "--network", f.dir, "--count", fmt.Sprint(n), "--size", "512"); err != nil {
		f.t.Fatalf("submit: %v\n%s", err, out)
	}
}

// ordererHeight reads the orderer's height from /status.
func (f *faultNet) ordererHeight() uint64 {
	f.t.Helper()
	s, err := status(f.node("orderer"))
	if err != nil {
		f.t.Fatalf("orderer /status: %v", err)
	}
	return s.Height
}

// waitOrdererAbove waits until the orderer has cut past h.
func (f *faultNet) waitOrdererAbove(h uint64, d time.Duration) {
	f.t.Helper()
	f.eventually(d, fmt.Sprintf("orderer past height %d", h), func() error {
		s, err := status(f.node("orderer"))
		if err != nil {
			return err
		}
		if s.Height <= h {
			return fmt.Errorf("orderer at %d", s.Height)
		}
		return nil
	})
}

// verifyLedger runs `ledger verify` on a stopped node's ledger.
func (f *faultNet) verifyLedger(name string) string {
	f.t.Helper()
	n := f.node(name)
	var out string
	f.eventually(10*time.Second, "ledger verify "+name, func() error {
		var err error
		out, err = f.cli(time.Minute, "ledger", "verify", "--dir", n.LedgerDir)
		if err != nil && strings.Contains(out, "in use by another") {
			return fmt.Errorf("%v: %s", err, out) // the dead process's last thread is still exiting
		}
		if err != nil {
			f.t.Fatalf("ledger verify %s: %v\n%s", name, err, out)
		}
		return nil
	})
	return out
}

// recovery logs a scenario's measured recovery time in one greppable line.
func recovery(t *testing.T, scenario string, d time.Duration, detail string) {
	t.Logf("RECOVERY %-28s %8.2fs  %s", scenario, d.Seconds(), detail)
}

// seeded returns the scenario's random source: seed 1 unless FAULTS_SEED
// says otherwise, so a run is reproducible as far as real processes allow.
func seeded(t *testing.T) *rand.Rand {
	seed := uint64(1)
	if s := os.Getenv("FAULTS_SEED"); s != "" {
		fmt.Sscan(s, &seed)
	}
	t.Logf("seed %d (rerun with FAULTS_SEED=%d)", seed, seed)
	return rand.New(rand.NewPCG(seed, 0xfa017))
}
