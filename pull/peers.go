package pull

import "github.com/blockgossip/blockgossip/identity"

// peerState is what the engine knows of a peer: its advertised height and
// its strikes.
type peerState struct {
	height      uint64
	incarnation uint64
	lastSeen    int // last tick it was in the live list
	near        bool
	strikes     int // consecutive strikes, cleared by a useful answer
	until       int // in cooldown while now < until
}

// updatePeers records this tick's live list, striking a peer whose height
// went down within one incarnation.
func (e *Engine) updatePeers(live []PeerInfo) {
	e.live, e.best = e.live[:0], 0
	for _, info := range live {
		if info.ID == e.self {
			continue
		}
		p := e.peers[info.ID]
		if p == nil {
			p = &peerState{lastSeen: -1}
			e.peers[info.ID] = p
		}
		if p.lastSeen == e.now { // listed twice: keep the first
			continue
		}
		switch {
		case p.lastSeen < 0, info.Incarnation > p.incarnation, p.lastSeen < e.now-1:
			// New, restarted, or back after dropping out: believe it afresh.
		case info.Incarnation < p.incarnation:
			info.Height, info.Incarnation = p.height, p.incarnation // stale news
		case info.Height < p.height:
			e.strike(info.ID) // height went down within one incarnation: a lie
		}
		p.height, p.incarnation, p.lastSeen, p.near = info.Height, info.Incarnation, e.now, info.Near
		e.live = append(e.live, info.ID)
		e.best = max(e.best, p.height)
	}
	for id, p := range e.peers { // forget peers gone longer than any cooldown
		if p.lastSeen < e.now-e.cfg.MaxCooldown {
			delete(e.peers, id)
		}
	}
}

// strike puts a peer in cooldown, doubling the cooldown for each
// consecutive strike up to MaxCooldown.
func (e *Engine) strike(id identity.PKIID) {
	p := e.peers[id]
	if p == nil {
		p = &peerState{lastSeen: e.now}
		e.peers[id] = p
	}
	p.strikes++
	cd := e.cfg.BaseCooldown << min(p.strikes-1, 20)
	p.until = e.now + min(cd, e.cfg.MaxCooldown)
	e.stats.Strikes++
}

// clear forgives a peer's strikes after a useful answer.
func (e *Engine) clear(id identity.PKIID) {
	if p := e.peers[id]; p != nil {
		p.strikes = 0
	}
}

// usable returns the live peers out of cooldown whose advertised height is
// at least minHeight, in the caller's order.
func (e *Engine) usable(minHeight uint64) []identity.PKIID {
	var out []identity.PKIID
	for _, id := range e.live {
		if p := e.peers[id]; e.now >= p.until && p.height >= minHeight {
			out = append(out, id)
		}
	}
	return out
}

// roundPeers picks a round's PullPeers hellos: in a far round (every
// FarRounds-th) PullPeers-FarPeers at random among the usable near peers,
// in other rounds all of them; the rest at random among all the other
// usable ones (more of them if too few are near).
func (e *Engine) roundPeers() []identity.PKIID {
	far := 0
	if e.nRounds%e.cfg.FarRounds == 0 {
		far = e.cfg.FarPeers
	}
	e.nRounds++
	return e.nearFirst(e.usable(0), e.cfg.PullPeers-far, e.cfg.PullPeers)
}

// nearFirst picks up to total of ids (reordering them): up to nearWant at
// random among the near ones, the rest at random among all the others
// (the near ones not picked included). Hellos to near peers ride streams
// already open; one to anybody else may open a stream (over gRPC a TLS
// handshake, buffers and goroutines at both ends, kept afterwards).
func (e *Engine) nearFirst(ids []identity.PKIID, nearWant, total int) []identity.PKIID {
	near := 0 // partition: near peers first
	for i, id := range ids {
		if e.peers[id].near {
			ids[near], ids[i] = ids[i], ids[near]
			near++
		}
	}
	k := min(max(nearWant, 0), near, total)
	e.sample(ids[:near], k)            // now ids[:k]
	rest := e.sample(ids[k:], total-k) // the near ones not picked are candidates too
	return ids[:k+len(rest)]
}

// sample picks up to k distinct ids at random (a partial Fisher-Yates
// shuffle, in place).
func (e *Engine) sample(ids []identity.PKIID, k int) []identity.PKIID {
	k = min(k, len(ids))
	for i := range k {
		j := i + e.rng.IntN(len(ids)-i)
		ids[i], ids[j] = ids[j], ids[i]
	}
	return ids[:k]
}
