package gossip

import (
	"math/rand/v2"
	"testing"

	"github.com/blockgossip/blockgossip/ledger"
)

// countingOrderer counts the block signatures it checks.
type countingOrderer struct {
	macOrderer
	calls int
}

func (o *countingOrderer) VerifyBlockSignature(header, sig []byte) error {
	o.calls++
	return o.macOrderer.VerifyBlockSignature(header, sig)
}

// appendOnly hides a ledger's AppendVerified: the Peer must fall back to
// Append, which verifies again.
type appendOnly struct{ Ledger }

// A block is verified once on its way to the ledger when the ledger takes
// verified blocks, and twice (the Peer's check, then the ledger's own)
// when it does not; either way every block, injected by the orderer or
// pushed by a peer, is committed in order.
func TestBlocksAreVerifiedOnceBeforeCommit(t *testing.T) {
	chain := makeChain(testOrderer, 5, 9)
	for _, c := range []struct {
		name     string
		wrap     func(*ledger.Memory) Ledger
		perBlock int
	}{
		{"AppendVerified", func(m *ledger.Memory) Ledger { return m }, 1},
		{"Append only", func(m *ledger.Memory) Ledger { return appendOnly{m} }, 2},
	} {
		t.Run(c.name, func(t *testing.T) {
			o := &countingOrderer{macOrderer: testOrderer}
			mem := ledger.OpenMemory(o)
			defer mem.Close()
			p, err := NewPeer(DefaultConfig(), Self{ID: fakeID(1), Endpoint: "peer1:7051", Org: "org1", Incarnation: 1},
				PeerDeps{Ledger: c.wrap(mem), Verifier: o, Crypto: NopCrypto{}, Rand: rand.New(rand.NewPCG(1, 1))})
			if err != nil {
				t.Fatal(err)
			}
			for i := len(chain) - 1; i >= 0; i-- { // backwards: all but the last wait in the reorder buffer
				if i%2 == 0 {
					if err := p.InjectBlock(chain[i]); err != nil {
						t.Fatalf("inject block %d: %v", i, err)
					}
					continue
				}
				env := wireBlock{}.envelope(chain[i], 1) // pushed: decoded from the payload's bytes
				p.Step(fakeID(2), "org1", env, len(env.GetPayload()))
			}
			if got := len(p.Ready().Commits); got != len(chain) || mem.Height() != uint64(len(chain)) {
				t.Fatalf("committed %d (ledger height %d), want %d", got, mem.Height(), len(chain))
			}
			if o.calls != c.perBlock*len(chain) {
				t.Fatalf("%d signature checks for %d blocks, want %d per block", o.calls, len(chain), c.perBlock)
			}
		})
	}
}
