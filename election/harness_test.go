package election

import (
	"math/rand/v2"
	"testing"

	"github.com/blockgossip/blockgossip/identity"
	pb "github.com/blockgossip/blockgossip/protos"
)

// cluster runs N engines of one organisation in lockstep: every tick each
// live engine ticks, then every message it returned is delivered to every
// other live engine it can reach, unless the seeded loss drops it. Membership
// is perfect: an engine's orgPeers are the live engines it can reach.
type cluster struct {
	t     *testing.T
	cfg   Config
	rng   *rand.Rand
	nodes []*member
	loss  float64
	group []int // partition: engines talk only within the same group
	now   int
	sent  int // messages broadcast so far
	// ordererHeight, when above 0, is observed by every driven engine
	// before each tick, as the followers' orderer probes would.
	ordererHeight uint64
}

type member struct {
	id     identity.PKIID
	e      *Engine
	height uint64
	up     bool
	mute   bool // in membership but its engine is not driven (a ghost)
}

// idFor gives engine i an ID whose order matches i (engine 0 is lowest),
// with random low bytes so nothing depends on them.
func idFor(i int, rng *rand.Rand) identity.PKIID {
	var id identity.PKIID
	id[0] = byte(i + 1)
	for j := 1; j < len(id); j++ {
		id[j] = byte(rng.Uint32())
	}
	return id
}

func newCluster(t *testing.T, cfg Config, n int, seed uint64) *cluster {
	t.Helper()
	c := &cluster{t: t, cfg: cfg, rng: rand.New(rand.NewPCG(seed, 1)), group: make([]int, n)}
	for i := range n {
		m := &member{id: idFor(i, c.rng), up: true}
		c.nodes = append(c.nodes, m)
		c.start(i)
	}
	return c
}

// start (re)creates engine i with a fresh incarnation, as a restart would.
func (c *cluster) start(i int) {
	c.t.Helper()
	e, err := New(c.cfg, c.nodes[i].id, rand.New(rand.NewPCG(c.rng.Uint64(), 2)))
	if err != nil {
		c.t.Fatalf("New: %v", err)
	}
	c.nodes[i].e, c.nodes[i].up = e, true
}

func (c *cluster) crash(i int)   { c.nodes[i].up = false }
func (c *cluster) restart(i int) { c.start(i) }

func (c *cluster) reach(i, j int) bool {
	return c.nodes[j].up && c.group[i] == c.group[j]
}

func (c *cluster) partition(groups ...[]int) {
	for g, members := range groups {
		for _, i := range members {
			c.group[i] = g
		}
	}
}

func (c *cluster) heal() {
	for i := range c.group {
		c.group[i] = 0
	}
}

type envelope struct {
	from int
	msg  *pb.LeadershipMessage
}

// step runs one tick across the cluster.
func (c *cluster) step() {
	c.now++
	var out []envelope
	for i, m := range c.nodes {
		if !m.up || m.mute {
			continue
		}
		if c.ordererHeight > 0 {
			m.e.ObserveOrdererHeight(c.ordererHeight)
		}
		var peers []Candidate
		for j, p := range c.nodes {
			if j != i && c.reach(i, j) {
				peers = append(peers, Candidate{ID: p.id, Height: p.height})
			}
		}
		for _, msg := range m.e.Tick(peers, m.height) {
			out = append(out, envelope{i, msg})
		}
	}
	c.sent += len(out)
	for _, env := range out {
		for j, m := range c.nodes {
			if j == env.from || !c.reach(env.from, j) || m.mute {
				continue
			}
			if c.loss > 0 && c.rng.Float64() < c.loss {
				continue
			}
			m.e.Step(c.nodes[env.from].id, env.msg)
		}
	}
}

func (c *cluster) run(ticks int) {
	for range ticks {
		c.step()
	}
}

// leaders lists the live engines that believe they lead.
func (c *cluster) leaders() []int {
	var l []int
	for i, m := range c.nodes {
		if m.up && !m.mute && m.e.IsLeader() {
			l = append(l, i)
		}
	}
	return l
}

// agreed returns the single leader every live engine follows, if there is
// one.
func (c *cluster) agreed() (int, bool) {
	l := c.leaders()
	if len(l) != 1 {
		return -1, false
	}
	for _, m := range c.nodes {
		if !m.up || m.mute {
			continue
		}
		if id, ok := m.e.Leader(); !ok || id != c.nodes[l[0]].id {
			return -1, false
		}
	}
	return l[0], true
}

// runUntilAgreed steps until agreement and returns the ticks it took, or
// fails the test after limit ticks.
func (c *cluster) runUntilAgreed(limit int) (leader, ticks int) {
	c.t.Helper()
	for ticks = 0; ticks <= limit; ticks++ {
		if l, ok := c.agreed(); ok {
			return l, ticks
		}
		c.step()
	}
	c.t.Fatalf("no agreed leader after %d ticks (tick %d); leaders %v", limit, c.now, c.leaders())
	return -1, -1
}
