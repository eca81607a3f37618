package sim

import (
	"testing"

	"github.com/blockgossip/blockgossip/gossip"
)

// withResolution runs o's default profile with the tree clock at res
// sub-ticks per tick (1: on the tick clock).
func withResolution(t *testing.T, o Options, res int) Result {
	t.Helper()
	o.editConfig = func(c *gossip.Config) { c.TreeResolution = res }
	return runAll(t, o, ProfileDefault)[0]
}

// Sub-ticks are scheduled only while a peer has a tree or pull timer
// pending: a healthy run handles few more events than on the tick clock
// (an idle peer at the profile's 10 sub-ticks per tick would add nine
// events per tick).
// Under loss, a lost copy is repaired sooner: the slowest block reaches
// its last live peer sooner than on the tick clock.
func TestSubTicksOnlyWhilePending(t *testing.T) {
	o := small()
	o.Blocks = 10
	tick, sub := withResolution(t, o, 1), runAll(t, o, ProfileDefault)[0]
	t.Logf("healthy: events %d -> %d, p99 %.1f -> %.1f ms", tick.Events, sub.Events, tick.TimeToLast.P99, sub.TimeToLast.P99)
	if float64(sub.Events) > 1.25*float64(tick.Events) {
		t.Fatalf("sub-ticks: %d events, on the tick %d: more than 25%% more: idle peers are woken", sub.Events, tick.Events)
	}
	o.Loss = 0.05
	tick, sub = withResolution(t, o, 1), runAll(t, o, ProfileDefault)[0]
	t.Logf("5%% loss: events %d -> %d, live p99 %.1f -> %.1f ms", tick.Events, sub.Events, tick.TimeToLastLive.P99, sub.TimeToLastLive.P99)
	if sub.DeliveryRatio != 1 || sub.TimeToLastLive.P99 >= tick.TimeToLastLive.P99 {
		t.Fatalf("5%% loss: delivery %v, live p99 %.1f ms with sub-ticks, %.1f on the tick: want delivery 1 and a shorter tail",
			sub.DeliveryRatio, sub.TimeToLastLive.P99, tick.TimeToLastLive.P99)
	}
}
