package memnet

import (
	"encoding/binary"
	"errors"
	"fmt"
	"hash/fnv"
	"math/rand/v2"
	"sync"
	"time"

	"github.com/blockgossip/blockgossip/comm"
	"github.com/blockgossip/blockgossip/identity"
)

// Errors returned by Join and Connect.
var (
	ErrDuplicateID   = errors.New("memnet: a live member already has this PKI-ID: Crash or Close it before rejoining")
	ErrEndpointInUse = errors.New("memnet: endpoint already taken by a live member: pick another")
	ErrZeroID        = errors.New("memnet: zero PKI-ID: derive one with identity.PKIIDFromCert or fill it")
	ErrNoEndpoint    = errors.New("memnet: no live member at endpoint")
	ErrUnreachable   = errors.New("memnet: peer is partitioned from us")
	ErrNetClosed     = errors.New("memnet: network closed")
)

// Network is an in-memory network of members. It is safe for concurrent use.
type Network struct {
	cfg Config

	mu         sync.Mutex
	closed     bool
	members    map[identity.PKIID]*Endpoint // live members only
	byEndpoint map[string]identity.PKIID
	conns      map[pair]uint64 // connected pairs -> connection generation
	gen        uint64
	cuts       map[pair]bool
	isolated   map[identity.PKIID]bool
	linkLoss   map[pair]float64
	links      map[link]*linkState
	stats      map[identity.PKIID]*MemberStats
}

// pair is an unordered pair of members, smaller PKI-ID first.
type pair struct{ a, b identity.PKIID }

func mkpair(x, y identity.PKIID) pair {
	if y.Less(x) {
		x, y = y, x
	}
	return pair{x, y}
}

// link is a directed link.
type link struct{ from, to identity.PKIID }

// linkState is one directed link's generator and its in-flight messages,
// kept in send order behind a single timer so that they arrive in order.
type linkState struct {
	rng     *rand.Rand
	pending []delivery
	timer   *time.Timer
	last    time.Time // latest scheduled arrival: later sends never overtake it
}

type delivery struct {
	at  time.Time
	gen uint64
	msg comm.Message
}

// New creates an empty network. A Config that fails Validate panics: it is
// a programming error in a test, not input from a peer.
func New(cfg Config) *Network {
	if err := cfg.Validate(); err != nil {
		panic(err)
	}
	return &Network{
		cfg:        cfg.withDefaults(),
		members:    make(map[identity.PKIID]*Endpoint),
		byEndpoint: make(map[string]identity.PKIID),
		conns:      make(map[pair]uint64),
		cuts:       make(map[pair]bool),
		isolated:   make(map[identity.PKIID]bool),
		linkLoss:   make(map[pair]float64),
		links:      make(map[link]*linkState),
		stats:      make(map[identity.PKIID]*MemberStats),
	}
}

// Join adds a member. endpoint is the address others can Connect to (may be
// empty for a member nobody bootstraps from); org and cert fill the Org and
// Cert of every message it sends. Joining again with the PKI-ID of a
// crashed or closed member is a restart.
func (n *Network) Join(id identity.PKIID, endpoint, org string, cert []byte) (*Endpoint, error) {
	if id.IsZero() {
		return nil, ErrZeroID
	}
	n.mu.Lock()
	defer n.mu.Unlock()
	if n.closed {
		return nil, ErrNetClosed
	}
	if _, ok := n.members[id]; ok {
		return nil, fmt.Errorf("%w: %v", ErrDuplicateID, id)
	}
	if endpoint != "" {
		if _, ok := n.byEndpoint[endpoint]; ok {
			return nil, fmt.Errorf("%w: %q", ErrEndpointInUse, endpoint)
		}
		n.byEndpoint[endpoint] = id
	}
	e := &Endpoint{
		net:      n,
		id:       id,
		endpoint: endpoint,
		org:      org,
		cert:     append([]byte(nil), cert...),
		in:       make(chan comm.Message, n.cfg.QueueSize),
		events:   make(chan comm.Event, n.cfg.EventQueue),
	}
	n.members[id] = e
	n.stat(id)
	return e, nil
}

// Close stops every pending delivery and every member. It is idempotent.
func (n *Network) Close() {
	n.mu.Lock()
	defer n.mu.Unlock()
	if n.closed {
		return
	}
	n.closed = true
	for _, ls := range n.links {
		if ls.timer != nil {
			ls.timer.Stop()
		}
		ls.pending = nil
	}
	for _, e := range n.members {
		e.dead = true
	}
	clear(n.members)
	clear(n.byEndpoint)
	clear(n.conns)
}

// removeLocked takes a member off the network (crash or close).
func (n *Network) removeLocked(e *Endpoint) {
	e.dead = true // before disconnecting: a dead end hears no Down
	for p := range n.conns {
		if p.a == e.id || p.b == e.id {
			n.disconnectLocked(p)
		}
	}
	delete(n.members, e.id)
	if e.endpoint != "" && n.byEndpoint[e.endpoint] == e.id {
		delete(n.byEndpoint, e.endpoint)
	}
}

// disconnectLocked tears down a connection and tells each live end: the
// stream broke (comm.Event.Broken; memnet retires no idle stream). Its
// in-flight messages are lost when their timer fires (generation check).
func (n *Network) disconnectLocked(p pair) {
	if _, ok := n.conns[p]; !ok {
		return
	}
	delete(n.conns, p)
	if ea, ok := n.members[p.a]; ok {
		n.emitLocked(ea, comm.Event{Peer: p.b, Org: n.orgOf(p.b), Up: false, Broken: true})
	}
	if eb, ok := n.members[p.b]; ok {
		n.emitLocked(eb, comm.Event{Peer: p.a, Org: n.orgOf(p.a), Up: false, Broken: true})
	}
}

// connectLocked makes sure a and b are connected, announcing a new
// connection to both ends, and returns its generation.
func (n *Network) connectLocked(a, b *Endpoint) uint64 {
	p := mkpair(a.id, b.id)
	if g, ok := n.conns[p]; ok {
		return g
	}
	n.gen++
	n.conns[p] = n.gen
	n.emitLocked(a, comm.Event{Peer: b.id, Org: b.org, Up: true})
	n.emitLocked(b, comm.Event{Peer: a.id, Org: a.org, Up: true})
	return n.gen
}

func (n *Network) emitLocked(e *Endpoint, ev comm.Event) {
	if e.dead {
		return
	}
	select {
	case e.events <- ev:
	default:
		n.stat(e.id).DroppedEvents++
	}
}

func (n *Network) orgOf(id identity.PKIID) string {
	if e, ok := n.members[id]; ok {
		return e.org
	}
	return ""
}

func (n *Network) partitionedLocked(a, b identity.PKIID) bool {
	return n.isolated[a] || n.isolated[b] || n.cuts[mkpair(a, b)]
}

func (n *Network) lossLocked(a, b identity.PKIID) float64 {
	if p, ok := n.linkLoss[mkpair(a, b)]; ok {
		return p
	}
	return n.cfg.Loss
}

// linkLocked returns the directed link's state, seeding its generator from
// Config.Seed and the two PKI-IDs so that it does not depend on the order
// in which links were first used.
func (n *Network) linkLocked(from, to identity.PKIID) *linkState {
	l := link{from, to}
	if ls, ok := n.links[l]; ok {
		return ls
	}
	h := fnv.New64a()
	h.Write(from[:])
	h.Write(to[:])
	var seed [8]byte
	binary.LittleEndian.PutUint64(seed[:], n.cfg.Seed)
	h.Write(seed[:])
	ls := &linkState{rng: rand.New(rand.NewPCG(n.cfg.Seed, h.Sum64()))}
	n.links[l] = ls
	return ls
}

// fire delivers the messages of one link whose time has come, in order,
// and re-arms the timer for the next.
func (n *Network) fire(l link) {
	n.mu.Lock()
	defer n.mu.Unlock()
	ls := n.links[l]
	if n.closed || ls == nil {
		return
	}
	now := time.Now()
	i := 0
	for ; i < len(ls.pending) && !ls.pending[i].at.After(now); i++ {
		d := ls.pending[i]
		n.deliverLocked(l, d.gen, d.msg)
		ls.pending[i] = delivery{}
	}
	ls.pending = ls.pending[i:]
	ls.timer = nil
	if len(ls.pending) > 0 {
		ls.timer = time.AfterFunc(ls.pending[0].at.Sub(now), func() { n.fire(l) })
	}
}

// deliverLocked hands msg to the receiver's queue if the connection it was
// sent on still stands, and counts the outcome.
func (n *Network) deliverLocked(l link, gen uint64, msg comm.Message) {
	dst, ok := n.members[l.to]
	if !ok || n.conns[mkpair(l.from, l.to)] != gen {
		n.stat(l.from).Lost.Add(msg.Size)
		return
	}
	select {
	case dst.in <- msg:
		n.stat(l.to).Received.Add(msg.Size)
	default:
		n.stat(l.to).Dropped.Add(msg.Size)
	}
}
