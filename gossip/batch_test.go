package gossip

import (
	"slices"
	"testing"

	"github.com/blockgossip/blockgossip/identity"
	"github.com/blockgossip/blockgossip/ledger"
	pb "github.com/blockgossip/blockgossip/protos"
	"google.golang.org/protobuf/proto"
)

// With PushBatch, forwards wait for the window and each batch goes to one
// random set of Fanout peers.
func TestPushBatchHoldsForwardsAndSharesTargets(t *testing.T) {
	cfg := DefaultConfig()
	cfg.PullEnabled = false
	cfg.Tree = false // batching is a random-push option
	cfg.PushBatch = 3
	cfg.Fanout = 3
	net := convergedNet(t, 10, cfg, 21)
	p := net.peers[0].p
	net.collect(net.peers[0]) // drain
	chain := makeChain(testOrderer, 2, 21)
	for _, b := range chain {
		if err := p.InjectBlock(b); err != nil {
			t.Fatal(err)
		}
	}
	blocksOut := func() map[uint64][]identity.PKIID {
		got := map[uint64][]identity.PKIID{}
		for _, m := range p.Ready().Messages {
			if env := m.Env; env != nil {
				msg, err := decode(env)
				if err == nil && msg.GetBlock() != nil {
					hdr, _ := parseNumber(msg.GetBlock().GetBlock())
					got[hdr] = append(got[hdr], m.To.ID)
				}
			}
		}
		return got
	}
	if got := blocksOut(); len(got) != 0 {
		t.Fatalf("blocks forwarded before the batch window: %v", got)
	}
	p.Tick()
	p.Tick()
	if got := blocksOut(); len(got) != 0 {
		t.Fatalf("blocks forwarded 2 ticks into a 3-tick window")
	}
	p.Tick()
	got := blocksOut()
	if len(got[0]) != cfg.Fanout || !slices.Equal(got[0], got[1]) {
		t.Fatalf("batch targets: block 0 %v, block 1 %v; want the same %d peers", got[0], got[1], cfg.Fanout)
	}
}

// decode unpacks an envelope's payload.
func decode(env *pb.Envelope) (*pb.GossipMessage, error) {
	msg := new(pb.GossipMessage)
	return msg, proto.Unmarshal(env.GetPayload(), msg)
}

// parseNumber returns a block's number from its header.
func parseNumber(b *pb.Block) (uint64, error) {
	h, err := ledger.ParseHeader(b)
	return h.GetNumber(), err
}
