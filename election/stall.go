package election

import "github.com/blockgossip/blockgossip/identity"

// Stall detection: a member with valid credentials and a low PKI-ID can
// declare itself leader and never deliver a block. Every honest peer defers
// to it (lowest ID wins), nobody runs the deliver client, and the org stalls
// for as long as it keeps declaring. The orderer's height is the one signal
// such a peer cannot fake: the caller asks the orderer for it now and then
// (ObserveOrdererHeight), and a follower that sees a block the orderer had
// StallTimeout ticks ago reach neither itself nor any other org peer, with
// the org not catching up, stops trusting its leader for a penalty.

// Stall tells that a leader was blamed for a stall, for the caller's log.
type Stall struct {
	Leader        identity.PKIID
	OrgHeight     uint64 // the best height self and the other org peers had
	OrdererHeight uint64 // the orderer's last observed height
	Penalty       int    // ticks the leader is distrusted for
	Offence       int    // 1 for a first offence, 2 for the second...
}

// maxStallReports bounds the reports kept for TakeStalls.
const maxStallReports = 8

// offence is the record of a peer blamed for stalls.
type offence struct {
	count int   // offences not yet forgotten
	until int64 // distrusted before this tick
}

// stallWatch follows one block the orderer had that the org lacks.
type stallWatch struct {
	active bool
	target uint64 // the orderer's height when the watch began
	since  int64  // tick the watch began
	lag    uint64 // orderer height minus org height then
}

// ObserveOrdererHeight tells the engine the orderer's chain height, as a
// probe just read it. The caller probes about every ProbeInterval ticks
// while this peer does not lead (a leader reads the chain itself).
func (e *Engine) ObserveOrdererHeight(h uint64) {
	e.ordererHeight = h
	e.ordererAt = e.now
	e.ordererSeen = true
}

// TakeStalls returns the stalls blamed since the last call (at most the last
// eight) and forgets them.
func (e *Engine) TakeStalls() []Stall {
	s := e.stalls
	e.stalls = nil
	return s
}

// Distrusted reports whether id is serving a stall penalty.
func (e *Engine) Distrusted(id identity.PKIID) bool {
	o := e.offences[id]
	return o != nil && e.now < o.until
}

// checkStall runs while we follow a live remote leader. It reports whether
// the org is stalled under it: the orderer had a block StallTimeout ticks ago
// that no org peer we know of (the leader's own claim, and claims beyond the
// orderer's height, do not count) has now, and the lag has not shrunk since. A leader a block or two behind
// delivers each block long before the timeout; an org catching up after a
// burst shrinks its lag: neither is blamed.
func (e *Engine) checkStall(orgPeers []Candidate) bool {
	if e.cfg.StallTimeout == 0 || !e.ordererSeen {
		return false
	}
	org := e.selfHeight
	for _, c := range orgPeers {
		if c.ID != e.leader && e.believable(c.Height) {
			org = max(org, c.Height)
		}
	}
	w := &e.watch
	if w.active && org >= w.target {
		w.active = false // the block arrived: the leader delivers
	}
	if !w.active {
		if e.ordererHeight > org {
			// Count from the probe, but give a leader we only just
			// started following its full timeout.
			*w = stallWatch{active: true, target: e.ordererHeight, since: max(e.ordererAt, e.followSince), lag: e.ordererHeight - org}
		}
		return false
	}
	if e.now-w.since < int64(e.cfg.StallTimeout) {
		return false
	}
	lag := e.ordererHeight - min(org, e.ordererHeight)
	if lag < w.lag {
		// Blocks flow, only slower than the orderer's burst: watch the
		// next window from here.
		*w = stallWatch{active: true, target: e.ordererHeight, since: e.now, lag: lag}
		return false
	}
	e.distrust(e.leader, org)
	return true
}

// distrust blames id for a stall: for its penalty we ignore its messages and
// it can neither lead us nor beat anyone; each repeat doubles the penalty.
func (e *Engine) distrust(id identity.PKIID, org uint64) {
	if e.offences == nil {
		e.offences = make(map[identity.PKIID]*offence)
	}
	o := e.offences[id]
	if o == nil {
		o = &offence{}
		e.offences[id] = o
	}
	o.count++
	penalty := e.cfg.StallPenalty
	for i := 1; i < o.count && penalty < e.cfg.MaxStallPenalty; i++ {
		penalty *= 2
	}
	penalty = min(penalty, e.cfg.MaxStallPenalty)
	o.until = e.now + int64(penalty)
	if len(e.stalls) == maxStallReports {
		e.stalls = e.stalls[1:]
	}
	e.stalls = append(e.stalls, Stall{Leader: id, OrgHeight: org, OrdererHeight: e.ordererHeight, Penalty: penalty, Offence: o.count})
	if e.hasLeader && e.leader == id {
		e.hasLeader = false
		e.deposed = id
	}
	delete(e.peers, id) // its claims (a huge height, a proposal) no longer count
	e.watch = stallWatch{}
}

// trusted returns orgPeers without the peers serving a penalty, and forgets
// offences long expired. It returns orgPeers itself when nobody is
// distrusted, so the common case does not allocate.
func (e *Engine) trusted(orgPeers []Candidate) []Candidate {
	if len(e.offences) == 0 {
		return orgPeers
	}
	serving := false
	for id, o := range e.offences {
		switch {
		case e.now < o.until:
			serving = true
		case e.now >= o.until+int64(e.cfg.MaxStallPenalty):
			delete(e.offences, id) // forgiven
		}
	}
	if !serving {
		return orgPeers
	}
	e.scratch = e.scratch[:0]
	for _, c := range orgPeers {
		if !e.Distrusted(c.ID) {
			e.scratch = append(e.scratch, c)
		}
	}
	return e.scratch
}

// believable reports whether a height a peer claims can be true: no more
// than MaxLag beyond what the orderer had when we last asked it (within two
// probe intervals).
// A peer cannot hold blocks the orderer has not cut, so a larger claim is a
// lie meant to make everyone else look behind.
func (e *Engine) believable(h uint64) bool {
	if !e.ordererSeen || e.cfg.StallTimeout == 0 || e.now-e.ordererAt > int64(2*e.cfg.ProbeInterval) {
		return true
	}
	return h <= e.ordererHeight+e.cfg.MaxLag
}
