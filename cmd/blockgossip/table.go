package main

import (
	"context"
	"encoding/hex"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"os"
	"slices"
	"strings"
	"sync"
	"sync/atomic"
	"text/tabwriter"
	"time"

	"github.com/blockgossip/blockgossip/cmd/internal/client"
	"github.com/blockgossip/blockgossip/cmd/internal/netctl"
	"github.com/blockgossip/blockgossip/cmd/internal/node"
	"github.com/blockgossip/blockgossip/identity"
	pb "github.com/blockgossip/blockgossip/protos"
	"google.golang.org/grpc"
)

// runTable shows every node's state until ctx is done: in place on a
// terminal, a new table per refresh otherwise.
func runTable(ctx context.Context, w io.Writer, plan *netPlan, procs []*started, feed *feeder, every time.Duration) {
	httpc := &http.Client{Timeout: 500 * time.Millisecond}
	tty := isTerminal(w)
	tick := time.NewTicker(every)
	defer tick.Stop()
	for {
		var b strings.Builder
		if tty {
			b.WriteString("\033[H\033[2J") // home, clear screen
		}
		renderTable(ctx, &b, httpc, plan, procs, feed)
		if tty {
			b.WriteString("\nCtrl-C stops the network.\n")
		}
		io.WriteString(w, b.String())
		select {
		case <-ctx.Done():
			return
		case <-tick.C:
		}
	}
}

func renderTable(ctx context.Context, w io.Writer, httpc *http.Client, plan *netPlan, procs []*started, feed *feeder) {
	statuses := make([]*node.Status, len(procs))
	ready := make([]bool, len(procs))
	var wg sync.WaitGroup
	for i, p := range procs {
		if p.exited() {
			continue
		}
		wg.Add(1)
		go func() {
			defer wg.Done()
			statuses[i] = fetchStatus(ctx, httpc, p.node.Operations)
			ready[i] = get(ctx, httpc, p.node.Operations, "/readyz") == http.StatusOK
		}()
	}
	wg.Wait()

	fmt.Fprintf(w, "%s  %s\n", time.Now().Format("15:04:05"), plan.dir)
	tw := tabwriter.NewWriter(w, 0, 4, 2, ' ', 0)
	fmt.Fprintln(tw, "NODE\tORG\tPID\tSTATE\tHEIGHT\tTIP\tPEERS\tLEADER")
	leaders := map[string][]string{}
	for i, p := range procs {
		st := statuses[i]
		state := "up"
		if ready[i] {
			state = "ready"
		}
		switch {
		case p.exited():
			state = "down"
		case st == nil:
			state = "starting"
		}
		if st == nil {
			fmt.Fprintf(tw, "%s\t%s\t%d\t%s\t-\t-\t-\t-\n", p.node.Name, p.node.Org, p.node.PID, state)
			continue
		}
		leader := "-"
		if st.Leader != "" {
			leader = plan.nameOf(st.Leader)
		}
		if st.IsLeader {
			leaders[p.node.Org] = append(leaders[p.node.Org], p.node.Name)
		}
		peers := "-"
		if p.node.Role == netctl.RolePeer {
			peers = fmt.Sprint(st.LivePeers)
		}
		fmt.Fprintf(tw, "%s\t%s\t%d\t%s\t%d\t%.12s\t%s\t%s\n", p.node.Name, p.node.Org, p.node.PID, state, st.Height, st.TipHash, peers, leader)
	}
	tw.Flush()
	var orgs []string
	for _, n := range plan.file.Nodes {
		if n.Role == netctl.RolePeer && !slices.Contains(orgs, n.Org) {
			orgs = append(orgs, n.Org)
		}
	}
	for _, org := range orgs {
		l := "none yet"
		if len(leaders[org]) > 0 {
			l = strings.Join(leaders[org], ", ")
		}
		fmt.Fprintf(w, "leader of %s: %s\n", org, l)
	}
	if feed != nil {
		fmt.Fprintf(w, "fed %d transactions of %d bytes at %.3g/s, %d failed", feed.sent.Load(), feed.size, feed.rate, feed.failed.Load())
		if e := feed.lastErr.Load(); e != nil {
			fmt.Fprintf(w, " (last: %v)", *e)
		}
		fmt.Fprintln(w)
	}
}

// get returns the HTTP status of GET path on an operations listener (0 on
// failure).
func get(ctx context.Context, httpc *http.Client, ops, path string) int {
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, "http://"+ops+path, nil)
	if err != nil {
		return 0
	}
	resp, err := httpc.Do(req)
	if err != nil {
		return 0
	}
	_, _ = io.Copy(io.Discard, resp.Body)
	resp.Body.Close()
	return resp.StatusCode
}

func fetchStatus(ctx context.Context, httpc *http.Client, ops string) *node.Status {
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, "http://"+ops+"/status", nil)
	if err != nil {
		return nil
	}
	resp, err := httpc.Do(req)
	if err != nil {
		return nil
	}
	defer resp.Body.Close()
	if resp.StatusCode != http.StatusOK {
		return nil
	}
	var st node.Status
	if json.NewDecoder(resp.Body).Decode(&st) != nil {
		return nil
	}
	return &st
}

// nameOf maps a hex PKI-ID to the node's name.
func (p *netPlan) nameOf(hexID string) string {
	raw, err := hex.DecodeString(hexID)
	if err != nil {
		return hexID
	}
	id, err := identity.PKIIDFromBytes(raw)
	if err != nil {
		return hexID
	}
	if name, ok := p.names[id]; ok {
		return name
	}
	return id.String()
}

func isTerminal(w io.Writer) bool {
	f, ok := w.(*os.File)
	if !ok {
		return false
	}
	fi, err := f.Stat()
	return err == nil && fi.Mode()&os.ModeCharDevice != 0
}

// feeder submits one transaction of size bytes rate times a second to the
// orderer, without waiting for blocks, until its context ends.
type feeder struct {
	rate    float64
	size    int
	sent    atomic.Int64
	failed  atomic.Int64
	lastErr atomic.Pointer[error]
	done    chan struct{}
	conn    *grpc.ClientConn
}

func startFeeder(ctx context.Context, nf *netctl.File, rate float64, size int) (*feeder, error) {
	o, err := nf.Orderer()
	if err != nil {
		return nil, err
	}
	id, msp, err := client.Credentials{Cert: nf.Admin.Cert, Key: nf.Admin.Key, CA: nf.Admin.CA}.Load()
	if err != nil {
		return nil, err
	}
	conn, err := client.Dial(o.Address, id, msp)
	if err != nil {
		return nil, err
	}
	f := &feeder{rate: rate, size: size, done: make(chan struct{}), conn: conn}
	go f.run(ctx, pb.NewAtomicBroadcastClient(conn))
	return f, nil
}

func (f *feeder) run(ctx context.Context, ab pb.AtomicBroadcastClient) {
	defer close(f.done)
	defer f.conn.Close()
	interval := time.Duration(float64(time.Second) / f.rate)
	tick := time.NewTicker(interval)
	defer tick.Stop()
	payload := make([]byte, f.size)
	for n := uint64(0); ; n++ {
		select {
		case <-ctx.Done():
			return
		case <-tick.C:
		}
		tx := slices.Clone(payload)
		copy(tx, fmt.Sprintf("tx-%d-%d", time.Now().UnixNano(), n)) // distinct transactions
		callCtx, cancel := context.WithTimeout(ctx, 5*time.Second)
		_, err := ab.Broadcast(callCtx, &pb.SubmitRequest{Transactions: [][]byte{tx}}, grpc.WaitForReady(true))
		cancel()
		if err != nil {
			if ctx.Err() != nil {
				return
			}
			f.failed.Add(1)
			f.lastErr.Store(&err)
			continue
		}
		f.sent.Add(1)
	}
}

func (f *feeder) wait() { <-f.done }
