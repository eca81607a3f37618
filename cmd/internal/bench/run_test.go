package bench

import (
	"context"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

// tinyOptions is a network small enough that its true figures are known.
func tinyOptions(peers, orgs int) Options {
	o := DefaultOptions()
	o.Transport = TransportMem
	o.Peers, o.Orgs = peers, orgs
	o.Blocks, o.BlockSize = 5, 2000
	o.Rate = 0 // each block once the previous one reached every peer
	o.Drain = 20 * time.Second
	o.WarmupTimeout = 30 * time.Second
	return o
}

// deliverOverhead is what a DeliverResponse adds to a block of this size:
// one tag byte and a two-byte length.
const deliverOverhead = 3

// Direct delivery: every peer gets each block once, from the orderer, and
// nothing else moves. Amplification is one copy per peer (plus the
// DeliverResponse framing), the orderer sends one copy per peer.
func TestTinyDirectRun(t *testing.T) {
	o := tinyOptions(4, 2)
	res, err := Run(context.Background(), o, ProfileDirect, nil, nil)
	require.NoError(t, err)
	require.True(t, res.WarmupComplete)
	assert.Equal(t, 1.0, res.DeliveryRatio)
	assert.Equal(t, 0, res.IncompleteBlocks)
	assert.Equal(t, 4*5, res.Deliveries)
	assert.Equal(t, 1.0, res.Via.Orderer)
	mean := float64(res.MeanBlockBytes)
	assert.Greater(t, mean, 2000.0)
	assert.InDelta(t, (mean+deliverOverhead)/mean, res.Amplification, 1e-3)
	assert.Equal(t, res.Amplification, res.WireAmplification, "no control traffic without gossip")
	assert.InDelta(t, 4*(mean+deliverOverhead), res.OrdererEgressBytesPerBlock, 4)
	assert.Equal(t, res.OrdererEgressBytes, res.BlockBytesReceived)
	assert.Equal(t, 0.0, res.DuplicatesPerDelivery)
	assert.Equal(t, 0.0, res.GraftsPerDelivery, "no tree, no grafts")
	assert.Zero(t, res.LinksPerPeer, "direct peers hear from the orderer only")
	assert.GreaterOrEqual(t, res.Goroutines, o.Peers, "every peer runs at least its node loop")
	assert.Len(t, res.TimeToLastSamples, 5)
	assert.Greater(t, res.TimeToLast.Max, 0.0)
	// Warm-up blocks 1 and 2 reached every peer, untimed: the timed
	// blocks are 3 to 7, and only theirs count above.
	require.Len(t, res.WarmupTimeToLastMs, o.WarmupBlocks)
	for _, ms := range res.WarmupTimeToLastMs {
		assert.Greater(t, ms, 0.0)
	}
	require.Len(t, res.PerBlock, 5)
	assert.Equal(t, uint64(o.WarmupBlocks+1), res.PerBlock[0].Number)
	assert.LessOrEqual(t, res.TimeToLast.P50, res.TimeToLast.Max)
}

// Gossip in one org: one leader reads the orderer, so the orderer sends
// one copy per block and a quarter of the deliveries come from it; the
// other three peers get theirs from peers, at least one copy each.
func TestTinyGossipRun(t *testing.T) {
	o := tinyOptions(4, 1)
	res, err := Run(context.Background(), o, ProfileDefault, nil, nil)
	require.NoError(t, err)
	require.True(t, res.WarmupComplete)
	assert.Equal(t, 1.0, res.DeliveryRatio)
	assert.Equal(t, 0, res.IncompleteBlocks)
	assert.Equal(t, 0.25, res.Via.Orderer)
	assert.Zero(t, res.LeaderTakeovers, "election settled during warm-up")
	// Four peers in one org know each other after warm-up: each heard
	// from at least one of the other three, and from no more than three.
	assert.GreaterOrEqual(t, res.LinksPerPeer, 1.0)
	assert.LessOrEqual(t, res.LinksPerPeer, 3.0)
	assert.LessOrEqual(t, res.NewLinksPerPeer, res.LinksPerPeer)
	assert.GreaterOrEqual(t, res.Goroutines, o.Peers, "every peer runs at least its node loop")
	assert.InDelta(t, 0.75, res.Via.Push+res.Via.Pull+res.Via.State, 1e-12)
	mean := float64(res.MeanBlockBytes)
	assert.InDelta(t, mean+deliverOverhead, res.OrdererEgressBytesPerBlock, 1)
	assert.GreaterOrEqual(t, res.Amplification, 1.0, "every peer received at least one copy")
	assert.GreaterOrEqual(t, res.WireAmplification, res.Amplification, "control bytes only add")
	total := float64(res.BlockBytesReceived + res.ControlBytesReceived)
	assert.InDelta(t, total, res.WireAmplification*float64(res.MeanBlockBytes*4*5), total/1000)
	// Each duplicate is a whole extra copy received: amplification counts
	// it, so it is at least 1 + duplicates per delivery (less framing).
	assert.GreaterOrEqual(t, res.Amplification, 0.99*(1+res.DuplicatesPerDelivery))
}

func TestRunRefusesBadInput(t *testing.T) {
	o := tinyOptions(2, 1)
	_, err := Run(context.Background(), o, "gossipsub", nil, nil)
	assert.ErrorIs(t, err, ErrInvalidOptions)
	o.Peers = 0
	_, err = Run(context.Background(), o, ProfileDefault, nil, nil)
	assert.ErrorIs(t, err, ErrInvalidOptions)
}

func TestRunStopsOnCancel(t *testing.T) {
	o := tinyOptions(3, 1)
	o.Rate, o.Blocks = 1, 1000 // would take 1000 s
	ctx, cancel := context.WithCancel(context.Background())
	calls := 0
	res, err := Run(ctx, o, ProfileDirect, func(phase string, complete, cut, total int) {
		calls++
		if cut >= 2 {
			cancel()
		}
	}, nil)
	assert.ErrorIs(t, err, context.Canceled)
	assert.Greater(t, calls, 0)
	assert.GreaterOrEqual(t, len(res.TimeToLastSamples), 0)
	assert.Equal(t, 1000, res.Blocks)
	assert.Less(t, res.DeliveryRatio, 0.01, "reports what it delivered, counting the uncut blocks against it")
}
