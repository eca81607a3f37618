package election

import (
	"math/rand/v2"
	"testing"

	"github.com/blockgossip/blockgossip/identity"
	pb "github.com/blockgossip/blockgossip/protos"
)

// stallSim drives a cluster whose engine 0 is a liar: a member that
// declares itself leader (claiming a huge height) and never delivers. The
// orderer cuts a block every cutEvery ticks; when an honest engine leads,
// every engine's ledger reaches the orderer's height of delay ticks ago
// (ratePerTick blocks per tick at most, to model a catch-up); every
// ProbeInterval ticks each engine observes the orderer's height.
type stallSim struct {
	c           *cluster
	lying       bool
	liarSeq     uint64
	orderer     uint64
	cutEvery    int
	delay       int
	ratePerTick uint64
	history     []uint64 // orderer height at each tick
	stuck       map[int]bool
	stalls      []Stall // every honest engine's reports
	mine        []Stall // engine 1's
}

func newStallSim(t *testing.T, cfg Config, n int, seed uint64) *stallSim {
	t.Helper()
	c := newCluster(t, cfg, n, seed)
	c.nodes[0].mute = true // the liar runs no engine: it only declares
	return &stallSim{c: c, orderer: 1, cutEvery: 2, ratePerTick: 1 << 20, stuck: map[int]bool{}}
}

func (s *stallSim) step() {
	c := s.c
	if s.cutEvery > 0 && c.now%s.cutEvery == 0 {
		s.orderer++
	}
	s.history = append(s.history, s.orderer)
	if l := c.leaders(); len(l) > 0 {
		avail := s.history[max(0, len(s.history)-1-s.delay)]
		for i, m := range c.nodes {
			if i != 0 && m.up && !s.stuck[i] && m.height < avail {
				m.height = min(avail, m.height+s.ratePerTick)
			}
		}
	}
	if s.lying && c.now%c.cfg.DeclarationInterval == 0 {
		s.liarSeq++
		liar := c.nodes[0].id
		for i, m := range c.nodes {
			if i != 0 && m.up && !m.mute {
				m.e.Step(liar, &pb.LeadershipMessage{PkiId: liar.Bytes(), Declaration: true, Incarnation: 7, Sequence: s.liarSeq, LedgerHeight: 1 << 40})
			}
		}
	}
	for i, m := range c.nodes {
		// Each engine probes at its own phase.
		if i != 0 && m.up && (c.now+3*i)%c.cfg.ProbeInterval == 0 {
			m.e.ObserveOrdererHeight(s.orderer)
		}
	}
	c.step()
	for i, m := range c.nodes {
		if i != 0 && m.up {
			got := m.e.TakeStalls()
			s.stalls = append(s.stalls, got...)
			if i == 1 {
				s.mine = append(s.mine, got...)
			}
		}
	}
}

func (s *stallSim) run(ticks int) {
	for range ticks {
		s.step()
	}
}

// followers counts the live honest engines that follow id.
func (s *stallSim) followers(id identity.PKIID) int {
	n := 0
	for i, m := range s.c.nodes {
		if l, ok := m.e.Leader(); i != 0 && m.up && !m.mute && ok && l == id {
			n++
		}
	}
	return n
}

// honestLeader returns the one honest engine every honest engine follows.
func (s *stallSim) honestLeader() (int, bool) {
	l := s.c.leaders()
	if len(l) != 1 || s.followers(s.c.nodes[l[0]].id) != len(s.c.nodes)-1 {
		return -1, false
	}
	return l[0], true
}

// settle elects an honest leader and catches everyone up.
func (s *stallSim) settle(t *testing.T) int {
	t.Helper()
	cfg := s.c.cfg
	for range cfg.StartupGrace + cfg.LeaderAliveThreshold + 3*cfg.ElectionDuration {
		s.step()
	}
	l, ok := s.honestLeader()
	if !ok {
		t.Fatalf("no honest leader agreed by tick %d: leaders %v", s.c.now, s.c.leaders())
	}
	return l
}

// stallBound: the first probe after the stall, the timeout, a proposal
// round and the new declaration.
func stallBound(cfg Config) int {
	return cfg.ProbeInterval + cfg.StallTimeout + cfg.ElectionDuration + cfg.DeclarationInterval + 2
}

func TestStalledLeaderIsDistrustedAfterTheTimeout(t *testing.T) {
	cfg := DefaultConfig()
	for seed := range uint64(10) {
		s := newStallSim(t, cfg, 5, seed)
		s.settle(t)
		s.lying = true
		s.run(cfg.DeclarationInterval + 1)
		liar := s.c.nodes[0].id
		if got := s.followers(liar); got != 4 {
			t.Fatalf("seed %d: %d of 4 engines follow the liar; the scenario needs all of them", seed, got)
		}
		start, stalledAt := s.c.now, s.orderer
		// Nobody gives up before StallTimeout ticks of stall.
		for range cfg.StallTimeout - 1 {
			s.step()
			if got := s.followers(liar); got != 4 {
				t.Fatalf("seed %d tick %d: only %d engines follow the liar %d ticks into the stall; the timeout is %d",
					seed, s.c.now, got, s.c.now-start, cfg.StallTimeout)
			}
		}
		took := 0
		for ; took <= stallBound(cfg); took++ {
			if _, ok := s.honestLeader(); ok {
				break
			}
			s.step()
		}
		l, ok := s.honestLeader()
		if !ok {
			t.Fatalf("seed %d: no honest leader %d ticks after the stall began (bound %d); leaders %v",
				seed, s.c.now-start, cfg.StallTimeout-1+stallBound(cfg), s.c.leaders())
		}
		if l != 1 {
			t.Fatalf("seed %d: engine %d took over, want 1 (lowest honest ID)", seed, l)
		}
		s.run(cfg.StallTimeout)
		for i, m := range s.c.nodes[1:] {
			if m.height <= stalledAt {
				t.Fatalf("seed %d: engine %d still at %d, the stall began at %d", seed, i+1, m.height, stalledAt)
			}
		}
		if len(s.stalls) != 4 {
			t.Fatalf("seed %d: %d stall reports, want one per honest engine: %+v", seed, len(s.stalls), s.stalls)
		}
		for _, st := range s.stalls {
			if st.Leader != liar || st.Offence != 1 || st.Penalty != cfg.StallPenalty || st.OrdererHeight <= st.OrgHeight {
				t.Fatalf("seed %d: stall report %+v, want the liar, a first offence of %d ticks", seed, st, cfg.StallPenalty)
			}
		}
		// The liar keeps declaring: it stays ignored for the penalty.
		for range cfg.StallPenalty - 2*cfg.StallTimeout - stallBound(cfg) {
			s.step()
			if got, ok := s.honestLeader(); !ok || got != 1 {
				t.Fatalf("seed %d tick %d: leadership moved during the penalty: leaders %v", seed, s.c.now, s.c.leaders())
			}
		}
	}
}

func TestHonestSlowLeaderIsNotDistrusted(t *testing.T) {
	cfg := DefaultConfig()
	cases := []struct {
		name     string
		delay    int
		rate     uint64
		burst    uint64
		cutEvery int
	}{
		{"a block or two behind", 3, 1 << 20, 0, 2},
		{"slow: blocks take most of the timeout", cfg.StallTimeout - cfg.ProbeInterval, 1 << 20, 0, 1},
		{"catching up after a burst, slower than the timeout", 0, 2, 400, 4},
		{"idle orderer", 0, 1 << 20, 0, 0},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			s := newStallSim(t, cfg, 5, 3)
			s.delay, s.ratePerTick, s.cutEvery = tc.delay, tc.rate, tc.cutEvery
			leader := s.settle(t)
			s.orderer += tc.burst
			for range 5000 {
				s.step()
				if l, ok := s.honestLeader(); !ok || l != leader {
					t.Fatalf("tick %d: leadership changed under an honest leader: leaders %v", s.c.now, s.c.leaders())
				}
			}
			if len(s.stalls) != 0 {
				t.Fatalf("honest leader blamed: %+v", s.stalls)
			}
			if h := s.c.nodes[2].height; h+uint64(tc.delay)+2 < s.orderer {
				t.Fatalf("org at %d, orderer at %d: the simulation did not deliver", h, s.orderer)
			}
		})
	}
}

// TestOneStuckFollowerDoesNotBlameTheLeader: a follower whose own ledger is
// stuck (a full disk) sees other org peers advance: the org is not stalled.
func TestOneStuckFollowerDoesNotBlameTheLeader(t *testing.T) {
	cfg := DefaultConfig()
	s := newStallSim(t, cfg, 5, 4)
	leader := s.settle(t)
	s.stuck[3] = true
	s.run(2000)
	if l, ok := s.honestLeader(); !ok || l != leader || len(s.stalls) != 0 {
		t.Fatalf("leaders %v, stalls %+v: a stuck follower blamed a delivering leader", s.c.leaders(), s.stalls)
	}
}

func TestStallPenaltyExpiresAndGrowsOnRepeat(t *testing.T) {
	cfg := DefaultConfig()
	cfg.StallPenalty, cfg.MaxStallPenalty = 200, 500
	s := newStallSim(t, cfg, 4, 5)
	s.settle(t)
	s.lying = true
	liar := s.c.nodes[0].id
	e := s.c.nodes[1].e
	var offences []Stall
	for len(offences) < 4 {
		s.step()
		for _, st := range s.mine {
			if st.Leader == liar && len(offences) < st.Offence {
				offences = append(offences, st)
				// Penalty: distrusted until its very last tick, then the
				// liar's next declaration wins the org back.
				if !e.Distrusted(liar) {
					t.Fatalf("offence %d: the liar is not distrusted right after it", st.Offence)
				}
				s.run(st.Penalty - 1)
				if l, _ := e.Leader(); !e.Distrusted(liar) || l == liar {
					t.Fatalf("offence %d: penalty %d ended early", st.Offence, st.Penalty)
				}
				s.run(cfg.DeclarationInterval + 1)
				if l, _ := e.Leader(); e.Distrusted(liar) || l != liar {
					t.Fatalf("offence %d: penalty %d did not expire: engine 1 follows %v", st.Offence, st.Penalty, l)
				}
			}
		}
		s.mine = s.mine[:0]
		if s.c.now > 10000 {
			t.Fatalf("only %d offences by tick %d", len(offences), s.c.now)
		}
	}
	want := []int{200, 400, 500, 500}
	for i, st := range offences {
		if st.Penalty != want[i] {
			t.Fatalf("offence %d: penalty %d, want %d (doubling from StallPenalty, capped at MaxStallPenalty)", i+1, st.Penalty, want[i])
		}
	}
	// The liar goes quiet; once MaxStallPenalty passes after the penalty,
	// its record is forgotten: a later offence is a first one again.
	s.lying = false
	s.run(offences[3].Penalty + cfg.MaxStallPenalty + 2*cfg.LeaderAliveThreshold)
	s.mine = s.mine[:0]
	s.lying = true
	for len(s.mine) == 0 && s.c.now < 20000 {
		s.step()
	}
	if len(s.mine) == 0 || s.mine[0].Offence != 1 || s.mine[0].Penalty != cfg.StallPenalty {
		t.Fatalf("after a quiet spell: stalls %+v, want a first offence", s.mine)
	}
}

// TestNoOrdererHeightNoBlame: without observations (orderer unreachable,
// or stall detection off as in FabricConfig) a declared leader is followed
// whatever happens, as in Fabric.
func TestNoOrdererHeightNoBlame(t *testing.T) {
	for name, cfg := range map[string]Config{"fabric": FabricConfig(), "default": DefaultConfig()} {
		t.Run(name, func(t *testing.T) {
			if cfg.ProbeInterval == 0 {
				cfg.ProbeInterval = 1 << 30 // never probes
			}
			s := newStallSim(t, cfg, 4, 6)
			s.settle(t)
			if name == "default" {
				s.c.cfg.ProbeInterval = 1 << 30 // stop probing from now on
				for _, m := range s.c.nodes {
					m.e.ordererSeen = false
				}
			}
			s.lying = true
			s.run(3000)
			if got := s.followers(s.c.nodes[0].id); got != 3 || len(s.stalls) != 0 {
				t.Fatalf("%d of 3 follow the liar, stalls %+v; want the Fabric behaviour without orderer heights", got, s.stalls)
			}
		})
	}
}

// TestImpossibleHeightsDoNotMakeEveryoneBehind: a claim beyond the
// orderer's height (+MaxLag) is ignored when judging who is up to date.
func TestImpossibleHeightsDoNotMakeEveryoneBehind(t *testing.T) {
	cfg := DefaultConfig()
	rng := rand.New(rand.NewPCG(7, 7))
	e, err := New(cfg, idFor(1, rng), rng)
	if err != nil {
		t.Fatal(err)
	}
	e.Tick(nil, 100)
	e.ObserveOrdererHeight(100)
	liar := Candidate{ID: idFor(0, rng), Height: 1 << 40}
	if best := e.bestHeight([]Candidate{liar}); best != 100 {
		t.Fatalf("best height %d with a liar claiming %d and the orderer at 100; want 100", best, liar.Height)
	}
	if best := e.bestHeight([]Candidate{{ID: liar.ID, Height: 100 + cfg.MaxLag}}); best != 100+cfg.MaxLag {
		t.Fatalf("best height %d: a claim within MaxLag of the orderer must count", best)
	}
}

func TestStallConfigValidate(t *testing.T) {
	bad := map[string]func(*Config){
		"negative timeout":       func(c *Config) { c.StallTimeout = -1 },
		"no probes":              func(c *Config) { c.ProbeInterval = 0 },
		"timeout under 2 probes": func(c *Config) { c.StallTimeout = 2*c.ProbeInterval - 1 },
		"no penalty":             func(c *Config) { c.StallPenalty = 0 },
		"cap below penalty":      func(c *Config) { c.MaxStallPenalty = c.StallPenalty - 1 },
	}
	for name, mut := range bad {
		c := DefaultConfig()
		mut(&c)
		if err := c.Validate(); err == nil {
			t.Errorf("%s: Validate accepted %+v", name, c)
		}
	}
	off := DefaultConfig()
	off.StallTimeout, off.ProbeInterval, off.StallPenalty, off.MaxStallPenalty = 0, 0, 0, 0
	if err := off.Validate(); err != nil {
		t.Errorf("stall detection off: %v", err)
	}
}

// TestAccompliceClaimingImpossibleHeightDoesNotHideTheStall: a second
// member advertising a height the orderer has not reached cannot make the
// org look served.
func TestAccompliceClaimingImpossibleHeightDoesNotHideTheStall(t *testing.T) {
	cfg := DefaultConfig()
	s := newStallSim(t, cfg, 5, 8)
	accomplice := s.c.nodes[4]
	accomplice.mute, accomplice.height = true, 1<<40
	s.run(cfg.StartupGrace + 2*cfg.LeaderAliveThreshold + 3*cfg.ElectionDuration)
	if l := s.c.leaders(); len(l) != 1 || s.followers(s.c.nodes[l[0]].id) != 3 {
		t.Fatalf("no honest leader agreed before the attack: leaders %v", l)
	}
	s.lying = true
	s.run(cfg.DeclarationInterval + 1)
	liar := s.c.nodes[0].id
	if got := s.followers(liar); got != 3 {
		t.Fatalf("%d of 3 honest engines follow the liar; the scenario needs all", got)
	}
	s.run(cfg.StallTimeout - 1 + stallBound(cfg))
	if l := s.c.leaders(); len(l) != 1 || l[0] != 1 || s.followers(s.c.nodes[1].id) != 3 {
		t.Fatalf("leaders %v, %d follow engine 1: the accomplice's claim hid the stall", l, s.followers(s.c.nodes[1].id))
	}
}
