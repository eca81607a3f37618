package netctl

import (
	"context"
	"net"
	"net/http"
	"net/http/httptest"
	"os"
	"os/signal"
	"path/filepath"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/stretchr/testify/require"
	"go.uber.org/goleak"
	"golang.org/x/sys/unix"
)

func TestMain(m *testing.M) {
	switch os.Getenv("NETCTL_HELPER") {
	case "exit-on-term":
		signal.Ignore(syscall.SIGINT)
		c := make(chan os.Signal, 1)
		signal.Notify(c, syscall.SIGTERM)
		os.Stdout.WriteString("helper up\n")
		<-c
		os.Exit(0)
	case "ignore-term":
		signal.Ignore(syscall.SIGTERM)
		os.Stdout.WriteString("helper up\n")
		select {}
	}
	goleak.VerifyTestMain(m)
}

func sampleFile(dir string) *File {
	return &File{
		Nodes: []Node{
			{Name: "orderer", Role: RoleOrderer, Org: "ordererorg", Address: "127.0.0.1:7050", Operations: "127.0.0.1:9443",
				Config: filepath.Join(dir, "orderer/config.yaml"), LedgerDir: filepath.Join(dir, "orderer/ledger"), Log: filepath.Join(dir, "orderer/node.log"), PID: 4242},
			{Name: "org1-peer0", Role: RolePeer, Org: "org1", Address: "127.0.0.1:7051", Operations: "127.0.0.1:9444",
				Config: filepath.Join(dir, "org1-peer0/config.yaml"), LedgerDir: filepath.Join(dir, "org1-peer0/ledger"), Log: filepath.Join(dir, "org1-peer0/node.log"), PID: 4243},
		},
		Admin: Admin{Cert: filepath.Join(dir, "crypto/a.pem"), Key: filepath.Join(dir, "crypto/k.pem"), CA: filepath.Join(dir, "crypto/ca.pem")},
	}
}

func TestNetworkFileRoundTrip(t *testing.T) {
	dir := t.TempDir()
	f := sampleFile(dir)
	require.NoError(t, f.Write(dir))
	got, err := Read(dir)
	require.NoError(t, err)
	require.Equal(t, f, got)

	raw, err := os.ReadFile(filepath.Join(dir, FileName))
	require.NoError(t, err)
	for _, key := range []string{`"nodes"`, `"name"`, `"role"`, `"org"`, `"address"`, `"operations"`, `"config"`, `"ledger_dir"`, `"log"`, `"pid"`, `"admin"`, `"cert"`, `"key"`, `"ca"`} {
		require.Contains(t, string(raw), key, "the JSON contract names every field")
	}
	entries, err := os.ReadDir(dir)
	require.NoError(t, err)
	require.Len(t, entries, 1, "no temp file is left behind")

	n, err := got.Node("org1-peer0")
	require.NoError(t, err)
	require.Equal(t, 4243, n.PID)
	_, err = got.Node("org9-peer0")
	require.ErrorIs(t, err, ErrUnknownNode)
	require.ErrorContains(t, err, "orderer, org1-peer0")
	o, err := got.Orderer()
	require.NoError(t, err)
	require.Equal(t, "orderer", o.Name)
}

func TestNetworkFileRejectsBadContent(t *testing.T) {
	dir := t.TempDir()
	_, err := Read(dir)
	require.ErrorIs(t, err, ErrNoNetwork)
	require.ErrorContains(t, err, "network up")

	f := sampleFile(dir)
	f.Nodes[1].Name = "orderer"
	require.ErrorContains(t, f.Write(dir), "repeated")
	f = sampleFile(dir)
	f.Nodes[1].Log = "node.log"
	require.ErrorContains(t, f.Write(dir), "not absolute")
	f = sampleFile(dir)
	f.Nodes[0].Role = "king"
	require.ErrorContains(t, f.Write(dir), "role")

	require.NoError(t, os.WriteFile(filepath.Join(dir, FileName), []byte("{"), 0o644))
	_, err = Read(dir)
	require.ErrorContains(t, err, "not a valid network file")
}

func TestPortAllocatorSkipsBusyAndTakenPorts(t *testing.T) {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	require.NoError(t, err)
	defer ln.Close()
	a := NewPortAllocator(1)
	seen := map[string]bool{}
	for range 20 {
		p, err := a.Free("")
		require.NoError(t, err)
		require.False(t, seen[p], "a port is handed out once")
		seen[p] = true
		_, port, _ := net.SplitHostPort(p)
		require.True(t, port >= "20000" && port <= "31999", p)
	}
	busy := ln.Addr().String()
	p, err := a.Free(busy)
	require.NoError(t, err)
	require.NotEqual(t, busy, p, "a preferred port in use is replaced")

	b := NewPortAllocator(2)
	free, err := b.Free("")
	require.NoError(t, err)
	again, err := NewPortAllocator(3).Free(free)
	require.NoError(t, err)
	require.Equal(t, free, again, "a free preferred port is kept")
}

func startHelper(t *testing.T, mode string) (pid int, logPath string, wait func()) {
	t.Helper()
	logPath = filepath.Join(t.TempDir(), "node.log")
	cmd, err := Start(os.Args[0], []string{"-test.run=^$"}, append(os.Environ(), "NETCTL_HELPER="+mode), logPath)
	require.NoError(t, err)
	done := make(chan struct{})
	go func() { _ = cmd.Wait(); close(done) }()
	deadline := time.Now().Add(10 * time.Second)
	for { // the helper writes one line once its signal handling is set up
		raw, _ := os.ReadFile(logPath)
		if strings.Contains(string(raw), "helper up") {
			break
		}
		require.True(t, time.Now().Before(deadline), "helper did not start")
		time.Sleep(10 * time.Millisecond)
	}
	return cmd.Process.Pid, logPath, func() { <-done }
}

func TestStopTermsThenKills(t *testing.T) {
	politePID, _, waitPolite := startHelper(t, "exit-on-term")
	stubbornPID, logPath, waitStubborn := startHelper(t, "ignore-term")
	require.True(t, Alive(politePID))
	require.True(t, Alive(stubbornPID))

	sid, err := unix.Getsid(stubbornPID)
	require.NoError(t, err)
	require.Equal(t, stubbornPID, sid, "a node leads its own session")

	exited := map[int]chan struct{}{politePID: make(chan struct{}), stubbornPID: make(chan struct{})}
	go func() { waitPolite(); close(exited[politePID]) }()
	go func() { waitStubborn(); close(exited[stubbornPID]) }()
	isExited := func(pid int) bool {
		select {
		case <-exited[pid]:
			return true
		default:
			return false
		}
	}
	killed, err := Stop([]int{politePID, stubbornPID}, StopOptions{Grace: 1500 * time.Millisecond, Poll: 10 * time.Millisecond, Exited: isExited})
	require.NoError(t, err)
	require.Equal(t, []int{stubbornPID}, killed)
	require.False(t, Alive(politePID))
	require.False(t, Alive(stubbornPID))
	raw, err := os.ReadFile(logPath)
	require.NoError(t, err)
	require.Contains(t, string(raw), "helper up", "stdout goes to the node log")
}

func TestHealthy(t *testing.T) {
	code := http.StatusOK
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		require.Equal(t, "/healthz", r.URL.Path)
		w.WriteHeader(code)
		_, _ = w.Write([]byte(`{"failed_checks":[{"component":"ledger"}]}`))
	}))
	defer srv.Close()
	addr := strings.TrimPrefix(srv.URL, "http://")
	require.NoError(t, Healthy(context.Background(), srv.Client(), addr))
	code = http.StatusServiceUnavailable
	err := Healthy(context.Background(), srv.Client(), addr)
	require.ErrorContains(t, err, "503")
	require.ErrorContains(t, err, "ledger")
	require.False(t, Alive(0))
}
