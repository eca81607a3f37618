package netctl

import (
	"context"
	"errors"
	"fmt"
	"math/rand/v2"
	"net"
	"net/http"
	"os"
	"os/exec"
	"slices"
	"strconv"
	"strings"
	"syscall"
	"time"
)

// PortAllocator hands out free TCP ports on 127.0.0.1 from below the
// kernel's ephemeral range (32768+ on Linux), so that no test or outgoing
// connection that asks the kernel for "any port" takes one between our
// choice and the node binding it.
type PortAllocator struct {
	Lo, Hi int // inclusive range to draw from
	rng    *rand.Rand
	taken  map[int]bool
}

// NewPortAllocator draws ports in [20000, 32000) in an order seeded by seed.
func NewPortAllocator(seed uint64) *PortAllocator {
	return &PortAllocator{Lo: 20000, Hi: 31999, rng: rand.New(rand.NewPCG(seed, seed^0x9e3779b97f4a7c15)), taken: map[int]bool{}}
}

// ErrNoFreePort means every try found the port in use.
var ErrNoFreePort = errors.New("no free port found")

// Free returns "127.0.0.1:PORT" for a port nobody listens on now. prefer,
// if non-empty and free, is returned as is (a restarted network keeps its
// ports when it can).
func (a *PortAllocator) Free(prefer string) (string, error) {
	if prefer != "" {
		if _, p, err := net.SplitHostPort(prefer); err == nil {
			if port, err := strconv.Atoi(p); err == nil && !a.taken[port] && portFree(port) {
				a.taken[port] = true
				return prefer, nil
			}
		}
	}
	for range 200 {
		port := a.Lo + a.rng.IntN(a.Hi-a.Lo+1)
		if a.taken[port] || !portFree(port) {
			continue
		}
		a.taken[port] = true
		return net.JoinHostPort("127.0.0.1", strconv.Itoa(port)), nil
	}
	return "", fmt.Errorf("%w in 127.0.0.1:%d-%d after 200 tries", ErrNoFreePort, a.Lo, a.Hi)
}

func portFree(port int) bool {
	ln, err := net.Listen("tcp", net.JoinHostPort("127.0.0.1", strconv.Itoa(port)))
	if err != nil {
		return false
	}
	ln.Close()
	return true
}

// Start runs bin with args and environment env (nil: this process's) as a
// node process: in its own session (Setsid, so it survives a detached
// parent and misses the terminal's Ctrl-C), stdout and stderr appended to
// logPath, stdin closed.
func Start(bin string, args, env []string, logPath string) (*exec.Cmd, error) {
	logf, err := os.OpenFile(logPath, os.O_CREATE|os.O_WRONLY|os.O_APPEND, 0o644)
	if err != nil {
		return nil, fmt.Errorf("open node log: %w", err)
	}
	defer logf.Close() // the child has its own copy of the descriptor
	cmd := exec.Command(bin, args...)
	cmd.Stdout, cmd.Stderr = logf, logf
	cmd.Env = env
	cmd.SysProcAttr = &syscall.SysProcAttr{Setsid: true}
	if err := cmd.Start(); err != nil {
		return nil, fmt.Errorf("start %s %s: %w", bin, strings.Join(args, " "), err)
	}
	return cmd, nil
}

// Alive reports whether pid is a running process (a zombie is not).
func Alive(pid int) bool {
	if pid <= 0 || syscall.Kill(pid, 0) != nil {
		return false
	}
	stat, err := os.ReadFile(fmt.Sprintf("/proc/%d/stat", pid))
	if err != nil {
		return !errors.Is(err, os.ErrNotExist)
	}
	s := string(stat)
	if i := strings.LastIndexByte(s, ')'); i >= 0 && i+2 < len(s) {
		return s[i+2] != 'Z'
	}
	return true
}

// Healthy asks a node's operations listener for /healthz and returns nil
// on 200.
func Healthy(ctx context.Context, client *http.Client, opsAddr string) error {
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, "http://"+opsAddr+"/healthz", nil)
	if err != nil {
		return err
	}
	resp, err := client.Do(req)
	if err != nil {
		return err
	}
	defer resp.Body.Close()
	if resp.StatusCode != http.StatusOK {
		var body [512]byte
		n, _ := resp.Body.Read(body[:])
		return fmt.Errorf("healthz answered %s: %s", resp.Status, strings.TrimSpace(string(body[:n])))
	}
	return nil
}

// StopOptions tune Stop.
type StopOptions struct {
	Grace time.Duration // SIGTERM to SIGKILL
	Poll  time.Duration // how often to look whether processes have exited
	// Exited, if set, is asked instead of Alive (a parent that owns the
	// children reaps them with Wait and knows first).
	Exited func(pid int) bool
}

// Stop sends SIGTERM to every live pid, SIGKILL to those still alive after
// the grace period, and returns once every one has exited. It returns the
// pids that had to be killed.
func Stop(pids []int, o StopOptions) (killed []int, err error) {
	if o.Grace <= 0 {
		o.Grace = 10 * time.Second
	}
	if o.Poll <= 0 {
		o.Poll = 50 * time.Millisecond
	}
	gone := func(pid int) bool {
		if o.Exited != nil {
			return o.Exited(pid)
		}
		return !Alive(pid)
	}
	for _, pid := range pids {
		if !gone(pid) {
			_ = syscall.Kill(pid, syscall.SIGTERM)
		}
	}
	deadline := time.Now().Add(o.Grace)
	for {
		var left []int
		for _, pid := range pids {
			if !gone(pid) {
				left = append(left, pid)
			}
		}
		if len(left) == 0 {
			return killed, nil
		}
		if time.Now().After(deadline) {
			for _, pid := range left {
				if !slices.Contains(killed, pid) {
					_ = syscall.Kill(pid, syscall.SIGKILL)
					killed = append(killed, pid)
				}
			}
			if time.Now().After(deadline.Add(o.Grace)) {
				return killed, fmt.Errorf("processes %v did not exit even after SIGKILL", left)
			}
		}
		time.Sleep(o.Poll) // waiting on processes we may not own: nothing to block on but time
	}
}
