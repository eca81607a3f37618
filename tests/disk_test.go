//go:build faults

package tests

import (
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"syscall"
	"testing"
	"time"
)

// dirBytes is the size of the files in dir.
func dirBytes(t *testing.T, dir string) int64 {
	t.Helper()
	var n int64
	err := filepath.Walk(dir, func(_ string, fi os.FileInfo, err error) error {
		if err == nil && !fi.IsDir() {
			n += fi.Size()
		}
		return err
	})
	if err != nil {
		t.Fatal(err)
	}
	return n
}

// copyDir copies dir's contents into to (cp -a keeps what LevelDB wrote).
func copyDir(t *testing.T, from, to string) {
	t.Helper()
	if out, err := exec.Command("cp", "-a", from+"/.", to).CombinedOutput(); err != nil {
		t.Fatalf("cp -a %s %s: %v\n%s", from, to, err, out)
	}
}

// TestFaultLedgerDiskFull: a peer's ledger directory is a small tmpfs that
// fills up while blocks stream. The peer must report 503 on /healthz
// naming the ledger, stop committing and corrupt nothing; once the disk
// has room again and the peer is restarted, it catches up.
func TestFaultLedgerDiskFull(t *testing.T) {
	if os.Geteuid() != 0 {
		t.Skip("needs root to mount a tmpfs over the ledger directory")
	}
	probe := t.TempDir()
	if out, err := exec.Command("mount", "-t", "tmpfs", "-o", "size=64k", "tmpfs", probe).CombinedOutput(); err != nil {
		t.Skipf("cannot mount a tmpfs here (%v: %s): the full-disk scenario needs one", err, strings.TrimSpace(string(out)))
	}
	_ = syscall.Unmount(probe, 0)

	f := upNet(t, 1, 3, fastFailureEnv...)
	leaders := f.oneLeaderPerOrg(30 * time.Second)
	f.submit(20)
	f.converge(30 * time.Second)
	var victim node
	for _, p := range f.peers("") {
		if p.Name != leaders[p.Org] {
			victim = p
			break
		}
	}
	f.stop(victim.Name)
	backup := t.TempDir()
	copyDir(t, victim.LedgerDir, backup)
	size := dirBytes(t, backup) + 256<<10
	opts := fmt.Sprintf("size=%d", (size+4095)/4096*4096)
	if out, err := exec.Command("mount", "-t", "tmpfs", "-o", opts, "tmpfs", victim.LedgerDir).CombinedOutput(); err != nil {
		t.Fatalf("mount tmpfs over %s: %v\n%s", victim.LedgerDir, err, out)
	}
	mounted := true
	unmount := func() {
		if mounted {
			if err := syscall.Unmount(victim.LedgerDir, syscall.MNT_DETACH); err != nil {
				t.Errorf("umount %s: %v", victim.LedgerDir, err)
			}
			mounted = false
		}
	}
	t.Cleanup(func() { // after network down (cleanups run last-in first-out)
		unmount()
	})
	copyDir(t, backup, victim.LedgerDir)
	f.restart(victim.Name)

	// Fill it: 40 KiB blocks until the tmpfs has no room.
	var sick string
	var before uint64
	stuck := 0 // submissions since the victim's height last moved
	deadline := time.Now().Add(60 * time.Second)
	for time.Now().Before(deadline) && sick == "" && stuck < 8 {
		if out, err := f.cli(30*time.Second, "submit", "--network", f.dir, "--count", "10", "--size", "4096"); err != nil {
			t.Fatalf("submit: %v\n%s", err, out)
		}
		time.Sleep(100 * time.Millisecond)
		code, body, err := get(victim, "/healthz")
		if err == nil && code == 503 {
			sick = body
		}
		if s, err := status(victim); err == nil {
			if s.Height == before {
				stuck++
			} else {
				stuck, before = 0, s.Height
			}
		}
	}
	reported := sick != "" && strings.Contains(sick, "ledger")
	if sick != "" && !strings.Contains(sick, "ledger") {
		t.Errorf("/healthz 503 does not name the ledger: %s", sick)
	}
	t.Logf("full disk: /healthz said %q at height %d; tmpfs %s", sick, before, opts)
	if raw, err := os.ReadFile(victim.Log); err == nil {
		for _, l := range strings.Split(string(raw), "\n") {
			if strings.Contains(l, "space") {
				t.Logf("%s logged: %s", victim.Name, l)
				break
			}
		}
	}
	// Stuck: more blocks are cut, the victim does not commit them (nor
	// may it crash-loop or claim blocks it could not write).
	f.submit(30)
	h := f.ordererHeight()
	f.follow(30*time.Second, victim.Name)
	if s, err := status(victim); err == nil && s.Height >= h {
		t.Errorf("%s reports height %d with a full disk; the orderer is at %d", victim.Name, s.Height, h)
	}

	// Lift the fault: stop the peer, give its ledger room, verify it,
	// restart it.
	f.stop(victim.Name)
	full := t.TempDir()
	copyDir(t, victim.LedgerDir, full)
	unmount()
	copyDir(t, full, victim.LedgerDir)
	out := f.verifyLedger(victim.Name)
	t.Logf("after the full disk: %s", strings.TrimSpace(out))
	start := time.Now()
	f.restart(victim.Name)
	o, _ := f.converge(60 * time.Second)
	recovery(t, "ledger disk full", time.Since(start), fmt.Sprintf("%s, height %d", victim.Name, o.Height))
	if !reported {
		t.Errorf("the peer kept answering 200 on /healthz while its ledger could not be written (tmpfs %s full): "+
			"/healthz must say 503 and name the ledger (ledger.Store.Err through cmd/internal/node's ledgerCheck)", opts)
	}
}
