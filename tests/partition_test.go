//go:build faults

package tests

import (
	"bufio"
	"fmt"
	"io"
	"net"
	"os"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"
)

// cutter is a TCP proxy in front of every peer: peers announce the proxy
// as their endpoint, so all gossip between them crosses it. On each
// accepted connection it finds which peer process dialled (the socket's
// owner, from /proc), and while a partition is set it refuses and cuts
// connections between the two sides. No kernel firewall, no hook in the
// code under test: only what a real network does to TCP.
type cutter struct {
	t      *testing.T
	f      *faultNet
	mu     sync.Mutex
	side   map[string]int // peer name -> side; 0 = no partition
	conns  map[net.Conn]pair
	lns    []net.Listener
	wg     sync.WaitGroup
	closed bool
}

type pair struct{ from, to string }

func newCutter(t *testing.T, f *faultNet) (*cutter, map[string]string) {
	c := &cutter{t: t, f: f, side: map[string]int{}, conns: map[net.Conn]pair{}}
	proxies := map[string]string{}
	for _, p := range f.peers("") {
		ln, err := net.Listen("tcp", "127.0.0.1:0")
		if err != nil {
			t.Fatal(err)
		}
		c.lns = append(c.lns, ln)
		proxies[p.Name] = ln.Addr().String()
		c.wg.Add(1)
		go c.serve(ln, p.Name, p.Address)
	}
	t.Cleanup(c.close)
	return c, proxies
}

func (c *cutter) close() {
	c.mu.Lock()
	c.closed = true
	for conn := range c.conns {
		conn.Close()
	}
	c.mu.Unlock()
	for _, ln := range c.lns {
		ln.Close()
	}
	c.wg.Wait()
}

func (c *cutter) serve(ln net.Listener, to, target string) {
	defer c.wg.Done()
	for {
		in, err := ln.Accept()
		if err != nil {
			return
		}
		from := c.owner(in)
		if os.Getenv("CUTTER_DEBUG") != "" {
			c.t.Logf("cutter: %s -> %s (%v)", from, to, in.RemoteAddr())
		}
		c.mu.Lock()
		blocked := c.closed || c.cut(from, to)
		c.mu.Unlock()
		if blocked {
			in.Close()
			continue
		}
		out, err := net.DialTimeout("tcp", target, 2*time.Second)
		if err != nil {
			in.Close()
			continue
		}
		c.mu.Lock()
		if c.closed || c.cut(from, to) { // a partition set while we dialled: its loop did not see this pair
			c.mu.Unlock()
			in.Close()
			out.Close()
			continue
		}
		c.conns[in], c.conns[out] = pair{from, to}, pair{from, to}
		c.mu.Unlock()
		c.wg.Add(2)
		pipe := func(dst, src net.Conn) {
			defer c.wg.Done()
			_, _ = io.Copy(dst, src)
			dst.Close()
			src.Close()
			c.mu.Lock()
			delete(c.conns, dst)
			delete(c.conns, src)
			c.mu.Unlock()
		}
		go pipe(out, in)
		go pipe(in, out)
	}
}

// cut reports whether from and to are on different sides; c.mu held.
// While a partition is set, a connection whose dialler could not be named
// (owner found no socket: a process gone, or the /proc scan raced) is cut
// too: let through, it could carry gossip across the partition for good.
func (c *cutter) cut(from, to string) bool {
	if from == "" && len(c.side) > 0 {
		return true
	}
	a, b := c.side[from], c.side[to]
	return a != 0 && b != 0 && a != b
}

// partition puts each group on its own side and cuts every connection
// that crosses; heal lifts it.
func (c *cutter) partition(groups ...[]string) {
	c.mu.Lock()
	defer c.mu.Unlock()
	for i, g := range groups {
		for _, n := range g {
			c.side[n] = i + 1
		}
	}
	for conn, p := range c.conns {
		if c.cut(p.from, p.to) {
			conn.Close()
		}
	}
}

func (c *cutter) heal() {
	c.mu.Lock()
	c.side = map[string]int{}
	c.mu.Unlock()
}

// owner names the peer process that holds the other end of an accepted
// loopback connection ("" if it is not a peer).
func (c *cutter) owner(conn net.Conn) string {
	remote := conn.RemoteAddr().(*net.TCPAddr).Port
	local := conn.LocalAddr().(*net.TCPAddr).Port
	inode := socketInode(remote, local)
	if inode == "" {
		return ""
	}
	nf, err := tryReadNetwork(c.f.dir) // not f.peers: no t.Fatal off the test goroutine
	if err != nil {
		return ""
	}
	for _, p := range nf.Nodes {
		fds, err := os.ReadDir(fmt.Sprintf("/proc/%d/fd", p.PID))
		if err != nil {
			continue
		}
		for _, fd := range fds {
			if l, err := os.Readlink(fmt.Sprintf("/proc/%d/fd/%s", p.PID, fd.Name())); err == nil && l == "socket:["+inode+"]" {
				return p.Name
			}
		}
	}
	return ""
}

// socketInode finds, in /proc/net/tcp, the inode of the socket whose local
// port is lport and remote port rport.
func socketInode(lport, rport int) string {
	for _, table := range []string{"/proc/net/tcp", "/proc/net/tcp6"} {
		fh, err := os.Open(table)
		if err != nil {
			continue
		}
		sc := bufio.NewScanner(fh)
		for sc.Scan() {
			fs := strings.Fields(sc.Text())
			if len(fs) < 10 {
				continue
			}
			if port(fs[1]) == lport && port(fs[2]) == rport {
				fh.Close()
				return fs[9]
			}
		}
		fh.Close()
	}
	return ""
}

func port(hexAddr string) int {
	i := strings.LastIndexByte(hexAddr, ':')
	if i < 0 {
		return -1
	}
	p, err := strconv.ParseUint(hexAddr[i+1:], 16, 16)
	if err != nil {
		return -1
	}
	return int(p)
}

// TestFaultPartitionAndHeal: org1's peers are split 1 | 2 (and org2's
// likewise) by cutting TCP between the sides while blocks stream. Each
// side elects its own leader and follows the orderer; after the heal there
// is exactly one leader per org again and every chain is identical.
func TestFaultPartitionAndHeal(t *testing.T) {
	f := upNet(t, 2, 3, fastFailureEnv...)
	c, proxies := newCutter(t, f)
	// Restart every peer announcing its proxy and bootstrapping through
	// the proxies, so all peer-to-peer traffic crosses the cutter.
	// All stop first: a peer must never learn another's real address.
	peers := f.peers("")
	for _, p := range peers {
		f.stop(p.Name)
	}
	for _, p := range peers {
		var boot []string
		for _, q := range peers {
			if q.Name != p.Name {
				boot = append(boot, proxies[q.Name])
			}
		}
		f.restartWith(p.Name, "BLOCKGOSSIP_PEER_EXTERNALENDPOINT="+proxies[p.Name],
			"BLOCKGOSSIP_PEER_BOOTSTRAP="+strings.Join(boot, ","))
	}
	f.oneLeaderPerOrg(30 * time.Second)
	f.submit(20)
	f.converge(30 * time.Second)

	var a, b []string
	for _, org := range f.orgs() {
		ps := f.peers(org)
		a = append(a, ps[0].Name)
		for _, p := range ps[1:] {
			b = append(b, p.Name)
		}
	}
	fd := f.feed(150*time.Millisecond, 10)
	c.partition(a, b)
	t.Logf("partition %v | %v", a, b)
	// Each side sees only itself, and has a leader per org of its own.
	f.eventually(30*time.Second, "each side sees only itself", func() error {
		for _, side := range [][]string{a, b} {
			for _, n := range side {
				s, err := status(f.node(n))
				if err != nil {
					return err
				}
				if s.LivePeers != len(side)-1 {
					return fmt.Errorf("%s sees %d live peers, its side has %d others", n, s.LivePeers, len(side)-1)
				}
			}
		}
		return nil
	})
	f.eventually(30*time.Second, "a leader per org on each side", func() error {
		ls, err := f.leaders()
		if err != nil {
			return err
		}
		for _, org := range f.orgs() {
			if len(ls[org]) != 2 {
				return fmt.Errorf("org %s leaders %v, want one per side", org, ls[org])
			}
		}
		return nil
	})
	f.follow(30 * time.Second) // both sides keep following the orderer
	fd.stop()
	start := time.Now()
	c.heal()
	f.eventually(60*time.Second, "everyone sees everyone after the heal", func() error {
		for _, p := range peers {
			s, err := status(p)
			if err != nil {
				return err
			}
			if s.LivePeers != len(peers)-1 {
				return fmt.Errorf("%s sees %d live peers", p.Name, s.LivePeers)
			}
		}
		return nil
	})
	leaders := f.oneLeaderPerOrg(30 * time.Second)
	f.submit(20)
	o, _ := f.converge(30 * time.Second)
	recovery(t, "partition + heal", time.Since(start), fmt.Sprintf("leaders %v, height %d", leaders, o.Height))
}
