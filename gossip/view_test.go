package gossip

import (
	"testing"

	pb "github.com/blockgossip/blockgossip/protos"
	"google.golang.org/protobuf/proto"
)

// With a bounded view (MaxView), a peer never knows more than MaxView
// members whatever it is told, sends its alive straight to each of them
// (no relays), keeps them alive over many alive rounds, and blocks still
// reach every peer: push within the views, pull from the view members.
func TestBoundedView(t *testing.T) {
	const n, view = 30, 6
	cfg := DefaultConfig()
	cfg.MaxView = view
	cfg.AliveNeighbours = 3 // below the view: neighbours must stay unused with MaxView
	net := newNet(t, n, cfg, 21)
	net.seedMembership() // every peer hears of all 30; each admits its first 6
	for _, sp := range net.peers {
		if got := len(sp.p.Members()); got != view {
			t.Fatalf("peer %d knows %d members, want MaxView %d", sp.idx, got, view)
		}
	}
	alives, other := 0, 0
	net.filter = func(m simMsg) bool {
		msg := new(pb.GossipMessage)
		if proto.Unmarshal(m.env.GetPayload(), msg) == nil && (msg.GetAlive() != nil || msg.GetHeartbeat() != nil) {
			alives++
		} else if msg.GetMembershipBatch() != nil || msg.GetMembershipRequest() != nil {
			other++
		}
		return true
	}
	net.ticks(cfg.AliveInterval) // exactly one alive round (signed alive or heartbeat), no blocks
	if alives != n*view {
		t.Fatalf("%d alive messages in one alive round, want %d (one to each view member, no relays)", alives, n*view)
	}
	net.ticks(3 * cfg.Expiration) // many expiry periods
	net.filter = nil
	if limit := n * (2 + (cfg.AliveInterval+3*cfg.Expiration)/cfg.SyncInterval); other > limit {
		t.Fatalf("%d batches or membership requests, want at most %d (no batches, a sync per SyncInterval)", other, limit)
	}
	chain := makeChain(testOrderer, 10, 21)
	for _, b := range chain {
		net.inject(0, b)
		net.tick()
	}
	net.ticks(100)
	for _, sp := range net.peers {
		if got := len(sp.p.Members()); got > view {
			t.Fatalf("peer %d knows %d members, above MaxView %d", sp.idx, got, view)
		}
		if len(sp.commits) != len(chain) {
			t.Fatalf("peer %d committed %d of %d blocks", sp.idx, len(sp.commits), len(chain))
		}
		checkPrefix(t, sp, chain)
	}
}

func TestMaxViewValidate(t *testing.T) {
	cfg := DefaultConfig()
	cfg.MaxView = -1
	if cfg.Validate() == nil {
		t.Fatal("MaxView -1 accepted")
	}
}
