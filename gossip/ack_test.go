package gossip

import (
	"slices"
	"testing"

	"github.com/blockgossip/blockgossip/identity"
	pb "github.com/blockgossip/blockgossip/protos"
)

// blockEnvsTo returns the Block envelopes in msgs addressed to id.
func blockEnvsTo(msgs []Out, id identity.PKIID) []*pb.Envelope {
	var envs []*pb.Envelope
	for _, m := range msgs {
		if msg, err := decode(m.Env); err == nil && msg.GetBlock() != nil && m.To.ID == id {
			envs = append(envs, m.Env)
		}
	}
	return envs
}

// countOut counts the messages in msgs that match.
func countOut(msgs []Out, match func(to identity.PKIID, m *pb.GossipMessage) bool) int {
	k := 0
	for _, m := range msgs {
		if msg, err := decode(m.Env); err == nil && match(m.To.ID, msg) {
			k++
		}
	}
	return k
}

// ihavesTo counts the IHave messages for block n in msgs addressed to id.
func ihavesTo(msgs []Out, id identity.PKIID, n uint64) int {
	return countOut(msgs, func(to identity.PKIID, m *pb.GossipMessage) bool {
		return to == id && m.GetIhave() != nil && m.GetIhave().GetNumber() == n
	})
}

// A peer keeps each push to an eager neighbour until the neighbour
// acknowledges it (an IHave for the block), and pushes it again, without
// the cut stamp, AckResend sub-ticks after the push to each neighbour
// that has not, and again AckResend later (maxResends): under the
// simulator's 5% loss a lost eager copy waited for other peers' IHaves
// (40 ms after their own copies at the earliest) before a graft asked for
// it. An acknowledged push is not resent, a push acknowledged after its
// first resend is not resent again, and nothing is resent a third time.
func TestUnacknowledgedPushIsResentUntilAcknowledged(t *testing.T) {
	cfg := lossyConfig()
	cfg.PullEnabled = false
	cfg.AckResend = 3
	net := seededNet(t, 5, cfg, 71)
	net.ticks(2)
	p := net.peers[0].p
	net.collect(net.peers[0])
	chain := makeChain(testOrderer, 1, 71)
	if err := p.InjectBlock(chain[0]); err != nil {
		t.Fatal(err)
	}
	pushed := p.Ready().Messages
	var children []identity.PKIID
	for _, id := range p.eager.ids {
		envs := blockEnvsTo(pushed, id)
		if len(envs) != 1 || envs[0].GetStamp() == 0 {
			t.Fatalf("push to %v: %d copies (stamp %v), want one stamped copy", id, len(envs), envs)
		}
		children = append(children, id)
	}
	if len(children) < 3 {
		t.Fatalf("%d eager neighbours, want at least 3", len(children))
	}
	acker, lateAcker := children[0], children[1]
	p.Step(acker, "org1", ihaveEnv(0, chain[0], 1), 0)
	resentAt := map[identity.PKIID][]int{}
	for k := 1; k <= 5*cfg.AckResend; k++ {
		nextSubTick(p)
		msgs := p.Ready().Messages
		for _, id := range children {
			for _, env := range blockEnvsTo(msgs, id) {
				if env.GetStamp() != 0 {
					t.Errorf("resend to %v carries the cut stamp %d", id, env.GetStamp())
				}
				resentAt[id] = append(resentAt[id], k)
			}
		}
		if k == cfg.AckResend { // the first resend reached it: acknowledged
			p.Step(lateAcker, "org1", ihaveEnv(0, chain[0], 1), 0)
		}
	}
	every := []int{cfg.AckResend, 2 * cfg.AckResend} // maxResends
	for _, id := range children {
		got, want := resentAt[id], every
		switch id {
		case acker:
			want = nil
		case lateAcker:
			want = every[:1]
		}
		if !slices.Equal(got, want) {
			t.Errorf("push to %v resent at sub-ticks %v, want %v", id, got, want)
		}
	}
	if len(p.unacked) != 0 {
		t.Errorf("%d pushes still kept after their last resend", len(p.unacked))
	}
}

// A peer acknowledges a pushed copy to its sender at once, and a second
// copy from the same sender (its resend: our acknowledgement, or its first
// copy, was lost) is acknowledged again and prunes nothing; a copy from
// another eager neighbour is a redundant link and is pruned. Without
// AckResend nothing is acknowledged and the parent's second copy prunes
// it, as before.
func TestResentCopyIsAcknowledgedAndPrunesNothing(t *testing.T) {
	for _, ack := range []int{3, 0} {
		cfg := lossyConfig()
		cfg.PullEnabled = false
		cfg.AckResend = ack
		net := seededNet(t, 5, cfg, 72)
		net.ticks(2)
		p := net.peers[3].p
		net.collect(net.peers[3])
		chain := makeChain(testOrderer, 1, 72)
		parent, other := fakeID(0), fakeID(1)
		p.Step(parent, "org1", pushEnv(chain[0], 1), 0)
		if got, want := ihavesTo(p.Ready().Messages, parent, 0), min(ack, 1); got != want {
			t.Fatalf("AckResend %d: %d acknowledgements of the first copy, want %d", ack, got, want)
		}
		p.Step(parent, "org1", pushEnv(chain[0], 1), 0)
		msgs := p.Ready().Messages
		_, eager := p.eager.pos[parent]
		if ack > 0 {
			if ihavesTo(msgs, parent, 0) != 1 || prunesTo(msgs, parent) != 0 || !eager {
				t.Fatalf("resent copy: %d acknowledgements, %d prunes, parent eager %v; want 1, 0, true",
					ihavesTo(msgs, parent, 0), prunesTo(msgs, parent), eager)
			}
		} else if prunesTo(msgs, parent) != 1 || eager {
			t.Fatalf("AckResend 0: the parent's second copy sent %d prunes (eager %v), want the link pruned", prunesTo(msgs, parent), eager)
		}
		if ack == 0 {
			continue
		}
		p.Step(other, "org1", pushEnv(chain[0], 2), 0)
		if msgs := p.Ready().Messages; prunesTo(msgs, other) != 1 {
			t.Fatalf("a copy from another neighbour sent %d prunes to it, want 1 (a redundant link)", prunesTo(msgs, other))
		}
	}
}
