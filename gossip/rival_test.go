package gossip

import (
	"testing"
)

// A member that the leader's live view lacks hears none of its
// declarations (they go to the live view), proposes itself after the
// leader's silence, and would lead beside it, both pulling every block
// from the orderer. The leader answers a rival's proposal with its next
// declaration sent to the rival too, so the rival follows it and there is
// one leader at every tick.
func TestLeaderAnswersARivalItsViewLacks(t *testing.T) {
	cfg := DefaultConfig()
	cfg.PullEnabled = false
	net := seededNet(t, 4, cfg, 70)
	leader := -1
	for range 60 {
		net.tick()
		if leader = leaderOf(net); leader >= 0 {
			break
		}
	}
	if leader < 0 {
		t.Fatal("no leader within 60 ticks")
	}
	rival := (leader + 1) % len(net.peers)
	lp, rid := net.peers[leader].p, net.peers[rival].p.self.ID
	lp.members[rid].dead = true // the leader's view lacks the rival
	lp.syncLive(rid)
	e := cfg.Election
	for tick := range 3 * (e.LeaderAliveThreshold + e.LeaderGrace + 3*e.ElectionDuration) {
		net.tick()
		if got := leaders(net); got != 1 {
			t.Fatalf("tick %d after the leader's view lost peer %d: %d leaders, want 1", tick, rival, got)
		}
		lp.members[rid].dead = true // its messages must not revive it in the leader's view
		lp.syncLive(rid)
	}
	if l, ok := net.peers[rival].p.Leader(); !ok || l != lp.self.ID {
		t.Fatalf("the rival follows %v (ok %v), want peer %d", l, ok, leader)
	}
}

// leaders counts the peers that lead.
func leaders(net *simNet) int {
	n := 0
	for _, sp := range net.peers {
		if sp.p.IsLeader() {
			n++
		}
	}
	return n
}

// leaderOf returns the index of the one peer that leads and that every
// other peer follows, or -1.
func leaderOf(net *simNet) int {
	if leaders(net) != 1 {
		return -1
	}
	for i, sp := range net.peers {
		if !sp.p.IsLeader() {
			continue
		}
		for _, o := range net.peers {
			if l, ok := o.p.Leader(); !ok || l != sp.p.self.ID {
				return -1
			}
		}
		return i
	}
	return -1
}
