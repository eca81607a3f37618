package gossip

import (
	"errors"
	"testing"

	"github.com/blockgossip/blockgossip/comm"
	"github.com/blockgossip/blockgossip/ledger"
	pb "github.com/blockgossip/blockgossip/protos"
)

func TestCrashedPeerDeclaredDeadThenReadmittedWithNewIncarnation(t *testing.T) {
	cfg := DefaultConfig()
	cfg.PullEnabled = false
	// The bound below assumes every peer heard the victim's last alive by
	// relay; with this seed and random push they do. (With other random
	// draws a peer may first hear it from anti-entropy up to SyncInterval
	// later, which restarts its expiry clock.)
	cfg.Tree = false
	net := convergedNet(t, 20, cfg, 4)
	const victim = 7
	vid := fakeID(victim)
	net.peers[victim].down = true
	crashedAt := net.now

	// Nobody may declare it dead before Expiration minus one alive
	// interval (its last alive may be that old), and everybody must within
	// Expiration plus one expiry scan (Expiration/10 ticks).
	for net.now < crashedAt+cfg.Expiration-cfg.AliveInterval {
		net.tick()
		for _, sp := range net.peers {
			if !sp.down && sp.tr.dead[vid] > 0 {
				t.Fatalf("peer %d declared the victim dead %d ticks after the crash (expiration %d)", sp.idx, net.now-crashedAt, cfg.Expiration)
			}
		}
	}
	for net.now < crashedAt+cfg.Expiration+cfg.Expiration/10 {
		net.tick()
	}
	for _, sp := range net.peers {
		if sp.down {
			continue
		}
		if sp.tr.dead[vid] != 1 || sp.p.IsAlive(vid) {
			t.Fatalf("peer %d: victim dead events %d, alive %v, %d ticks after the crash", sp.idx, sp.tr.dead[vid], sp.p.IsAlive(vid), net.now-crashedAt)
		}
		for _, id := range sp.p.LivePeers() {
			if id == vid {
				t.Fatalf("peer %d still pushes to the dead victim", sp.idx)
			}
		}
	}

	// Restart with the next incarnation and an empty state; it bootstraps
	// from peer 0.
	reachable := make([]int, len(net.peers))
	for i, sp := range net.peers {
		reachable[i] = sp.reachable[vid]
	}
	restarted := net.add(victim, "org1", cfg, 2)
	restarted.p.AddBootstrap(comm.Peer{ID: fakeID(0), Endpoint: "peer0:7051"})
	net.collect(restarted)
	net.deliver()
	restartAt := net.now
	for net.now < restartAt+3*cfg.AliveInterval && !net.converged() {
		net.tick()
	}
	if !net.converged() {
		t.Fatalf("restarted peer not readmitted by everyone within %d ticks", 3*cfg.AliveInterval)
	}
	for _, sp := range net.peers {
		if sp.idx == victim {
			continue
		}
		if sp.tr.alive[vid] != 2 || sp.tr.readmits == 0 {
			t.Fatalf("peer %d: victim admitted with incarnation %d (readmits %d), want 2", sp.idx, sp.tr.alive[vid], sp.tr.readmits)
		}
		if sp.reachable[vid] <= reachable[sp.idx] {
			t.Fatalf("peer %d readmitted the victim without telling its transport it is reachable", sp.idx)
		}
	}
	t.Logf("dead everywhere within %d ticks of the crash; readmitted everywhere %d ticks after restart",
		cfg.Expiration+cfg.Expiration/10, net.now-restartAt)
}

func TestReplayedOrOlderAliveIsIgnored(t *testing.T) {
	cfg := DefaultConfig()
	cfg.PullEnabled = false
	net := convergedNet(t, 3, cfg, 5)
	p0, p1 := net.peers[0], net.peers[1]
	old := p1.p.aliveEnvelope() // p1's current alive
	net.ticks(cfg.AliveInterval + 1)
	newer := p0.p.members[p1.p.self.ID].seq
	p0.p.Step(fakeID(2), "org1", old, 0)
	if got := p0.p.members[p1.p.self.ID].seq; got != newer {
		t.Fatalf("replayed alive moved sequence from %d to %d", newer, got)
	}
	if msgs := p0.p.Ready().Messages; len(msgs) != 0 {
		t.Fatalf("replayed alive was relayed (%d messages)", len(msgs))
	}
}

// forged returns a copy of b with its transactions replaced: the header
// (and so its hash) is the real one, the data hash no longer matches.
func forgedData(b *pb.Block) *pb.Block {
	return &pb.Block{Header: b.Header, Data: &pb.BlockData{Transactions: [][]byte{[]byte("evil")}}, Metadata: b.Metadata}
}

// forgedSig returns a block signed by someone who is not the orderer.
func forgedSig(n uint64, prev []byte) *pb.Block {
	b := ledger.NewBlock(n, prev, [][]byte{[]byte("evil")}, 0)
	ledger.SignBlock(b, macOrderer{key: []byte("not the orderer")}.sign)
	return b
}

func TestForgedBlockIsNeitherCommittedNorForwardedAndSenderPenalised(t *testing.T) {
	cfg := DefaultConfig()
	cfg.PullEnabled = false
	cfg.Fanout = 30
	net := convergedNet(t, 30, cfg, 6)
	chain := makeChain(testOrderer, 3, 6)
	attacker := fakeID(999) // not a member: sends over a stream anyway
	victim := net.peers[1]
	send := func(b *pb.Block) {
		env := envelope(&pb.GossipMessage{Content: &pb.GossipMessage_Block{Block: &pb.BlockMessage{Block: b, Hops: 1}}})
		victim.p.Step(attacker, "org1", env, 0)
		net.collect(victim)
		net.deliver()
	}
	// 1: the real header with forged transactions, sent before the real
	// block: it must not poison dedupe for the real one.
	send(forgedData(chain[0]))
	// 2: a block signed by a wrong key.
	send(forgedSig(0, nil))
	for _, sp := range net.peers {
		if len(sp.commits) != 0 || len(sp.tr.forwarded) != 0 {
			t.Fatalf("peer %d committed %d / forwarded %d forged blocks", sp.idx, len(sp.commits), len(sp.tr.forwarded))
		}
	}
	if len(victim.tr.rejected) != 2 || !errors.Is(victim.tr.rejected[0], ledger.ErrBadDataHash) ||
		!errors.Is(victim.tr.rejected[1], ledger.ErrBadSignature) {
		t.Fatalf("victim rejections: %v", victim.tr.rejected)
	}
	if got := victim.p.Offences(attacker); got != 2 {
		t.Fatalf("attacker has %d offences, want 2", got)
	}
	// The real block still goes everywhere.
	net.inject(0, chain[0])
	for _, sp := range net.peers {
		if len(sp.commits) != 1 {
			t.Fatalf("peer %d: %d commits after the real block", sp.idx, len(sp.commits))
		}
		checkPrefix(t, sp, chain)
	}
	// A third offence bans the attacker: disconnected, then ignored.
	send(forgedSig(1, ledger.HeaderHash(chain[0])))
	if !victim.p.IsBanned(attacker) || !victim.tr.banned[attacker] {
		t.Fatal("attacker not banned after MaxOffences invalid blocks")
	}
	rejections := len(victim.tr.rejected)
	send(chain[1]) // even a valid block from a banned peer is ignored
	if len(victim.tr.rejected) != rejections || victim.p.Height() != 1 {
		t.Fatalf("banned peer's message was processed (height %d)", victim.p.Height())
	}
	net.ticks(cfg.BanTicks)
	send(chain[1])
	if victim.p.Height() != 2 {
		t.Fatalf("ban did not expire: height %d", victim.p.Height())
	}
}

func TestBanEmitsDisconnect(t *testing.T) {
	cfg := DefaultConfig()
	cfg.PullEnabled = false
	net := newNet(t, 1, cfg, 7)
	p := net.peers[0].p
	attacker := fakeID(999)
	for range cfg.MaxOffences {
		env := envelope(&pb.GossipMessage{Content: &pb.GossipMessage_Block{Block: &pb.BlockMessage{Block: forgedSig(0, nil), Hops: 1}}})
		p.Step(attacker, "org1", env, 0)
	}
	r := p.Ready()
	if len(r.Disconnect) != 1 || r.Disconnect[0] != attacker {
		t.Fatalf("Disconnect = %v, want the attacker", r.Disconnect)
	}
}

func TestMalformedInputNeverPanics(t *testing.T) {
	cfg := DefaultConfig()
	net := newNet(t, 1, cfg, 8)
	p := net.peers[0].p
	from := fakeID(5)
	inputs := []*pb.Envelope{
		nil, {}, {Payload: []byte{0xff, 0xff, 0xff}},
		envelope(&pb.GossipMessage{Content: &pb.GossipMessage_Alive{Alive: &pb.AliveMessage{}}}),
		envelope(&pb.GossipMessage{Content: &pb.GossipMessage_Block{Block: &pb.BlockMessage{}}}),
		envelope(&pb.GossipMessage{Content: &pb.GossipMessage_Block{Block: &pb.BlockMessage{Block: &pb.Block{Header: []byte{1, 2}}}}}),
		envelope(&pb.GossipMessage{Content: &pb.GossipMessage_MembershipRequest{MembershipRequest: &pb.MembershipRequest{SelfAlive: &pb.Envelope{Payload: []byte{9}}}}}),
		envelope(&pb.GossipMessage{Content: &pb.GossipMessage_MembershipResponse{MembershipResponse: &pb.MembershipResponse{Alive: []*pb.Envelope{nil, {}}}}}),
		envelope(&pb.GossipMessage{Content: &pb.GossipMessage_Leadership{Leadership: &pb.LeadershipMessage{}}}),
		envelope(&pb.GossipMessage{Content: &pb.GossipMessage_PullResponse{PullResponse: &pb.PullResponse{Blocks: []*pb.Block{nil}}}}),
		envelope(&pb.GossipMessage{Content: &pb.GossipMessage_StateResponse{StateResponse: &pb.StateResponse{}}}),
		envelope(&pb.GossipMessage{Content: &pb.GossipMessage_Graft{Graft: &pb.Graft{}}}),
		envelope(&pb.GossipMessage{}),
	}
	for _, env := range inputs {
		p.Step(from, "org1", env, 0)
		p.Tick()
	}
	if p.Height() != 0 || len(p.LivePeers()) != 0 {
		t.Fatalf("malformed input changed state: height %d, live %d", p.Height(), len(p.LivePeers()))
	}
}

// Leadership messages carry no signature: the stream proves who sent one.
// So a declaration counts only from the member it names, of our org, and
// an unsigned one from that member is followed.
func TestLeadershipTakesTheSendersWordOnly(t *testing.T) {
	net := newSimNet(t, 3)
	for i := range 3 {
		net.add(i, "org1", DefaultConfig(), 1)
	}
	net.add(3, "org2", DefaultConfig(), 1)
	net.seedMembership()
	p := net.peers[0].p
	if _, ok := p.Leader(); ok {
		t.Fatal("a leader before any declaration: the test proves nothing")
	}
	declare := func(from, named int, org string) {
		id := fakeID(named)
		env := envelope(&pb.GossipMessage{Content: &pb.GossipMessage_Leadership{Leadership: &pb.LeadershipMessage{
			PkiId: id[:], Org: org, Declaration: true, Incarnation: 1, Sequence: 1,
		}}})
		p.Step(fakeID(from), net.peers[from].p.self.Org, env, 0)
	}
	declare(2, 1, "org1") // names peer 1, comes from peer 2
	declare(3, 3, "org1") // a member of org2 claiming org1
	declare(3, 3, "org2")
	if l, ok := p.Leader(); ok {
		t.Fatalf("leader %v from a declaration its sender could not make", l)
	}
	declare(1, 1, "org1")
	if l, ok := p.Leader(); !ok || l != fakeID(1) {
		t.Fatalf("leader %v (%v), want peer 1 after its own declaration", l, ok)
	}
}

// A member silent past Expiration (a partition, a SIGSTOP) and then heard
// again with the same incarnation is readmitted, and each peer tells its
// transport the member is reachable: a redial backing off since the
// silence began tries again at once.
func TestReadmittedMemberIsReachable(t *testing.T) {
	cfg := DefaultConfig()
	cfg.PullEnabled = false
	net := convergedNet(t, 6, cfg, 5)
	const victim = 4
	vid := fakeID(victim)
	net.peers[victim].down = true
	net.ticks(cfg.Expiration + cfg.Expiration/10 + 1)
	before := make([]int, len(net.peers))
	for i, sp := range net.peers {
		if i != victim && sp.p.IsAlive(vid) {
			t.Fatalf("peer %d still lists the silent member: the test proves nothing", i)
		}
		before[i] = sp.reachable[vid]
	}
	net.peers[victim].down = false
	for limit := net.now + 3*cfg.AliveInterval; net.now < limit && !net.converged(); {
		net.tick()
	}
	if !net.converged() {
		t.Fatalf("silent member not readmitted within %d ticks of its return", 3*cfg.AliveInterval)
	}
	for i, sp := range net.peers {
		if i != victim && sp.reachable[vid] != before[i]+1 {
			t.Fatalf("peer %d: told its transport %d times that the readmitted member is reachable, want once", i, sp.reachable[vid]-before[i])
		}
	}
}
