package sim

import (
	"bytes"
	"context"
	"os"
	"strconv"
	"strings"
	"testing"
)

// The trace follows a churned peer through its crash, restart and
// catch-up, and does not change the run.
func TestTraceFollowsAPeer(t *testing.T) {
	o := small()
	o.Churn = 0.2
	plain := runAll(t, o, ProfileDefault)[0]
	// Find a churned peer: trace everyone once (a small run).
	var all bytes.Buffer
	o.trace = &msgTrace{out: &all, peers: map[int]bool{}}
	for i := range o.Peers {
		o.trace.peers[i] = true
	}
	runAll(t, o, ProfileDefault)
	victim := -1
	for _, l := range strings.Split(all.String(), "\n") {
		if strings.Contains(l, " crashes at height") {
			f := strings.Fields(l)
			victim, _ = strconv.Atoi(f[2])
			break
		}
	}
	if victim < 0 {
		t.Fatal("no crash in the trace of every peer")
	}
	var one bytes.Buffer
	o.trace = &msgTrace{out: &one, peers: map[int]bool{victim: true}}
	traced := runAll(t, o, ProfileDefault)[0]
	if !bytes.Equal(marshal(t, []Result{plain}), marshal(t, []Result{traced})) {
		t.Fatal("tracing changed the run")
	}
	log := one.String()
	for _, want := range []string{strconv.Itoa(victim) + " crashes at height", strconv.Itoa(victim) + " restarts at height",
		"(lost: receiver crashed)", strconv.Itoa(victim) + " commits block", "orderer cuts block"} {
		if !strings.Contains(log, want) {
			t.Errorf("trace of peer %d lacks %q:\n%s", victim, want, log)
		}
	}
}

// TestTrace prints the trace of a churn+loss run for the peers named in
// SIM_TRACE ("peers,seed,profile,peer[,peer...]", e.g. 1000,1,default,987),
// to see why a peer is last in live_tail. Skipped without SIM_TRACE.
func TestTrace(t *testing.T) {
	spec := os.Getenv("SIM_TRACE")
	if spec == "" {
		t.Skip("set SIM_TRACE=peers,seed,profile,peer[,peer...] to trace a churn+loss run (and SIM_NOTICE=1 for Options.CrashNotice)")
	}
	f := strings.Split(spec, ",")
	if len(f) < 4 {
		t.Fatalf("SIM_TRACE=%q: want peers,seed,profile,peer[,peer...]", spec)
	}
	o := DefaultOptions()
	o.Loss, o.Churn = 0.05, 0.1
	o.CrashNotice = os.Getenv("SIM_NOTICE") != ""
	var err error
	if o.Peers, err = strconv.Atoi(f[0]); err != nil {
		t.Fatal(err)
	}
	if o.Seed, err = strconv.ParseUint(f[1], 10, 64); err != nil {
		t.Fatal(err)
	}
	o.trace = &msgTrace{out: os.Stdout, peers: map[int]bool{}}
	for _, p := range f[3:] {
		n, err := strconv.Atoi(p)
		if err != nil {
			t.Fatal(err)
		}
		o.trace.peers[n] = true
	}
	r, err := Run(context.Background(), o, f[2], nil)
	if err != nil {
		t.Fatal(err)
	}
	t.Logf("live %+v steady %+v catch-up %+v tail %+v", r.TimeToLastLive, r.TimeToLastSteady, r.CatchUp, r.LiveTail)
}
