package memnet

import "github.com/blockgossip/blockgossip/identity"

// Cut partitions a from b (both directions) until Heal. An open
// connection between them goes down: both see a Down event.
func (n *Network) Cut(a, b identity.PKIID) {
	n.mu.Lock()
	defer n.mu.Unlock()
	n.cuts[mkpair(a, b)] = true
	n.disconnectLocked(mkpair(a, b))
}

// Isolate partitions id from every other member, present or future, until
// Heal.
func (n *Network) Isolate(id identity.PKIID) {
	n.mu.Lock()
	defer n.mu.Unlock()
	n.isolated[id] = true
	for p := range n.conns {
		if p.a == id || p.b == id {
			n.disconnectLocked(p)
		}
	}
}

// Heal removes every partition made by Cut and Isolate. Connections come
// back on the next exchange (Send or Connect), as on a real network.
func (n *Network) Heal() {
	n.mu.Lock()
	defer n.mu.Unlock()
	clear(n.cuts)
	clear(n.isolated)
}

// SetLinkLoss sets the loss probability between a and b (both
// directions), overriding Config.Loss. p outside [0, 1] is clamped.
func (n *Network) SetLinkLoss(a, b identity.PKIID, p float64) {
	p = min(max(p, 0), 1)
	n.mu.Lock()
	defer n.mu.Unlock()
	n.linkLoss[mkpair(a, b)] = p
}

// Crash stops a member: it sends and receives nothing more, its in-flight
// messages are lost, and every peer connected to it sees a Down event.
// A later Join with the same PKI-ID restarts it.
func (n *Network) Crash(id identity.PKIID) {
	n.mu.Lock()
	defer n.mu.Unlock()
	if e, ok := n.members[id]; ok {
		n.removeLocked(e)
	}
}
