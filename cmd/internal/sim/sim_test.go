package sim

import (
	"bytes"
	"context"
	"errors"
	"math"
	"testing"
	"time"

	"github.com/blockgossip/blockgossip/gossip"
	"go.uber.org/goleak"
)

func TestMain(m *testing.M) { goleak.VerifyTestMain(m) }

// small is a workload that runs in well under a second under -race.
func small() Options {
	o := DefaultOptions()
	o.Peers, o.Blocks, o.BlockSize, o.View = 60, 5, 512, 12
	return o
}

func runAll(t *testing.T, o Options, profiles ...string) []Result {
	t.Helper()
	var runs []Result
	for _, p := range profiles {
		r, err := Run(context.Background(), o, p, nil)
		if err != nil {
			t.Fatalf("Run %s: %v", p, err)
		}
		runs = append(runs, r)
	}
	return runs
}

func marshal(t *testing.T, runs []Result) []byte {
	t.Helper()
	b, err := MarshalJSON(runs)
	if err != nil {
		t.Fatal(err)
	}
	return b
}

// Two runs with the same seed write the same JSON, byte for byte, with
// loss, churn and both profiles in play; another seed writes another.
func TestSameSeedSameJSON(t *testing.T) {
	o := small()
	o.Loss, o.Churn = 0.05, 0.1
	a := marshal(t, runAll(t, o, ProfileDefault, ProfileFabric))
	b := marshal(t, runAll(t, o, ProfileDefault, ProfileFabric))
	if !bytes.Equal(a, b) {
		t.Fatalf("same seed, different JSON:\n%s\n---\n%s", a, b)
	}
	for _, key := range []string{`"runs"`, `"profile"`, `"peers"`, `"delivery_ratio"`, `"time_to_last_ms"`,
		`"amplification"`, `"hops_to_last"`, `"push_once_coverage"`, `"push_pull_rounds"`,
		`"time_to_last_live_ms"`, `"catch_up_ms"`, `"live_tail"`} {
		if !bytes.Contains(a, []byte(key)) {
			t.Errorf("JSON lacks %s", key)
		}
	}
	o.Seed++
	if c := marshal(t, runAll(t, o, ProfileDefault, ProfileFabric)); bytes.Equal(a, c) {
		t.Fatal("another seed gave the same JSON: the seed is not used")
	}
}

// Without loss or churn the default profile delivers every block to every
// peer, with bounded views and with full membership.
func TestDefaultDeliversAll(t *testing.T) {
	for _, view := range []int{12, 0} {
		o := small()
		o.Peers, o.View = 150, view
		r := runAll(t, o, ProfileDefault)[0]
		if r.DeliveryRatio != 1 || r.IncompleteBlocks != 0 || r.Deliveries != o.Peers*o.Blocks {
			t.Fatalf("view %d: delivery %v, %d incomplete, %d deliveries", view, r.DeliveryRatio, r.IncompleteBlocks, r.Deliveries)
		}
		if r.Via.Orderer*float64(r.Deliveries) != float64(o.Blocks) {
			t.Errorf("view %d: %v of deliveries from the orderer, want exactly one per block (the leader)", view, r.Via.Orderer)
		}
		if r.HopsToLast.P50 < 2 || r.TimeToLast.P50 <= 0 || r.MessagesPerPeerPerBlock <= 0 {
			t.Errorf("view %d: implausible figures: hops %v, time to last %v, %v messages", view, r.HopsToLast, r.TimeToLast, r.MessagesPerPeerPerBlock)
		}
		// push_hops (bench's figure) counts the same hops per delivery:
		// every pushed copy made one hop at least, and the deepest is the
		// deepest block's.
		if r.PushHops.Mean < 1 || r.PushHops.Max < r.HopsToLast.P99 {
			t.Errorf("view %d: push hops %+v beside hops to last %+v", view, r.PushHops, r.HopsToLast)
		}
		// Random push to 4 reaches about 1-e^(-4p) of the peers: allow the
		// noise of 150 peers and 5 blocks. (Tree push has no such theory.)
		if th := r.Theory.PushOnceCoverage; th != nil && math.Abs(r.PushCoverage-*th) > 0.05 {
			t.Errorf("view %d: push coverage %.3f, theory %.3f", view, r.PushCoverage, *th)
		}
	}
}

// A block cannot reach a peer sooner than one hop of latency, nor the last
// peer sooner than its hop count allows.
func TestLatencyIsRespected(t *testing.T) {
	o := small()
	o.Latency = "fixed:40ms"
	r := runAll(t, o, ProfileDefault)[0]
	if r.TimeToLastSamples[0] < 40*r.HopsToLast.P50/2 || r.TimeToLast.P50 < 40 {
		t.Fatalf("time to last %v ms with %v hops of 40 ms", r.TimeToLast, r.HopsToLast)
	}
}

// Churned peers crash while blocks are cut and restart with their ledger:
// every one of them still ends with every block.
func TestChurnedPeersCatchUp(t *testing.T) {
	o := small()
	o.Churn = 0.2
	r := runAll(t, o, ProfileDefault)[0]
	if want := 12; r.Crashes != want {
		t.Fatalf("%d crashes, want %d (20%% of 60)", r.Crashes, want)
	}
	if r.DeliveryRatio != 1 {
		t.Fatalf("delivery %v with churn: restarted peers did not catch up", r.DeliveryRatio)
	}
	if r.Via.Pull+r.Via.State == 0 {
		t.Fatal("no block came by pull or state transfer: the crashes missed nothing?")
	}
}

func TestPushOnceCoverage(t *testing.T) {
	for _, c := range []struct{ f, want float64 }{{3, 0.9405}, {4, 0.9802}, {1, 0}, {0.5, 0}} {
		p := PushOnceCoverage(c.f)
		if math.Abs(p-c.want) > 1e-4 {
			t.Errorf("f=%v: %v, want %v", c.f, p, c.want)
		}
		if c.f > 1 && math.Abs(p-(1-math.Exp(-c.f*p))) > 1e-12 {
			t.Errorf("f=%v: %v is not a fixed point of p = 1-e^(-f p)", c.f, p)
		}
	}
}

func TestTheory(t *testing.T) {
	cfg := gossip.DefaultConfig()
	th := theory(cfg, 81)
	if math.Abs(th.PushPullRounds-4) > 1e-9 || math.Abs(th.HopsLogFanout-math.Log(81)/math.Log(4)) > 1e-9 || th.Fanout != 4 {
		t.Fatalf("theory(81) = %+v", th)
	}
	cfg.Tree = true
	if theory(cfg, 81).PushOnceCoverage != nil {
		t.Fatal("push-once coverage reported for tree mode, where it does not apply")
	}
}

func TestParseLatency(t *testing.T) {
	draw := func(n int64) int64 { return n - 1 } // the top of the range
	for _, c := range []struct {
		s        string
		from, to int
		want     time.Duration
	}{
		{"fixed:10ms", 0, 5, 10 * time.Millisecond},
		{"uniform:5ms,15ms", 0, 5, 15 * time.Millisecond},
		{"two-regions:1ms,80ms", 0, 1, time.Millisecond},
		{"two-regions:1ms,80ms", 1, 2, 80 * time.Millisecond},
	} {
		f, err := ParseLatency(c.s)
		if err != nil {
			t.Fatalf("%s: %v", c.s, err)
		}
		if got := f(c.from, c.to, draw); got != c.want {
			t.Errorf("%s %d->%d: %v, want %v", c.s, c.from, c.to, got, c.want)
		}
	}
	for _, s := range []string{"", "fixed", "fixed:10", "uniform:5ms", "uniform:9ms,1ms", "gauss:1ms,2ms", "two-regions:1ms"} {
		if _, err := ParseLatency(s); !errors.Is(err, ErrInvalidOptions) {
			t.Errorf("%q: err %v, want ErrInvalidOptions", s, err)
		}
	}
}

func TestValidate(t *testing.T) {
	if err := DefaultOptions().Validate(); err != nil {
		t.Fatal(err)
	}
	for name, mod := range map[string]func(*Options){
		"one peer":        func(o *Options) { o.Peers = 1 },
		"loss 1":          func(o *Options) { o.Loss = 1 },
		"churn 2":         func(o *Options) { o.Churn = 2 },
		"full 10k":        func(o *Options) { o.Peers, o.View = 10000, 0 },
		"view <= fanout":  func(o *Options) { o.View = 3 },
		"more orgs":       func(o *Options) { o.Orgs = o.Peers + 1 },
		"zero rate":       func(o *Options) { o.Rate = 0 },
		"bad latency":     func(o *Options) { o.Latency = "fast" },
		"oversized block": func(o *Options) { o.BlockSize = 2 << 20 },
	} {
		o := DefaultOptions()
		mod(&o)
		if err := o.Validate(); !errors.Is(err, ErrInvalidOptions) {
			t.Errorf("%s: err %v, want ErrInvalidOptions", name, err)
		}
	}
	if p, err := ParseProfiles(""); err != nil || len(p) != 1 || p[0] != ProfileDefault {
		t.Errorf("no profile: %v %v, want [default]", p, err)
	}
	if p, err := ParseProfiles("default,fabric"); err != nil || len(p) != 2 || p[1] != ProfileFabric {
		t.Errorf("default,fabric: %v %v", p, err)
	}
	if _, err := ParseProfiles("direct"); !errors.Is(err, ErrInvalidOptions) {
		t.Errorf("direct: %v, want ErrInvalidOptions (no orderer-pull model here)", err)
	}
}

// Several orgs: each org's leader is fed, and push within each org
// reaches all of it.
func TestOrgs(t *testing.T) {
	o := small()
	o.Orgs = 3
	r := runAll(t, o, ProfileDefault)[0]
	if perOrg := r.OrdererEgressBytesPerBlock / 3; r.DeliveryRatio != 1 || math.Abs(perOrg-float64(r.MeanBlockBytes)) > 1 {
		t.Fatalf("3 orgs: delivery %v, orderer egress %d for mean block %d", r.DeliveryRatio, r.OrdererEgressBytes, r.MeanBlockBytes)
	}
}

// Fabric's push once to 3 reaches about 1-e^(-3p) = 94% of the peers by
// push alone; pull brings the rest.
func TestFabricPushCoverageMatchesTheory(t *testing.T) {
	o := small()
	o.Peers, o.Blocks, o.View = 300, 8, 16
	r := runAll(t, o, ProfileFabric)[0]
	th := r.Theory.PushOnceCoverage
	if th == nil || math.Abs(*th-0.9405) > 1e-3 {
		t.Fatalf("theory for f=3: %v", th)
	}
	if math.Abs(r.PushCoverage-*th) > 0.03 {
		t.Fatalf("push coverage %.4f, theory %.4f", r.PushCoverage, *th)
	}
	if r.DeliveryRatio != 1 || r.Via.Pull+r.Via.State == 0 {
		t.Fatalf("delivery %v, via %+v: pull should have brought what push missed", r.DeliveryRatio, r.Via)
	}
}
