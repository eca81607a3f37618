package identity

import (
	"maps"
	"math/big"
	"slices"
)

// SetRevoked replaces the revocation list with serials, then calls every
// subscriber (so that, say, comm re-checks its open streams).
func (m *MSP) SetRevoked(serials []*big.Int) {
	set := make(map[string]struct{}, len(serials))
	for _, s := range serials {
		if s != nil {
			set[s.Text(16)] = struct{}{}
		}
	}
	m.mu.Lock()
	m.revoked = set
	ids := slices.Sorted(maps.Keys(m.subs))
	fns := make([]func(), len(ids))
	for i, id := range ids {
		fns[i] = m.subs[id]
	}
	m.mu.Unlock()
	for _, fn := range fns {
		fn()
	}
}

// IsRevoked reports whether serial is on the revocation list.
func (m *MSP) IsRevoked(serial *big.Int) bool {
	m.mu.RLock()
	defer m.mu.RUnlock()
	_, ok := m.revoked[serial.Text(16)]
	return ok
}

// Subscribe registers fn to be called, on SetRevoked's goroutine and in
// subscription order, after every SetRevoked. fn must not block for long
// and must not call SetRevoked. cancel unregisters it; it is idempotent.
func (m *MSP) Subscribe(fn func()) (cancel func()) {
	m.mu.Lock()
	id := m.nextSub
	m.nextSub++
	m.subs[id] = fn
	m.mu.Unlock()
	return func() {
		m.mu.Lock()
		delete(m.subs, id)
		m.mu.Unlock()
	}
}
