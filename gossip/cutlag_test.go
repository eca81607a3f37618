package gossip

import (
	"slices"
	"testing"

	"github.com/blockgossip/blockgossip/identity"
	pb "github.com/blockgossip/blockgossip/protos"
)

// stamped returns env with the cut stamp set.
func stamped(env *pb.Envelope, stamp uint64) *pb.Envelope {
	env.Stamp = stamp
	return env
}

// stampedIHave is ihaveEnv with the cut stamp set.
func stampedIHave(n uint64, b *pb.Block, hops uint32, stamp uint64) *pb.Envelope {
	env := ihaveEnv(n, b, hops)
	msg, _ := decode(env)
	msg.GetIhave().Stamp = stamp
	return envelope(msg)
}

// cutLagPeer is graftPeer's peer 3 after its parent pushed it blocks
// 0..copies-1 (one block per sub-tick, from sub-tick 1 of a tick), each
// lag sub-ticks after its cut stamp, or without a stamp if lag < 0.
func cutLagPeer(t *testing.T, cfg Config, seed uint64, copies int, lag int) (*Peer, []*pb.Block) {
	t.Helper()
	cfg.PullEnabled = false
	net := seededNet(t, 5, cfg, seed)
	net.ticks(2)
	p := net.peers[3].p
	net.collect(net.peers[3])
	chain := makeChain(testOrderer, copies+1, seed)
	for i := range copies {
		p.SubTick(1 + i)
		env := pushEnv(chain[i], 2)
		if lag >= 0 {
			env = stamped(env, p.sub-uint64(lag)+1)
		}
		p.Step(fakeID(0), "org1", env, 0)
		p.Ready()
	}
	return p, chain
}

// Our parent's copies come two sub-ticks after their cut. The next block's
// copy is lost, and the first IHave for it comes four sub-ticks after its
// cut, from a single announcer (no quorum): the copy is overdue by our
// own clock, so the graft goes at once, not at the graft timeout's floor
// two sub-ticks later. Not so with CutLagGraft off, nor before
// minCutLagCopies stamped copies have taught the lag, nor when the IHave
// carries no stamp (or one out of bounds).
func TestCutLagGraftsAnOverdueCopyAtItsFirstIHave(t *testing.T) {
	a := fakeID(1)
	for _, tc := range []struct {
		name      string
		off       bool
		unstamped bool // our parent's copies carried no stamp
		copies    int
		stamp     bool
		huge      bool // a stamp beyond maxStamp (a peer's lie)
		want      int  // sub-tick of the graft, counted from the IHave's
	}{
		{name: "overdue by the cut lag", copies: 3, stamp: true, want: 0},
		{name: "CutLagGraft off", off: true, copies: 3, stamp: true, want: 2},
		{name: "copies without stamps", unstamped: true, copies: 3, stamp: true, want: 2},
		{name: "too few copies taught the lag", copies: minCutLagCopies - 1, stamp: true, want: 2},
		{name: "IHave without a stamp", copies: 3, want: 2},
		{name: "IHave with a stamp out of bounds", copies: 3, stamp: true, huge: true, want: 2},
	} {
		t.Run(tc.name, func(t *testing.T) {
			cfg := lossyConfig()
			cfg.CutLagGraft = !tc.off
			lag := 2
			if tc.unstamped {
				lag = -1
			}
			p, chain := cutLagPeer(t, cfg, 80, tc.copies, lag)
			n := uint64(tc.copies)
			p.SubTick(tc.copies + 1)
			ih := ihaveEnv(n, chain[n], 2)
			switch {
			case tc.huge:
				ih = stampedIHave(n, chain[n], 2, ^uint64(0))
			case tc.stamp:
				ih = stampedIHave(n, chain[n], 2, p.sub-4+1) // cut four sub-ticks ago
			}
			p.Step(a, "org1", ih, 0)
			p.Ready()
			got := -1
			for k := 0; k <= 3 && got < 0; k++ {
				if at := p.sub + uint64(min(k, 1)); at%p.resolution() == 0 {
					p.Tick() // the sub-tick after the tick's last is the next tick's first
				} else {
					p.SubTick(int(at % p.resolution()))
				}
				if g := graftedTo(p.Ready().Messages, a); slices.Equal(g, []identity.PKIID{a}) {
					got = k
				}
			}
			if got != tc.want {
				t.Fatalf("grafted %d sub-ticks after the IHave, want %d (cut lag %d over %d copies)", got, tc.want, p.cutLag(), p.cutLagN)
			}
		})
	}
}

// The lag jumps to a later copy at once and decays by a sixteenth of the
// gap (in eighths of a sub-tick) on an earlier one, so a copy one
// sub-tick early does not drop it by a whole sub-tick; a copy off the
// estimate by more than MaxGraftTimeout comes from another leader's
// clock, and the estimate starts over from it (and needs minCutLagCopies
// copies again).
func TestCutLagLearnsLateAtOnceAndStartsOverOnAnotherClock(t *testing.T) {
	cfg := lossyConfig()
	p, _ := cutLagPeer(t, cfg, 81, 3, 2)
	if p.cutLag() != 2 || p.cutLagN != minCutLagCopies {
		t.Fatalf("after 3 copies 2 sub-ticks after their cut: lag %d over %d copies, want 2 over %d", p.cutLag(), p.cutLagN, minCutLagCopies)
	}
	p.observeCutLag(p.sub - 6 + 1) // a copy 6 sub-ticks after its cut
	if p.cutLagX8 != 48 {
		t.Fatalf("lag %d eighths after a copy 6 sub-ticks late, want 48 (a jump)", p.cutLagX8)
	}
	p.observeCutLag(p.sub - 5 + 1)
	if p.cutLagX8 != 47 || p.cutLag() != 6 {
		t.Fatalf("lag %d eighths (%d sub-ticks) after a copy 5 sub-ticks late, want 47 (48 - ceil(8/16)), 6 rounded up", p.cutLagX8, p.cutLag())
	}
	p.observeCutLag(p.sub - 2 + 1)
	if p.cutLagX8 != 45 {
		t.Fatalf("lag %d eighths after a copy 2 sub-ticks late, want 45 (47 - ceil(31/16))", p.cutLagX8)
	}
	p.observeCutLag(0)
	if p.cutLagX8 != 45 {
		t.Fatalf("a copy without a stamp changed the lag: %d eighths", p.cutLagX8)
	}
	for _, bad := range []uint64{maxStamp + 1, ^uint64(0)} {
		p.observeCutLag(bad) // out of bounds: ignored, not an overflowed lag
		if p.cutLagX8 != 45 {
			t.Fatalf("stamp %d changed the lag: %d eighths", bad, p.cutLagX8)
		}
	}
	far := p.sub + p.maxGraftSub() + 100 // a stamp from a clock far ahead of the last leader's
	p.observeCutLag(far)
	if want := int64(p.sub) - int64(far-1); p.cutLag() != want || p.cutLagN != 1 {
		t.Fatalf("after a stamp from another clock: lag %d over %d copies, want %d over 1 (started over)", p.cutLag(), p.cutLagN, want)
	}
}

// The leader stamps a block it takes from the orderer with its tree clock
// (plus one), and every push and IHave of that block, from the leader and
// from the peers that forward it, carries the same stamp.
func TestCutStampTravelsWithPushesAndIHaves(t *testing.T) {
	cfg := DefaultConfig()
	cfg.PullEnabled = false
	net := seededNet(t, 12, cfg, 82)
	net.ticks(3)
	chain := makeChain(testOrderer, 2, 82)
	leader := net.peers[0].p
	var pushes, forwards, ihaves int
	var bad []uint64
	want := uint64(0)
	net.filter = func(m simMsg) bool {
		msg, err := decode(m.env)
		switch {
		case err != nil:
		case msg.GetBlock() != nil:
			pushes++
			if m.from != leader.self.ID {
				forwards++
			}
			if m.env.GetStamp() != want {
				bad = append(bad, m.env.GetStamp())
			}
		case msg.GetIhave() != nil:
			ihaves++
			if msg.GetIhave().GetStamp() != want {
				bad = append(bad, msg.GetIhave().GetStamp())
			}
		}
		return true
	}
	for i, b := range chain {
		leader.SubTick(2)
		want = leader.sub + 1
		net.inject(0, b)
		net.ticks(1) // the IHaves go out after their delay
		if len(bad) > 0 {
			t.Fatalf("block %d cut at stamp %d: pushes or IHaves carried %v", i, want, bad)
		}
	}
	if pushes == 0 || forwards == 0 || ihaves == 0 {
		t.Fatalf("saw %d pushes (%d forwarded) and %d IHaves; the test needs some of each", pushes, forwards, ihaves)
	}
}
