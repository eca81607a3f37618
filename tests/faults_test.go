//go:build faults

package tests

import (
	"fmt"
	"regexp"
	"strconv"
	"syscall"
	"testing"
	"time"
)

// The fault suite: real binaries, real signals, real LevelDB directories.
// Each scenario is bounded by deadlines and ends with every live peer at
// the orderer's height and tip hash. Run it with
//
//	go test -race -tags faults -v -run . ./tests/
//
// Lines starting with RECOVERY give each scenario's measured recovery
// time: from the fault lifted to every peer at the orderer's height.

// TestFaultKillNonLeaderCatchesUp: kill -9 a random non-leader peer while
// blocks stream, keep the stream going, restart it: it catches up. Both
// the kill and then a SIGTERM show at its org mates as broken tree links.
func TestFaultKillNonLeaderCatchesUp(t *testing.T) {
	f := upNet(t, 2, 3, fastFailureEnv...)
	rng := seeded(t)
	leaders := f.oneLeaderPerOrg(30 * time.Second)
	var cands []string
	for _, p := range f.peers("") {
		if leaders[p.Org] != p.Name {
			cands = append(cands, p.Name)
		}
	}
	victim := cands[rng.IntN(len(cands))]
	fd := f.feed(150*time.Millisecond, 10)
	f.waitOrdererAbove(f.ordererHeight()+5, 30*time.Second)
	f.kill9(victim)
	// Its org mates are its tree neighbours (3 peers, fanout 4): their
	// streams to it break as the kernel closes its sockets, and they drop
	// the links at once, not after the membership's expiry.
	f.linksBreak(victim, 0)
	before := f.ordererHeight()
	f.waitOrdererAbove(before+20, 60*time.Second) // the stream goes on without it
	took := f.follow(30*time.Second, victim)
	t.Logf("others kept up while %s was down (%v to reach the orderer's height of the moment)", victim, took)
	fd.stop()
	start := time.Now()
	f.restart(victim)
	o, _ := f.converge(60 * time.Second)
	recovery(t, "kill-9 non-leader", time.Since(start), fmt.Sprintf("%s, height %d, %d batches fed", victim, o.Height, fd.ok.Load()))
	// A graceful stop (SIGTERM: a restart, an upgrade) breaks the links
	// too: the stopping peer ends its streams as failures, not as the
	// clean end of a stream retired for another.
	broken, err := f.brokenLinks(victim)
	if err != nil {
		t.Fatal(err)
	}
	f.stop(victim)
	f.linksBreak(victim, broken)
	f.restart(victim)
	f.submit(10)
	f.converge(60 * time.Second)
}

// linksBreak waits until the org mates of victim, killed or stopped, have
// counted more broken tree links than before: their streams to it broke,
// and they dropped it as a parent at once, not after the membership's
// expiry.
func (f *faultNet) linksBreak(victim string, before float64) {
	f.t.Helper()
	eventually(f.t, 10*time.Second, "an org mate of "+victim+" counts its tree link to it broken", func() error {
		sum, err := f.brokenLinks(victim)
		if err != nil {
			return err
		}
		if sum <= before {
			return fmt.Errorf("%v tree links broken at %s's org mates, %v before it went", sum, victim, before)
		}
		return nil
	})
}

// brokenLinks sums blockgossip_gossip_tree_links_broken_total over the org
// mates of name.
func (f *faultNet) brokenLinks(name string) (float64, error) {
	var sum float64
	for _, p := range f.peers(f.node(name).Org) {
		if p.Name != name {
			v, err := metricSum(p.Operations, "blockgossip_gossip_tree_links_broken_total")
			if err != nil {
				return 0, fmt.Errorf("%s: %v", p.Name, err)
			}
			sum += v
		}
	}
	return sum, nil
}

// TestFaultKillEachLeader: kill -9 each org's leader in turn while blocks
// stream: another peer of the org takes over and no block is lost; then a
// leader's SIGTERM, the same.
func TestFaultKillEachLeader(t *testing.T) {
	f := upNet(t, 2, 3, fastFailureEnv...)
	fd := f.feed(150*time.Millisecond, 10)
	var dead []string
	for _, org := range f.orgs() {
		leaders := f.oneLeaderPerOrg(30*time.Second, dead...)
		old := leaders[org]
		killed := time.Now()
		f.kill9(old)
		dead = append(dead, old)
		took := f.takeover(org, killed, dead...)
		// Blocks cut after the takeover reach every survivor.
		f.waitOrdererAbove(f.ordererHeight()+10, 30*time.Second)
		f.follow(30*time.Second, dead...)
		recovery(t, "kill-9 leader "+org+" (takeover)", took, "killed "+old)
	}
	fd.stop()
	_, took := f.converge(60*time.Second, dead...)
	recovery(t, "kill-9 leaders (survivors)", took, "after the stream stopped")
	start := time.Now()
	for _, n := range dead {
		f.restart(n)
	}
	o, _ := f.converge(60 * time.Second)
	leaders := f.oneLeaderPerOrg(30 * time.Second)
	recovery(t, "kill-9 leaders (restarted)", time.Since(start), fmt.Sprintf("height %d", o.Height))

	// A leader stopped gracefully (SIGTERM: a restart, an upgrade) hands
	// over as fast: its streams end as failures, which its org mates
	// take as its end.
	fd = f.feed(150*time.Millisecond, 10)
	org := f.orgs()[0]
	old := leaders[org]
	stopped := time.Now()
	f.stop(old)
	took = f.takeover(org, stopped, old)
	f.waitOrdererAbove(f.ordererHeight()+10, 30*time.Second)
	f.follow(30*time.Second, old)
	recovery(t, "SIGTERM leader "+org+" (takeover)", took, "stopped "+old)
	fd.stop()
	f.restart(old)
	f.converge(60 * time.Second)
}

// takeover waits until org has one leader again, none of gone, and says
// how long after since that was.
func (f *faultNet) takeover(org string, since time.Time, gone ...string) time.Duration {
	f.t.Helper()
	var took time.Duration
	f.eventually(30*time.Second, "a new leader in "+org, func() error {
		ls, err := f.leaders(gone...)
		if err != nil {
			return err
		}
		if len(ls[org]) != 1 {
			return fmt.Errorf("org %s leaders %v", org, ls[org])
		}
		took = time.Since(since)
		return nil
	})
	return took
}

// TestFaultSigstopBeyondExpiration: SIGSTOP a peer for longer than the
// alive expiration (3 s here), keep blocks flowing, SIGCONT it: the others
// never stall, it is readmitted and catches up.
func TestFaultSigstopBeyondExpiration(t *testing.T) {
	f := upNet(t, 2, 3, fastFailureEnv...)
	rng := seeded(t)
	f.oneLeaderPerOrg(30 * time.Second)
	peers := f.peers("")
	victim := peers[rng.IntN(len(peers))].Name
	fd := f.feed(150*time.Millisecond, 10)
	f.signal(victim, syscall.SIGSTOP)
	stopped := time.Now()
	// While it is stopped, the others follow the orderer (they do not wait
	// on it), and within the expiration they declare it dead.
	for time.Since(stopped) < 6*time.Second {
		f.follow(10*time.Second, victim)
	}
	f.eventually(10*time.Second, "others declare "+victim+" dead", func() error {
		for _, p := range f.livePeers(victim) {
			s, err := status(p)
			if err != nil {
				return err
			}
			if s.LivePeers != len(peers)-2 {
				return fmt.Errorf("%s sees %d live peers, want %d", p.Name, s.LivePeers, len(peers)-2)
			}
		}
		return nil
	})
	fd.stop()
	start := time.Now()
	f.signal(victim, syscall.SIGCONT)
	f.eventually(30*time.Second, victim+" readmitted by everyone", func() error {
		for _, p := range f.livePeers() {
			s, err := status(p)
			if err != nil {
				return err
			}
			if s.LivePeers != len(peers)-1 {
				return fmt.Errorf("%s sees %d live peers, want %d", p.Name, s.LivePeers, len(peers)-1)
			}
		}
		return nil
	})
	readmit := time.Since(start)
	o, _ := f.converge(60 * time.Second)
	f.oneLeaderPerOrg(30 * time.Second)
	recovery(t, "SIGSTOP beyond expiration", time.Since(start), fmt.Sprintf("%s readmitted in %.2fs, height %d", victim, readmit.Seconds(), o.Height))
}

var verifiedRE = regexp.MustCompile(`: (\d+) blocks, all good`)

// TestFaultKill9DuringCommits20Times: kill -9 one peer while it commits,
// 20 times in a row. Every time its ledger reopens consistent (`ledger
// verify` passes) and holds at least every block it had reported
// committed; at the end it catches up.
func TestFaultKill9DuringCommits20Times(t *testing.T) {
	f := upNet(t, 1, 3, fastFailureEnv...)
	rng := seeded(t)
	leaders := f.oneLeaderPerOrg(30 * time.Second)
	var victim string
	for _, p := range f.peers("") {
		if p.Name != leaders[p.Org] {
			victim = p.Name
			break
		}
	}
	fd := f.feed(100*time.Millisecond, 10)
	f.waitOrdererAbove(f.ordererHeight()+5, 30*time.Second)
	var worst time.Duration
	for i := range 20 {
		// Let it commit for a random while (it is catching up, then
		// following the stream), then cut it dead.
		time.Sleep(time.Duration(100+rng.IntN(700)) * time.Millisecond)
		s, err := status(f.node(victim))
		if err != nil {
			t.Fatalf("round %d: %s /status: %v", i, victim, err)
		}
		f.kill9(victim)
		out := f.verifyLedger(victim)
		m := verifiedRE.FindStringSubmatch(out)
		if m == nil {
			t.Fatalf("round %d: ledger verify printed %q", i, out)
		}
		h, _ := strconv.ParseUint(m[1], 10, 64)
		if h < s.Height {
			t.Fatalf("round %d: %s reported height %d before SIGKILL, its ledger reopens at %d: a committed block was lost", i, victim, s.Height, h)
		}
		start := time.Now()
		f.restart(victim)
		if d := time.Since(start); d > worst {
			worst = d
		}
		t.Logf("round %2d: killed at height %d, reopened at %d, verify ok", i, s.Height, h)
	}
	fd.stop()
	start := time.Now()
	o, _ := f.converge(60 * time.Second)
	recovery(t, "kill-9 x20 during commits", time.Since(start), fmt.Sprintf("height %d; slowest restart to healthy %.2fs", o.Height, worst.Seconds()))
}

// TestFaultOrdererRestart: kill -9 the orderer while blocks stream, restart
// it: the peers resume from the right height, with no fork (every peer ends
// at the orderer's tip hash, and its ledger verifies).
func TestFaultOrdererRestart(t *testing.T) {
	f := upNet(t, 2, 2, fastFailureEnv...)
	f.oneLeaderPerOrg(30 * time.Second)
	fd := f.feed(150*time.Millisecond, 10)
	f.waitOrdererAbove(f.ordererHeight()+10, 30*time.Second)
	f.kill9("orderer")
	time.Sleep(2 * time.Second) // peers' deliver streams fail and retry meanwhile
	start := time.Now()
	f.restart("orderer")
	f.waitOrdererAbove(f.ordererHeight()+10, 30*time.Second) // the feeder resumes
	fd.stop()
	o, _ := f.converge(60 * time.Second)
	recovery(t, "orderer kill-9 + restart", time.Since(start), fmt.Sprintf("height %d (includes 10 new blocks)", o.Height))
	// And a graceful restart, with nothing cut while it is down.
	f.stop("orderer")
	start = time.Now()
	f.restart("orderer")
	f.submit(20)
	o, _ = f.converge(60 * time.Second)
	recovery(t, "orderer SIGTERM + restart", time.Since(start), fmt.Sprintf("height %d (includes 2 new blocks)", o.Height))
	// No fork: each peer's chain verifies end to end and ends at the
	// orderer's tip (checked by converge); stop one to verify offline.
	p := f.peers("")[0].Name
	f.stop(p)
	f.verifyLedger(p)
}
