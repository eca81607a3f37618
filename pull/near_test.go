package pull

import (
	"testing"

	"github.com/blockgossip/blockgossip/identity"
)

// A far round sends PullPeers-FarPeers hellos to near peers (push-tree
// neighbours, streams already open) and FarPeers to anybody, other rounds
// all to near peers; with too few near peers the far draw makes up the
// count; FarPeers >= PullPeers in every round is Fabric's all-random
// choice.
func TestRoundPrefersNearPeers(t *testing.T) {
	live := func(near ...byte) []PeerInfo {
		var out []PeerInfo
		for i := byte(1); i <= 40; i++ {
			out = append(out, PeerInfo{ID: pid(i), Height: 1})
		}
		for _, n := range near {
			out[n-1].Near = true
		}
		return out
	}
	isNear := func(id identity.PKIID, near []byte) bool {
		for _, n := range near {
			if id == pid(n) {
				return true
			}
		}
		return false
	}
	cases := []struct {
		name            string
		far, farRounds  int
		near            []byte
		minNear, maxFar int // in every round
		maxNearTotal    int // over the 200 rounds
		minFarSeen      int // distinct far peers asked in 200 rounds
	}{
		{"two near, one far", 1, 1, []byte{5, 9, 17, 30}, 2, 1, 600, 20},
		{"far every 10th round", 1, 10, []byte{5, 9, 17, 30}, 2, 1, 600, 7},
		{"one near peer only", 1, 1, []byte{12}, 1, 2, 600, 20},
		{"no near peers", 1, 1, nil, 0, 3, 0, 30},
		// 3 of 40 at random: 0.3 near hellos per round expected, 60 in all
		{"fabric: all random", 3, 1, []byte{5, 9, 17, 30}, 0, 3, 120, 30},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			cfg := DefaultConfig()
			cfg.FarPeers, cfg.FarRounds = c.far, c.farRounds
			e, _ := newTestEngine(t, cfg, 1)
			e.updatePeers(live(c.near...))
			farSeen := map[identity.PKIID]bool{}
			nearTotal := 0
			for range 200 {
				peers := e.roundPeers()
				if len(peers) != cfg.PullPeers {
					t.Fatalf("round asked %d peers, want %d", len(peers), cfg.PullPeers)
				}
				seen := map[identity.PKIID]bool{}
				nNear := 0
				for _, id := range peers {
					if seen[id] {
						t.Fatalf("peer %v asked twice in one round: %v", id, peers)
					}
					seen[id] = true
					if isNear(id, c.near) {
						nNear++
					} else {
						farSeen[id] = true
					}
				}
				nearTotal += nNear
				if nNear < c.minNear || len(peers)-nNear > c.maxFar {
					t.Fatalf("round asked %d near and %d far peers, want >= %d near and <= %d far", nNear, len(peers)-nNear, c.minNear, c.maxFar)
				}
			}
			if nearTotal > c.maxNearTotal {
				t.Errorf("%d near hellos in 200 rounds, want at most %d", nearTotal, c.maxNearTotal)
			}
			if len(farSeen) < c.minFarSeen {
				t.Errorf("far hellos reached %d distinct peers in 200 rounds, want at least %d: not random", len(farSeen), c.minFarSeen)
			}
			if c.farRounds == 10 && len(farSeen) > 20 {
				t.Errorf("far hellos reached %d distinct peers in 200 rounds, want at most the 20 far rounds' worth", len(farSeen))
			}
		})
	}
}
