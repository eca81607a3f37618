package bench

import (
	"encoding/json"
	"errors"
	"image/png"
	"math"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/blockgossip/blockgossip/gossip"
	"github.com/blockgossip/blockgossip/identity"
	pb "github.com/blockgossip/blockgossip/protos"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
	"go.uber.org/goleak"
	"google.golang.org/protobuf/proto"
)

// goleveldb's mpoolDrain goroutine (the orderer's ledger) outlives
// DB.Close by up to a second (upstream behaviour); every other goroutine a
// run starts must be gone.
//
// With BENCH_TEST_CHILD set, the test binary plays the child process of
// TestRunChild: it parses ChildArgs and prints the Result, as
// `blockgossip bench --child-profile` does.
func TestMain(m *testing.M) {
	if os.Getenv("BENCH_TEST_CHILD") != "" {
		os.Exit(testChild(os.Args[1:]))
	}
	goleak.VerifyTestMain(m, goleak.IgnoreTopFunction("github.com/syndtr/goleveldb/leveldb.(*DB).mpoolDrain"))
}

func TestNearestRank(t *testing.T) {
	ten := []float64{1, 2, 3, 4, 5, 6, 7, 8, 9, 10}
	for _, c := range []struct {
		p    float64
		want float64
	}{{50, 5}, {90, 9}, {99, 10}, {100, 10}, {10, 1}, {11, 2}, {1, 1}} {
		assert.Equal(t, c.want, NearestRank(ten, c.p), "p%v", c.p)
	}
	assert.Equal(t, 7.0, NearestRank([]float64{7}, 50))
	assert.Equal(t, 0.0, NearestRank(nil, 99))
}

// A network of 2 peers, 3 blocks of 1000 bytes, whose true figures are
// worked out by hand below.
func TestComputeKnownNetwork(t *testing.T) {
	t0 := time.Unix(1000, 0)
	at := func(d time.Duration) time.Time { return t0.Add(d) }
	ms := time.Millisecond
	r := Record{
		Peers: 2,
		Cuts: []Cut{
			{Number: 1, At: at(0), Bytes: 1000},
			{Number: 2, At: at(time.Second), Bytes: 1000},
			{Number: 3, At: at(2 * time.Second), Bytes: 1000},
		},
		Deliveries: []Delivery{
			{Peer: 0, Number: 1, At: at(10 * ms), Via: gossip.ViaOrderer},
			{Peer: 1, Number: 1, At: at(30 * ms), Via: gossip.ViaPush, Hops: 3},
			{Peer: 1, Number: 1, At: at(90 * ms), Via: gossip.ViaPush, Hops: 7}, // second commit of (1, 1): ignored
			{Peer: 0, Number: 2, At: at(time.Second + 20*ms), Via: gossip.ViaOrderer},
			{Peer: 1, Number: 2, At: at(time.Second + 40*ms), Via: gossip.ViaPull},
			{Peer: 0, Number: 3, At: at(2*time.Second + 5*ms), Via: gossip.ViaPush, Hops: 1}, // block 3 never reaches peer 1
			{Peer: 0, Number: 9, At: at(3 * time.Second), Via: gossip.ViaPush, Hops: 9},      // not a timed block: ignored
		},
		Traffic: Traffic{BlockBytes: 7000, ControlBytes: 500, OrdererEgressBytes: 3000, Duplicates: 1, Grafts: 3, GraftRepeats: 2, TreeGrafts: 1,
			Messages: map[string]uint64{"block": 4, "ihave": 6}},
	}
	f := Compute(r)
	assert.InDelta(t, 5.0/6, f.DeliveryRatio, 1e-12)
	assert.Equal(t, 1, f.IncompleteBlocks)
	// Complete blocks 1 and 2 took 30 and 40 ms to reach their last peer.
	assert.Equal(t, Percentiles{P50: 30, P90: 40, P99: 40, Max: 40}, f.TimeToLast)
	assert.Equal(t, []float64{30, 40}, f.TimeToLastSamples)
	// In cut order, with the last peer and how it got the block.
	assert.Equal(t, []BlockTiming{
		{Number: 1, CutMs: 0, TimeToLastMs: 30, LastPeer: 1, LastVia: "push", LastHops: 3},
		{Number: 2, CutMs: 1000, TimeToLastMs: 40, LastPeer: 1, LastVia: "pull"},
	}, f.PerBlock)
	// Per-peer latencies of complete blocks: 10, 20, 30, 40 ms.
	assert.Equal(t, PeerLatency{P50: 20, P99: 40}, f.PeerLatency)
	// 7000 block bytes over 1000 bytes x 2 peers x 3 blocks.
	assert.InDelta(t, 7000.0/6000, f.Amplification, 1e-12)
	assert.InDelta(t, 7500.0/6000, f.WireAmplification, 1e-12)
	assert.InDelta(t, 1.0/5, f.DuplicatesPerDelivery, 1e-12)
	assert.InDelta(t, 3.0/5, f.GraftsPerDelivery, 1e-12)
	assert.InDelta(t, 2.0/5, f.GraftRepeatsPerDelivery, 1e-12)
	assert.InDelta(t, 1.0/5, f.TreeGraftsPerDelivery, 1e-12)
	assert.InDelta(t, 10.0/5, f.MessagesPerDelivery, 1e-12)
	assert.Equal(t, map[string]float64{"block": 4.0 / 5, "ihave": 6.0 / 5}, f.MessagesPerDeliveryByType)
	assert.InDelta(t, 1000.0, f.OrdererEgressBytesPerBlock, 1e-12)
	assert.InDelta(t, 0.4, f.Via.Orderer, 1e-12)
	assert.InDelta(t, 0.4, f.Via.Push, 1e-12)
	assert.InDelta(t, 0.2, f.Via.Pull, 1e-12)
	assert.InDelta(t, 0.0, f.Via.State, 1e-12)
	// Hops of the counted push deliveries only: 3 and 1.
	assert.Equal(t, HopFigures{Mean: 2, P50: 1, P99: 3, Max: 3}, f.PushHops)
	// Window: first cut to the last counted commit, 2.005 s; 2 complete
	// blocks and 5 x 1000 committed bytes in it.
	assert.InDelta(t, 2/2.005, f.BlocksPerS, 1e-9)
	assert.InDelta(t, 5000/2.005/1e6, f.MBPerS, 1e-12)
}

// With the peers' PKI-IDs, each block's per-block timing carries the way
// its last peer's copy came: orderer -> 0 -> 2 -> 1 here, with when each
// step committed it. A sender not in the record ends the path.
func TestComputeTracesTheLastPeersPath(t *testing.T) {
	t0 := time.Unix(1000, 0)
	ms := time.Millisecond
	ids := []identity.PKIID{{1}, {2}, {3}}
	r := Record{
		Peers:   3,
		PeerIDs: ids,
		Cuts:    []Cut{{Number: 1, At: t0, Bytes: 10}, {Number: 2, At: t0.Add(time.Second), Bytes: 10}},
		Deliveries: []Delivery{
			{Peer: 0, Number: 1, At: t0.Add(5 * ms), Via: gossip.ViaOrderer, From: ids[0]},
			{Peer: 2, Number: 1, At: t0.Add(9 * ms), Via: gossip.ViaPush, Hops: 1, From: ids[0]},
			{Peer: 1, Number: 1, At: t0.Add(80 * ms), Via: gossip.ViaPush, Hops: 2, From: ids[2]},
			{Peer: 0, Number: 2, At: t0.Add(time.Second + 5*ms), Via: gossip.ViaOrderer, From: ids[0]},
			{Peer: 1, Number: 2, At: t0.Add(time.Second + 7*ms), Via: gossip.ViaPush, Hops: 1, From: ids[0]},
			{Peer: 2, Number: 2, At: t0.Add(time.Second + 30*ms), Via: gossip.ViaPull, From: identity.PKIID{9}},
		},
	}
	f := Compute(r)
	require.Len(t, f.PerBlock, 2)
	assert.Equal(t, []PathStep{
		{Peer: 0, AtMs: 5, Via: "orderer"},
		{Peer: 2, AtMs: 9, Via: "push", Hops: 1},
		{Peer: 1, AtMs: 80, Via: "push", Hops: 2},
	}, f.PerBlock[0].LastPath, "the stall is between peer 2 (9 ms) and peer 1 (80 ms)")
	assert.Equal(t, []PathStep{{Peer: 2, AtMs: 30, Via: "pull"}}, f.PerBlock[1].LastPath, "an unknown sender ends the path")
	r.PeerIDs = nil
	assert.Nil(t, Compute(r).PerBlock[0].LastPath, "no PKI-IDs, no paths")
}

func TestComputeDirectDeliveryIsOne(t *testing.T) {
	// Every peer gets each block once from the orderer and nothing else:
	// amplification is 1.0 by construction.
	t0 := time.Unix(0, 0)
	r := Record{Peers: 3}
	for n := uint64(1); n <= 4; n++ {
		r.Cuts = append(r.Cuts, Cut{Number: n, At: t0, Bytes: 500})
		for p := range 3 {
			r.Deliveries = append(r.Deliveries, Delivery{Peer: p, Number: n, At: t0.Add(time.Duration(p+1) * time.Millisecond), Via: gossip.ViaOrderer})
		}
	}
	r.Traffic = Traffic{BlockBytes: 500 * 3 * 4, OrdererEgressBytes: 500 * 3 * 4}
	f := Compute(r)
	assert.Equal(t, 1.0, f.Amplification)
	assert.Equal(t, 1.0, f.WireAmplification)
	assert.Equal(t, 1.0, f.DeliveryRatio)
	assert.Equal(t, 1.0, f.Via.Orderer)
	assert.Equal(t, 1500.0, f.OrdererEgressBytesPerBlock)
	assert.Equal(t, 3.0, f.TimeToLast.Max)
}

func TestComputeNothingCompleteStillNumbers(t *testing.T) {
	t0 := time.Unix(0, 0)
	f := Compute(Record{Peers: 2, Cuts: []Cut{{Number: 1, At: t0, Bytes: 10}},
		Deliveries: []Delivery{{Peer: 0, Number: 1, At: t0, Via: gossip.ViaOrderer}}})
	assert.Equal(t, 1, f.IncompleteBlocks)
	assert.Equal(t, 0.5, f.DeliveryRatio)
	b, err := json.Marshal(f)
	require.NoError(t, err)
	assert.Contains(t, string(b), `"time_to_last_ms":{"p50":0,"p90":0,"p99":0,"max":0}`)
	assert.Contains(t, string(b), `"time_to_last_samples_ms":[]`)

	uncut := Compute(Record{Peers: 2, Planned: 4, Cuts: []Cut{{Number: 1, At: t0, Bytes: 10}},
		Deliveries: []Delivery{{Peer: 0, Number: 1, At: t0}, {Peer: 1, Number: 1, At: t0}}})
	assert.Equal(t, 3, uncut.IncompleteBlocks, "planned blocks never cut count as incomplete")
	assert.Equal(t, 0.25, uncut.DeliveryRatio)

	empty := Compute(Record{})
	assert.Equal(t, Figures{TimeToLastSamples: []float64{}, PerBlock: []BlockTiming{}}, empty)
}

func TestCarriesBlocksClassifiesByMessageType(t *testing.T) {
	env := func(m *pb.GossipMessage) *pb.Envelope {
		b, err := proto.Marshal(m)
		require.NoError(t, err)
		return &pb.Envelope{Payload: b, Signature: []byte("sig")}
	}
	blk := &pb.Block{Header: []byte("h"), Data: &pb.BlockData{Transactions: [][]byte{[]byte("tx")}}}
	body := []*pb.GossipMessage{
		{Content: &pb.GossipMessage_Block{Block: &pb.BlockMessage{Block: blk, Hops: 2}}},
		{Content: &pb.GossipMessage_PullResponse{PullResponse: &pb.PullResponse{Nonce: 1, Blocks: []*pb.Block{blk}}}},
		{Content: &pb.GossipMessage_StateResponse{StateResponse: &pb.StateResponse{Nonce: 1, Blocks: []*pb.Block{blk}}}},
	}
	for _, m := range body {
		assert.True(t, carriesBlocks(messageField(env(m))), "%T", m.Content)
	}
	// The counted types are named as in gossip.proto.
	assert.Equal(t, "block", messageName(int(messageField(env(body[0])))))
	assert.Equal(t, "ihave", messageName(int(messageField(env(&pb.GossipMessage{Content: &pb.GossipMessage_Ihave{Ihave: &pb.IHave{Number: 3}}})))))
	assert.Equal(t, "membership_batch", messageName(17))
	assert.Equal(t, "unreadable", messageName(0))
	assert.Equal(t, "unreadable", messageName(maxMessageField))
	control := []*pb.GossipMessage{
		{Content: &pb.GossipMessage_Alive{Alive: &pb.AliveMessage{Incarnation: 1}}},
		{Content: &pb.GossipMessage_PullHello{PullHello: &pb.PullHello{Nonce: 1}}},
		{Content: &pb.GossipMessage_PullDigest{PullDigest: &pb.PullDigest{Nonce: 1}}},
		{Content: &pb.GossipMessage_PullRequest{PullRequest: &pb.PullRequest{Nonce: 1}}},
		{Content: &pb.GossipMessage_StateRequest{StateRequest: &pb.StateRequest{Nonce: 1}}},
		{Content: &pb.GossipMessage_Leadership{Leadership: &pb.LeadershipMessage{Org: "org1"}}},
		{Content: &pb.GossipMessage_Ihave{Ihave: &pb.IHave{Number: 3}}},
	}
	for _, m := range control {
		assert.False(t, carriesBlocks(messageField(env(m))), "%T", m.Content)
	}
	assert.False(t, carriesBlocks(messageField(&pb.Envelope{})))
	assert.False(t, carriesBlocks(messageField(&pb.Envelope{Payload: []byte{0xff, 0xff, 0xff}})))
	assert.False(t, carriesBlocks(messageField(nil)))
}

func TestOptionsValidate(t *testing.T) {
	require.NoError(t, DefaultOptions().Validate())
	bad := []func(*Options){
		func(o *Options) { o.Transport = "udp" },
		func(o *Options) { o.Peers = 0 },
		func(o *Options) { o.Orgs = o.Peers + 1 },
		func(o *Options) { o.Blocks = 0 },
		func(o *Options) { o.BlockSize = 2 << 20 },
		func(o *Options) { o.Rate = -1 },
		func(o *Options) { o.Drain = 0 },
	}
	for i, mut := range bad {
		o := DefaultOptions()
		mut(&o)
		assert.ErrorIs(t, o.Validate(), ErrInvalidOptions, "case %d", i)
	}
	_, err := ParseProfiles("fabric,nope")
	assert.ErrorIs(t, err, ErrInvalidOptions)
	ps, err := ParseProfiles(" fabric, direct ")
	require.NoError(t, err)
	assert.Equal(t, []string{"fabric", "direct"}, ps)
}

func TestJSONHasTheContractKeys(t *testing.T) {
	path := filepath.Join(t.TempDir(), "out.json")
	r := Result{Profile: "default", Transport: "mem", Peers: 3, Orgs: 1, BlockSize: 100, Blocks: 2}
	r.Figures = Compute(Record{})
	require.NoError(t, WriteJSON(path, []Result{r}))
	raw, err := os.ReadFile(path)
	require.NoError(t, err)
	var doc struct {
		Runs []map[string]any `json:"runs"`
	}
	require.NoError(t, json.Unmarshal(raw, &doc))
	require.Len(t, doc.Runs, 1)
	for _, k := range []string{"profile", "transport", "peers", "orgs", "block_size", "blocks", "delivery_ratio",
		"time_to_last_ms", "peer_latency_ms", "amplification", "wire_amplification", "duplicates_per_delivery",
		"orderer_egress_bytes_per_block", "incomplete_blocks", "blocks_per_s", "mb_per_s", "cpu_seconds", "peak_rss_bytes", "gc_cycles", "alloc_bytes"} {
		assert.Contains(t, doc.Runs[0], k)
	}
	ttl, ok := doc.Runs[0]["time_to_last_ms"].(map[string]any)
	require.True(t, ok)
	for _, k := range []string{"p50", "p90", "p99", "max"} {
		_, isNum := ttl[k].(float64)
		assert.True(t, isNum, "time_to_last_ms.%s is a number", k)
	}
}

func TestPlots(t *testing.T) {
	dir := t.TempDir()
	runs := []Result{
		{Profile: "default", Peers: 4, BlockSize: 1024, Blocks: 3, Figures: Figures{TimeToLastSamples: []float64{1.5, 3, 40}}},
		{Profile: "fabric", Peers: 4, BlockSize: 1024, Blocks: 3, Figures: Figures{TimeToLastSamples: []float64{2, 4000}, IncompleteBlocks: 1}},
		{Profile: "direct", Peers: 4, BlockSize: 1024, Blocks: 3, Figures: Figures{TimeToLastSamples: []float64{}}},
	}
	svg := filepath.Join(dir, "cdf.svg")
	require.NoError(t, WritePlot(svg, runs))
	b, err := os.ReadFile(svg)
	require.NoError(t, err)
	for _, want := range []string{"<svg", "default", "fabric (1 incomplete)", "direct", "polyline"} {
		assert.Contains(t, string(b), want)
	}
	assert.Equal(t, 2, strings.Count(string(b), "<polyline"), "a run without samples draws no curve")

	pngPath := filepath.Join(dir, "cdf.png")
	require.NoError(t, WritePlot(pngPath, runs))
	f, err := os.Open(pngPath)
	require.NoError(t, err)
	defer f.Close()
	img, err := png.Decode(f)
	require.NoError(t, err)
	assert.Equal(t, plotW, img.Bounds().Dx())

	assert.True(t, errors.Is(WritePlot(filepath.Join(dir, "cdf.jpg"), runs), ErrPlotFormat))

	// The fabric curve stops at 2/3: its third block never completed.
	p := newPlot(runs)
	last := p.series[1].points[len(p.series[1].points)-1]
	assert.InDelta(t, p.y(2.0/3), last[1], 1e-9)
	assert.False(t, math.IsNaN(last[0]))
}

func TestTablesPrintEveryRun(t *testing.T) {
	runs := []Result{
		{Profile: "default", Peers: 10, Orgs: 2, BlockSize: 1024, Blocks: 30, Rate: 5, Transport: "mem",
			Figures: Figures{DeliveryRatio: 1, TimeToLast: Percentiles{P50: 10, P99: 20}, OrdererEgressBytesPerBlock: 2048}},
		{Profile: "direct", Peers: 10, Orgs: 2, BlockSize: 1024, Blocks: 30, Rate: 5, Transport: "mem",
			Figures: Figures{DeliveryRatio: 1, TimeToLast: Percentiles{P50: 5, P99: 40}, OrdererEgressBytesPerBlock: 10240}},
	}
	var b strings.Builder
	WriteTable(&b, runs)
	WriteRatios(&b, runs)
	WriteGridTable(&b, runs)
	out := b.String()
	assert.Contains(t, out, "10 peers in 2 orgs over mem, 30 blocks of 1 KiB at 5 blocks/s")
	assert.Contains(t, out, "default / direct")
	assert.Regexp(t, `time to last peer p50\s+2\.00`, out)
	assert.Regexp(t, `time to last peer p99\s+0\.50`, out)
	assert.Regexp(t, `orderer egress bytes per block\s+0\.20`, out)
	assert.Equal(t, 2, strings.Count(out, "1 KiB  "), "one grid line per run")
}
