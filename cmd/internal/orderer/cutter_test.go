package orderer

import (
	"bytes"
	"context"
	"errors"
	"testing"
	"testing/synctest"
	"time"

	"github.com/blockgossip/blockgossip/ledger"
	pb "github.com/blockgossip/blockgossip/protos"
)

// inBubble runs body inside a synctest bubble with an orderer on an
// in-memory ledger whose cutter runs; the cutter is stopped at the end.
func inBubble(t *testing.T, cfg Config, body func(t *testing.T, o *Orderer, mem *ledger.Memory)) {
	f := newFixture(t)
	synctest.Test(t, func(t *testing.T) {
		mem := ledger.OpenMemory(f.verifier)
		o, err := newOrderer(cfg, f.b.Orderer, f.b.Network, mem, nil)
		if err != nil {
			t.Fatal(err)
		}
		ctx, cancel := context.WithCancel(context.Background())
		errc := make(chan error, 1)
		go func() { errc <- o.Run(ctx) }()
		defer func() { // also after a t.Fatal in body
			cancel()
			if err := <-errc; err != nil {
				t.Errorf("Run: %v", err)
			}
		}()
		body(t, o, mem)
	})
}

func txs(n, size int) [][]byte {
	out := make([][]byte, n)
	for i := range out {
		out[i] = bytes.Repeat([]byte{byte(i + 1)}, size)
	}
	return out
}

// blockSizes returns the number of transactions in blocks 1.. of mem.
func blockSizes(t *testing.T, mem *ledger.Memory) []int {
	t.Helper()
	var sizes []int
	for n := uint64(1); n < mem.Height(); n++ {
		b, err := mem.Block(n)
		if err != nil {
			t.Fatal(err)
		}
		sizes = append(sizes, len(b.GetData().GetTransactions()))
	}
	return sizes
}

func equalInts(a, b []int) bool {
	if len(a) != len(b) {
		return false
	}
	for i := range a {
		if a[i] != b[i] {
			return false
		}
	}
	return true
}

func TestCutByCountThenTimeout(t *testing.T) {
	cfg := DefaultConfig()
	cfg.BatchMaxTx = 3
	cfg.BatchTimeout = time.Second
	inBubble(t, cfg, func(t *testing.T, o *Orderer, mem *ledger.Memory) {
		if err := o.enqueue(txs(7, 10), nil); err != nil {
			t.Fatal(err)
		}
		synctest.Wait()
		if got := blockSizes(t, mem); !equalInts(got, []int{3, 3}) {
			t.Fatalf("after 7 txs with BatchMaxTx 3: blocks %v, want [3 3] and one tx waiting", got)
		}
		time.Sleep(cfg.BatchTimeout - time.Millisecond)
		synctest.Wait()
		if mem.Height() != 3 {
			t.Fatalf("the last tx was cut before BatchTimeout")
		}
		time.Sleep(time.Millisecond)
		synctest.Wait()
		if got := blockSizes(t, mem); !equalInts(got, []int{3, 3, 1}) {
			t.Fatalf("after BatchTimeout: blocks %v, want [3 3 1]", got)
		}
	})
}

func TestCutByBytes(t *testing.T) {
	cfg := DefaultConfig()
	cfg.BatchMaxBytes = 100
	cfg.MaxTxBytes = 100
	inBubble(t, cfg, func(t *testing.T, o *Orderer, mem *ledger.Memory) {
		// 40+40 fit, a third 40 would make 120: cut [40 40] at once.
		if err := o.enqueue(txs(3, 40), nil); err != nil {
			t.Fatal(err)
		}
		synctest.Wait()
		if got := blockSizes(t, mem); !equalInts(got, []int{2}) {
			t.Fatalf("blocks %v, want [2]", got)
		}
		// 40 + 60 = exactly BatchMaxBytes: full, cut without waiting.
		if err := o.enqueue(txs(1, 60), nil); err != nil {
			t.Fatal(err)
		}
		synctest.Wait()
		if got := blockSizes(t, mem); !equalInts(got, []int{2, 2}) {
			t.Fatalf("blocks %v, want [2 2]", got)
		}
		// A maximal transaction is a block on its own.
		if err := o.enqueue(txs(1, 100), nil); err != nil {
			t.Fatal(err)
		}
		synctest.Wait()
		if got := blockSizes(t, mem); !equalInts(got, []int{2, 2, 1}) {
			t.Fatalf("blocks %v, want [2 2 1]", got)
		}
	})
}

func TestTimeoutCountsFromFirstTransaction(t *testing.T) {
	cfg := DefaultConfig()
	inBubble(t, cfg, func(t *testing.T, o *Orderer, mem *ledger.Memory) {
		w1, w := newWaiter(1), newWaiter(1)
		start := time.Now()
		if err := o.enqueue(txs(1, 10), w1); err != nil {
			t.Fatal(err)
		}
		time.Sleep(cfg.BatchTimeout * 3 / 4)
		if err := o.enqueue(txs(1, 10), w); err != nil {
			t.Fatal(err)
		}
		<-w.done
		if waited := time.Since(start); waited != cfg.BatchTimeout {
			t.Fatalf("batch cut after %v, want BatchTimeout %v after its first tx", waited, cfg.BatchTimeout)
		}
		if got := blockSizes(t, mem); !equalInts(got, []int{2}) {
			t.Fatalf("blocks %v, want [2]", got)
		}
		if w.err != nil || w.placements[0].GetBlockNumber() != 1 || w.placements[0].GetIndex() != 1 {
			t.Fatalf("placements %v err %v", w.placements, w.err)
		}
	})
}

func TestNoTimerWithoutTransactions(t *testing.T) {
	inBubble(t, DefaultConfig(), func(t *testing.T, o *Orderer, mem *ledger.Memory) {
		time.Sleep(time.Hour)
		synctest.Wait()
		if mem.Height() != 1 {
			t.Fatalf("an idle orderer cut %d blocks", mem.Height()-1)
		}
	})
}

func TestStopFailsWaitersAndRefusesMore(t *testing.T) {
	f := newFixture(t)
	synctest.Test(t, func(t *testing.T) {
		o, err := newOrderer(DefaultConfig(), f.b.Orderer, f.b.Network, ledger.OpenMemory(f.verifier), nil)
		if err != nil {
			t.Fatal(err)
		}
		w := newWaiter(1)
		if err := o.enqueue(txs(1, 10), w); err != nil {
			t.Fatal(err)
		}
		ctx, cancel := context.WithCancel(context.Background())
		cancel() // Run stops at once, before the timeout cuts anything
		if err := o.Run(ctx); err != nil {
			t.Fatal(err)
		}
		<-w.done
		if !errors.Is(w.err, ErrStopped) {
			t.Fatalf("waiter error %v, want ErrStopped", w.err)
		}
		if err := o.enqueue(txs(1, 10), nil); !errors.Is(err, ErrStopped) {
			t.Fatalf("enqueue after stop: %v, want ErrStopped", err)
		}
		if err := o.Run(context.Background()); err == nil {
			t.Fatal("second Run succeeded")
		}
	})
}

func TestPendingBound(t *testing.T) {
	f := newFixture(t)
	cfg := DefaultConfig()
	cfg.MaxTxsPerRequest, cfg.MaxPendingTxs = 5, 8
	o, err := newOrderer(cfg, f.b.Orderer, f.b.Network, ledger.OpenMemory(f.verifier), nil)
	if err != nil {
		t.Fatal(err)
	}
	if err := o.enqueue(txs(5, 1), nil); err != nil {
		t.Fatal(err)
	}
	if err := o.enqueue(txs(5, 1), nil); !errors.Is(err, errBusy) {
		t.Fatalf("over the pending bound: %v, want errBusy", err)
	}
}

func TestConfigValidate(t *testing.T) {
	mod := func(f func(*Config)) Config { c := DefaultConfig(); f(&c); return c }
	for name, tc := range map[string]struct {
		cfg Config
		ok  bool
	}{
		"default":            {DefaultConfig(), true},
		"zero count":         {mod(func(c *Config) { c.BatchMaxTx = 0 }), false},
		"zero bytes":         {mod(func(c *Config) { c.BatchMaxBytes = 0 }), false},
		"zero timeout":       {mod(func(c *Config) { c.BatchTimeout = 0 }), false},
		"tx over batch":      {mod(func(c *Config) { c.MaxTxBytes = c.BatchMaxBytes + 1 }), false},
		"zero per request":   {mod(func(c *Config) { c.MaxTxsPerRequest = 0 }), false},
		"pending < request":  {mod(func(c *Config) { c.MaxPendingTxs = c.MaxTxsPerRequest - 1 }), false},
		"zero deliver chunk": {mod(func(c *Config) { c.DeliverChunkBytes = 0 }), false},
	} {
		if err := tc.cfg.Validate(); (err == nil) != tc.ok || (err != nil && !errors.Is(err, ErrInvalidConfig)) {
			t.Errorf("%s: Validate() = %v, want ok=%v", name, err, tc.ok)
		}
	}
}

// Blocks cut directly chain and verify.
func TestCutBlockChains(t *testing.T) {
	f := newFixture(t)
	mem := ledger.OpenMemory(f.verifier)
	o, err := newOrderer(DefaultConfig(), f.b.Orderer, f.b.Network, mem, nil)
	if err != nil {
		t.Fatal(err)
	}
	var prev *pb.Block
	prev, _ = mem.Block(0)
	for i := range 5 {
		b, err := o.CutBlock(txs(i+1, 8))
		if err != nil {
			t.Fatal(err)
		}
		h, err := ledger.VerifyBlock(b, f.verifier)
		if err != nil {
			t.Fatal(err)
		}
		if h.GetNumber() != uint64(i+1) || !bytes.Equal(h.GetPreviousHash(), ledger.HeaderHash(prev)) {
			t.Fatalf("block %d does not link: number %d", i+1, h.GetNumber())
		}
		prev = b
	}
	if o.Height() != 6 {
		t.Fatalf("height %d, want 6", o.Height())
	}
}
