package tests

import (
	"bufio"
	"fmt"
	"strconv"
	"strings"
	"testing"
	"time"
)

// TestIdleStreamsRetiredAndRedialled: with comm.idletimeout at one second
// (BLOCKGOSSIP_COMM_IDLETIMEOUT reaches every node network up starts), the
// peers of a running network retire the streams that fall silent (relay
// neighbours rotate, membership syncs and far pull rounds go to one peer
// and move on), and the network keeps delivering: blocks submitted after
// the retirements reach every peer, over streams dialled anew.
func TestIdleStreamsRetiredAndRedialled(t *testing.T) {
	if testing.Short() {
		t.Skip("multi-process test; skipped with -short")
	}
	t.Setenv("BLOCKGOSSIP_COMM_IDLETIMEOUT", "1s")
	dir, net := upNetwork(t)

	reaped := func() (uint64, error) {
		var sum uint64
		for _, n := range net.Nodes {
			if n.Role != "peer" {
				continue
			}
			v, err := metric(n.Operations, "blockgossip_comm_streams_reaped_total")
			if err != nil {
				return 0, fmt.Errorf("%s: %v (log %s)", n.Name, err, n.Log)
			}
			sum += uint64(v)
		}
		return sum, nil
	}
	var before uint64
	eventually(t, 90*time.Second, "a peer retires an idle stream", func() error {
		var err error
		if before, err = reaped(); err != nil {
			return err
		}
		if before == 0 {
			return fmt.Errorf("no stream retired yet")
		}
		return nil
	})
	t.Logf("%d streams retired across the 6 peers", before)

	run(t, time.Minute, "submit", "--network", dir, "--count", "20", "--size", "256")
	eventually(t, 60*time.Second, "every peer at the orderer's height and tip after streams were retired", func() error {
		_, err := atOrdererTip(t, dir, net)
		return err
	})
	after, err := reaped()
	if err != nil {
		t.Fatal(err)
	}
	t.Logf("%d streams retired by the end", after)
}

// metricsText fetches the node's /metrics.
func metricsText(addr string) (string, error) {
	code, body, err := getOps(addr, "/metrics")
	if err != nil {
		return "", err
	}
	if code != 200 {
		return "", fmt.Errorf("GET /metrics: status %d", code)
	}
	return body, nil
}

// metricSum adds up every sample of metric name (any labels) on the
// node's /metrics: 0 when there is none yet.
func metricSum(addr, name string) (float64, error) {
	body, err := metricsText(addr)
	if err != nil {
		return 0, err
	}
	var sum float64
	sc := bufio.NewScanner(strings.NewReader(body))
	for sc.Scan() {
		line := sc.Text()
		if rest, ok := strings.CutPrefix(line, name); ok && (strings.HasPrefix(rest, " ") || strings.HasPrefix(rest, "{")) {
			v, err := strconv.ParseFloat(line[strings.LastIndexByte(line, ' ')+1:], 64)
			if err != nil {
				return 0, fmt.Errorf("%q: %v", line, err)
			}
			sum += v
		}
	}
	return sum, nil
}

// metric reads one unlabelled sample from the node's /metrics.
func metric(addr, name string) (float64, error) {
	body, err := metricsText(addr)
	if err != nil {
		return 0, err
	}
	sc := bufio.NewScanner(strings.NewReader(body))
	for sc.Scan() {
		if v, ok := strings.CutPrefix(sc.Text(), name+" "); ok {
			return strconv.ParseFloat(v, 64)
		}
	}
	return 0, fmt.Errorf("/metrics has no %s", name)
}
