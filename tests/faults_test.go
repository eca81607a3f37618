//go:build faults

package tests

import (
	"fmt"
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
// blocks stream, keep the stream going, restart it: it catches up.
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
	before := f.ordererHeight()
	f.waitOrdererAbove(before+20, 60*time.Second) // the stream goes on without it
	took := f.follow(30*time.Second, victim)
	t.Logf("others kept up while %s was down (%v to reach the orderer's height of the moment)", victim, took)
	fd.stop()
	start := time.Now()
	f.restart(victim)
	o, _ := f.converge(60 * time.Second)
	recovery(t, "kill-9 non-leader", time.Since(start), fmt.Sprintf("%s, height %d, %d batches fed", victim, o.Height, fd.ok.Load()))
}

// TestFaultKillEachLeader: kill -9 each org's leader in turn while blocks
// stream: another peer of the org takes over and no block is lost.
func TestFaultKillEachLeader(t *testing.T) {
	f := upNet(t, 2, 3, fastFailureEnv...)
	fd := f.feed(150*time.Millisecond, 10)
	var dead []string
	for _, org := range f.orgs() {
		leaders := f.oneLeaderPerOrg(30*time.Second, dead...)
		old := leaders[org]
		f.kill9(old)
		dead = append(dead, old)
		killed := time.Now()
		var took time.Duration
		f.eventually(30*time.Second, "a new leader in "+org, func() error {
			ls, err := f.leaders(dead...)
			if err != nil {
				return err
			}
			if len(ls[org]) != 1 {
				return fmt.Errorf("org %s leaders %v", org, ls[org])
			}
			took = time.Since(killed)
			return nil
		})
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
	f.oneLeaderPerOrg(30 * time.Second)
	recovery(t, "kill-9 leaders (restarted)", time.Since(start), fmt.Sprintf("height %d", o.Height))
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
