package gossip

import (
	"slices"

	"github.com/blockgossip/blockgossip/identity"
	"github.com/blockgossip/blockgossip/ledger"
	pb "github.com/blockgossip/blockgossip/protos"
	"google.golang.org/protobuf/proto"
)

func unmarshal(b []byte, m proto.Message) error { return proto.Unmarshal(b, m) }

func sortIDs(ids []identity.PKIID) {
	slices.SortFunc(ids, func(a, b identity.PKIID) int {
		switch {
		case a.Less(b):
			return -1
		case b.Less(a):
			return 1
		}
		return 0
	})
}

// pickPeers returns up to k distinct random members of from, skipping
// not1 and not2. from is not modified.
func (p *Peer) pickPeers(from []identity.PKIID, k int, not1, not2 identity.PKIID) []identity.PKIID {
	if k <= 0 || len(from) == 0 {
		return nil
	}
	if 4*k >= len(from) {
		// Few candidates: shuffle a filtered copy.
		c := make([]identity.PKIID, 0, len(from))
		for _, id := range from {
			if id != not1 && id != not2 {
				c = append(c, id)
			}
		}
		p.rng.Shuffle(len(c), func(i, j int) { c[i], c[j] = c[j], c[i] })
		return c[:min(k, len(c))]
	}
	// Many candidates: rejection sampling, O(k) expected, no copy of from.
	out := make([]identity.PKIID, 0, k)
	for len(out) < k {
		id := from[p.rng.IntN(len(from))]
		if id == not1 || id == not2 || slices.Contains(out, id) {
			continue
		}
		out = append(out, id)
	}
	return out
}

// idSet is an ordered set of PKI-IDs with O(1) add and remove (removal
// moves the last element into the hole). Its order depends only on the
// order of operations, so a deterministic caller gets deterministic
// random picks from it.
type idSet struct {
	ids []identity.PKIID
	pos map[identity.PKIID]int
}

// set puts id in (in=true) or out of the set; it reports a change.
func (s *idSet) set(id identity.PKIID, in bool) bool {
	if s.pos == nil {
		s.pos = make(map[identity.PKIID]int)
	}
	i, ok := s.pos[id]
	switch {
	case in && !ok:
		s.pos[id] = len(s.ids)
		s.ids = append(s.ids, id)
		return true
	case !in && ok:
		last := len(s.ids) - 1
		s.ids[i] = s.ids[last]
		s.pos[s.ids[i]] = i
		s.ids = s.ids[:last]
		delete(s.pos, id)
		return true
	}
	return false
}

func ledgerHash(b *pb.Block) []byte { return ledger.HeaderHash(b) }
