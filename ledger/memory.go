package ledger

import (
	"fmt"
	"sync"

	pb "github.com/blockgossip/blockgossip/protos"
)

// Memory is a Ledger held in memory, with the same semantics as Store
// (blocks are kept marshalled, so Range sizes and returned copies match).
// It is meant for protocol tests and the simulator. Safe for concurrent
// use.
type Memory struct {
	v BlockVerifier

	appendMu sync.Mutex // serialises Append; verification runs under it alone

	mu     sync.RWMutex      // guards everything below
	blocks [][]byte          // marshalled blocks, index = number
	byHash map[string]uint64 // header hash -> number
	tip    TipInfo
	closed bool
}

// OpenMemory returns an empty in-memory ledger that checks blocks with v.
// A nil v makes every Append fail with ErrNoVerifier.
func OpenMemory(v BlockVerifier) *Memory {
	return &Memory{v: v, byHash: make(map[string]uint64)}
}

// Append implements Ledger.
// Verification runs outside the read lock, so readers are not held up.
func (m *Memory) Append(b *pb.Block) error {
	return m.commit(func(tip TipInfo) (accepted, error) { return prepare(b, tip, m.v) })
}

// AppendVerified implements Ledger.
func (m *Memory) AppendVerified(vb Verified) error {
	return m.commit(func(tip TipInfo) (accepted, error) { return prepareVerified(vb, tip) })
}

// commit appends the block prepare accepts against the current tip.
func (m *Memory) commit(prepare func(TipInfo) (accepted, error)) error {
	m.appendMu.Lock()
	defer m.appendMu.Unlock()
	m.mu.RLock()
	tip, closed := m.tip, m.closed
	m.mu.RUnlock()
	if closed {
		return ErrClosed
	}
	a, err := prepare(tip)
	if err != nil {
		return err
	}
	m.mu.Lock()
	defer m.mu.Unlock()
	if m.closed {
		return ErrClosed
	}
	m.blocks = append(m.blocks, a.raw)
	m.byHash[string(a.tip.CurrentHash)] = a.number
	m.tip = a.tip
	return nil
}

// Height implements Ledger.
func (m *Memory) Height() uint64 {
	m.mu.RLock()
	defer m.mu.RUnlock()
	return m.tip.Height
}

// Tip implements Ledger.
func (m *Memory) Tip() TipInfo {
	m.mu.RLock()
	defer m.mu.RUnlock()
	return m.tip.clone()
}

// Block implements Ledger.
func (m *Memory) Block(number uint64) (*pb.Block, error) {
	m.mu.RLock()
	defer m.mu.RUnlock()
	if m.closed {
		return nil, ErrClosed
	}
	if number >= m.tip.Height {
		return nil, fmt.Errorf("block %d: %w: ledger height is %d", number, ErrNotFound, m.tip.Height)
	}
	return unmarshalBlock(m.blocks[number])
}

// BlockByHash implements Ledger.
func (m *Memory) BlockByHash(hash []byte) (*pb.Block, error) {
	m.mu.RLock()
	defer m.mu.RUnlock()
	if m.closed {
		return nil, ErrClosed
	}
	n, ok := m.byHash[string(hash)]
	if !ok {
		return nil, fmt.Errorf("block with hash %s: %w", shortHash(hash), ErrNotFound)
	}
	return unmarshalBlock(m.blocks[n])
}

// Range implements Ledger.
func (m *Memory) Range(start, end uint64, maxBytes int) ([]*pb.Block, error) {
	m.mu.RLock()
	defer m.mu.RUnlock()
	if m.closed {
		return nil, ErrClosed
	}
	end, err := rangeEnd(start, end, m.tip.Height)
	if err != nil {
		return nil, err
	}
	var out []*pb.Block
	total := 0
	for n := start; n < end; n++ {
		raw := m.blocks[n]
		if !fits(total, len(raw), len(out), maxBytes) {
			break
		}
		b, err := unmarshalBlock(raw)
		if err != nil {
			return nil, err
		}
		out = append(out, b)
		total += len(raw)
	}
	return out, nil
}

// Close implements Ledger.
func (m *Memory) Close() error {
	m.mu.Lock()
	defer m.mu.Unlock()
	m.closed = true
	m.blocks, m.byHash = nil, nil
	return nil
}
