package gossip

import (
	"errors"
	"fmt"
	"testing"

	"google.golang.org/protobuf/proto"

	"github.com/blockgossip/blockgossip/identity"
	pb "github.com/blockgossip/blockgossip/protos"
)

// isMembershipNews says whether env is relayable membership news (an
// alive, a heartbeat or a batch of them), not a request or response.
func isMembershipNews(t testing.TB, env *pb.Envelope) bool {
	msg := new(pb.GossipMessage)
	if proto.Unmarshal(env.GetPayload(), msg) != nil {
		t.Fatal("undecodable envelope")
	}
	return msg.GetAlive() != nil || msg.GetHeartbeat() != nil || msg.GetMembershipBatch() != nil
}

// With batches a peer sends at most AliveFanout news messages per tick
// (AliveNeighbours with neighbours), whether it has 15 or 47 members, while
// every member stays alive; relayed one by one, the count grows with N.
func TestMembershipMessagesPerTickBoundedByFanout(t *testing.T) {
	for _, tc := range []struct {
		n, batch, nbrs int
	}{{16, 1, 0}, {48, 1, 0}, {48, 1, 6}, {48, 0, 0}} {
		cfg := DefaultConfig()
		cfg.PullEnabled = false
		cfg.AliveBatch = tc.batch
		cfg.AliveNeighbours = tc.nbrs
		net := steadyHBNet(t, tc.n, cfg, 41)
		type key struct {
			from identity.PKIID
			tick int
		}
		perTick := map[key]int{}
		items, msgs := 0, 0
		net.filter = func(m simMsg) bool {
			if isMembershipNews(t, m.env) {
				perTick[key{m.from, net.now}]++
				msgs++
				a, h := membershipItems(t, m.env)
				items += len(a) + len(h)
			}
			return true
		}
		rounds := cfg.Expiration / cfg.AliveInterval // one expiry period
		net.ticks(rounds * cfg.AliveInterval)
		most := 0
		for _, k := range perTick {
			most = max(most, k)
		}
		if !net.converged() {
			t.Fatalf("N=%d batch %d: members lost", tc.n, tc.batch)
		}
		for _, sp := range net.peers {
			if len(sp.tr.dead) != 0 {
				t.Fatalf("N=%d batch %d: peer %d saw deaths %v", tc.n, tc.batch, sp.idx, sp.tr.dead)
			}
		}
		// Every member's news reaches every other member each round.
		if want := rounds * tc.n * (tc.n - 1); items < want {
			t.Fatalf("N=%d batch %d: %d items in %d rounds, want at least %d", tc.n, tc.batch, items, rounds, want)
		}
		switch {
		case tc.batch > 0 && most > max(cfg.AliveFanout, tc.nbrs):
			t.Fatalf("N=%d: a peer sent %d news messages in one tick, want at most AliveFanout = %d (or AliveNeighbours = %d)", tc.n, most, cfg.AliveFanout, tc.nbrs)
		case tc.batch == 0 && most <= 3*cfg.AliveFanout:
			t.Fatalf("N=%d unbatched: at most %d news messages per peer per tick; the comparison needs one-by-one relays", tc.n, most)
		}
		t.Logf("N=%d batch %d neighbours %d: %.2f news messages per peer per tick (most %d), %.1f items per message",
			tc.n, tc.batch, tc.nbrs, float64(msgs)/float64(tc.n*rounds*cfg.AliveInterval), most, float64(items)/float64(msgs))
	}
}

// With batches held for several ticks a crashed peer is still declared dead
// by everyone within Expiration plus one expiry scan, and by no one before
// Expiration has passed since it last heard the victim (nobody missed two
// of its rounds); nobody else dies.
func TestCrashDetectedWithBatches(t *testing.T) {
	for _, batch := range []int{1, 4} {
		cfg := DefaultConfig()
		cfg.PullEnabled = false
		cfg.AliveBatch = batch
		net := steadyHBNet(t, 40, cfg, 42)
		const victim = 11
		vid := fakeID(victim)
		net.peers[victim].down = true
		crashedAt := net.now
		// A peer that missed the victim's last rounds (relays miss a
		// peer now and then) last heard it a round or two earlier, and one
		// that missed three asked the victim at its next expiry scan
		// (askStale): the bound is Expiration after each peer last heard
		// the victim.
		heard := map[int]int{}
		for _, sp := range net.peers {
			if m := sp.p.members[vid]; m != nil {
				heard[sp.idx] = int(m.lastHeard)
				if s := crashedAt - int(m.lastHeard); s > 3*cfg.AliveInterval+cfg.Expiration/10+2*batch {
					t.Fatalf("batch %d: peer %d last heard the victim %d ticks before the crash: it missed three rounds and did not ask", batch, sp.idx, s)
				}
			}
		}
		// The victim's last round may still be on its way when it crashes
		// (alive rounds are not in step across peers, and a batch waits up
		// to AliveBatch ticks per hop): a peer's last hearing is when that
		// news reached it (until it declares the victim dead: second-hand
		// news still moves a dead member's clock), and the bound runs from
		// there.
		lastHeard := func() int {
			last := crashedAt
			for _, sp := range net.peers {
				if m := sp.p.members[vid]; m != nil && !sp.down && sp.tr.dead[vid] == 0 {
					heard[sp.idx] = max(heard[sp.idx], int(m.lastHeard))
					last = max(last, heard[sp.idx])
				}
			}
			return last
		}
		for net.now < lastHeard()+cfg.Expiration+cfg.Expiration/10 {
			net.tick()
			for _, sp := range net.peers {
				if !sp.down && sp.tr.dead[vid] > 0 && net.now <= heard[sp.idx]+cfg.Expiration {
					t.Fatalf("batch %d: peer %d declared the victim dead %d ticks after it last heard it, before Expiration (%d)", batch, sp.idx, net.now-heard[sp.idx], cfg.Expiration)
				}
			}
		}
		if late := lastHeard() - crashedAt; late > 8*batch {
			t.Fatalf("batch %d: news of the victim still arrived %d ticks after its crash", batch, late)
		}
		for _, sp := range net.peers {
			if sp.down {
				continue
			}
			if sp.tr.dead[vid] != 1 || sp.p.IsAlive(vid) {
				t.Fatalf("batch %d: peer %d: victim dead events %d, alive %v", batch, sp.idx, sp.tr.dead[vid], sp.p.IsAlive(vid))
			}
			if len(sp.tr.dead) != 1 || len(sp.p.LivePeers()) != 38 {
				t.Fatalf("batch %d: peer %d: deaths %v, %d live", batch, sp.idx, sp.tr.dead, len(sp.p.LivePeers()))
			}
		}
	}
}

// A batch mixing forged and genuine items: the genuine ones are taken in
// and relayed, the forged ones are rejected one by one and not relayed.
func TestForgedItemsInBatchRejectedGoodOnesAccepted(t *testing.T) {
	cfg := DefaultConfig()
	cfg.PullEnabled = false
	cfg.AliveBatch = 1
	net := steadyHBNet(t, 6, cfg, 43)
	p0, victim, attacker := net.peers[0], net.peers[1], net.peers[2]
	vid, aid := victim.p.self.ID, attacker.p.self.ID
	// A newcomer whose genuine signed alive the attacker relays.
	joiner := net.add(6, "org1", cfg, 1)
	net.arm(joiner)
	jid := joiner.p.self.ID
	m := p0.p.members[vid]
	seq0 := m.seq
	next := victim.p.chain.element(seq0 + 1)
	junk := make([]byte, chainElemLen)
	forgedAlive := envelope(&pb.GossipMessage{Content: &pb.GossipMessage_Alive{Alive: &pb.AliveMessage{
		Member:      &pb.Member{PkiId: vid[:], Endpoint: "evil:1", Org: "org1", Certificate: certOf(vid)},
		Incarnation: m.inc + 1, Sequence: 1, ChainElement: junk, ChainEnd: 100,
	}}})
	forgedAlive.Signature = memberMAC(aid, forgedAlive.Payload)
	p3 := net.peers[3].p.self.ID
	m3 := p0.p.members[p3]
	batch := &pb.MembershipBatch{
		Alives: []*pb.Envelope{forgedAlive, {Payload: []byte{0xff}}, nil, joiner.p.aliveEnvelope()},
		Heartbeats: []*pb.Heartbeat{
			{PkiId: p3[:], Incarnation: m3.inc, Sequence: m3.seq + 1, Element: junk}, // forged
			{PkiId: []byte{1, 2, 3}, Element: junk},                                  // malformed
			{PkiId: vid[:], Incarnation: m.inc, Sequence: m.seq + 1, Element: next[:], LedgerHeight: 77},
		},
	}
	p0.p.Step(aid, "org1", envelope(&pb.GossipMessage{Content: &pb.GossipMessage_MembershipBatch{MembershipBatch: batch}}), 0)

	if !p0.p.IsAlive(jid) || p0.p.members[jid].info.GetEndpoint() != joiner.p.self.Endpoint {
		t.Fatal("the genuine alive in the batch was not taken in")
	}
	if m.seq != seq0+1 || m.inc != victim.p.self.Incarnation || m.height == 77 {
		t.Fatalf("victim at seq %d inc %d height %d: want the genuine heartbeat's seq %d, its own incarnation, the relayed height not believed",
			m.seq, m.inc, m.height, seq0+1)
	}
	if got := p0.p.members[p3].seq; got != m3.seq {
		t.Fatalf("the forged heartbeat moved peer 3 to seq %d", got)
	}
	for _, want := range []struct {
		err error
		n   int
	}{{ErrBadSignature, 1}, {ErrBadHeartbeat, 1}, {ErrMalformed, 3}} {
		if got := net.rejections(0, want.err); got != want.n {
			t.Fatalf("%d rejections as %v, want %d (all: %v)", got, want.err, want.n, net.rej[0].rejected)
		}
	}
	// The next flush relays the genuine items only, and not to the attacker
	// they came from.
	p0.p.Tick()
	relayedAlive, relayedHB := false, false
	for _, o := range p0.p.Ready().Messages {
		alives, hbs := membershipItems(t, o.Env)
		for _, a := range alives {
			if o.To.ID == aid {
				t.Fatal("relayed back to the peer the news came from")
			}
			if string(a.GetMember().GetPkiId()) != string(jid[:]) {
				t.Fatalf("relayed an alive of %x", a.GetMember().GetPkiId())
			}
			relayedAlive = true
		}
		for _, hb := range hbs {
			switch string(hb.GetPkiId()) {
			case string(vid[:]):
				if o.To.ID == aid || o.To.ID == vid {
					t.Fatal("relayed to the peer the heartbeat came from, or to its member")
				}
				relayedHB = true
			case string(p0.p.self.ID[:]):
			default:
				t.Fatalf("relayed a heartbeat of %x", hb.GetPkiId())
			}
		}
	}
	if !relayedAlive || !relayedHB {
		t.Fatalf("genuine items relayed: alive %v, heartbeat %v", relayedAlive, relayedHB)
	}
}

// A big queue is split into batches within maxBatchItems and
// maxBatchBytes, every item once, alives first; a received batch over
// the item bound is read up to it and reported.
func TestBatchSplitAndBounds(t *testing.T) {
	cert := make([]byte, 2000)
	var items []relayItem
	for i := range 3 * maxBatchItems {
		id := fakeID(i)
		if i%3 == 0 {
			items = append(items, relayItem{origin: id, alive: envelope(&pb.GossipMessage{Content: &pb.GossipMessage_Alive{Alive: &pb.AliveMessage{
				Member: &pb.Member{PkiId: id[:], Certificate: cert}, Sequence: uint64(i)}}})})
		} else {
			items = append(items, relayItem{origin: id, hb: &pb.Heartbeat{PkiId: id[:], Sequence: uint64(i), Element: make([]byte, chainElemLen)}})
		}
	}
	envs := batchEnvelopes(items)
	alives, hbs := 0, 0
	for _, env := range envs {
		msg := new(pb.GossipMessage)
		if err := proto.Unmarshal(env.GetPayload(), msg); err != nil || msg.GetMembershipBatch() == nil {
			t.Fatalf("not a batch: %v", err)
		}
		b := msg.GetMembershipBatch()
		if len(b.Alives) > maxBatchItems || len(b.Heartbeats) > maxBatchItems || proto.Size(env) > maxBatchBytes+64 {
			t.Fatalf("a batch of %d alives, %d heartbeats, %d bytes", len(b.Alives), len(b.Heartbeats), proto.Size(env))
		}
		if alives < maxBatchItems && len(b.Heartbeats) > 0 && len(b.Alives) == 0 {
			t.Fatal("heartbeats before the alives were all sent")
		}
		alives += len(b.Alives)
		hbs += len(b.Heartbeats)
	}
	if alives != maxBatchItems || hbs != 2*maxBatchItems {
		t.Fatalf("%d alives and %d heartbeats in %d batches, want %d and %d", alives, hbs, len(envs), maxBatchItems, 2*maxBatchItems)
	}
	t.Logf("%d items in %d batches", len(items), len(envs))

	// Too many items received: the rest is dropped, with a report.
	cfg := DefaultConfig()
	cfg.PullEnabled = false
	cfg.AliveBatch = 1
	net := steadyHBNet(t, 3, cfg, 44)
	over := &pb.MembershipBatch{}
	for i := range maxBatchItems + 5 {
		id := fakeID(100 + i)
		over.Heartbeats = append(over.Heartbeats, &pb.Heartbeat{PkiId: id[:], Sequence: 1, Element: make([]byte, chainElemLen)})
	}
	p0 := net.peers[0].p
	p0.Step(net.peers[1].p.self.ID, "org1", envelope(&pb.GossipMessage{Content: &pb.GossipMessage_MembershipBatch{MembershipBatch: over}}), 0)
	if got := net.rejections(0, ErrMalformed); got != 1 {
		t.Fatalf("%d malformed reports for an oversized batch, want 1", got)
	}
	if len(p0.wanted) > cfg.MaxResponseMembers || len(p0.members) != 2 {
		t.Fatalf("an oversized batch of unknown members left %d wants and %d members", len(p0.wanted), len(p0.members))
	}
}

// The relay queue keeps one alive and one heartbeat per member (a newer
// one replaces the queued one) and at most MaxResponseMembers of each.
func TestRelayQueueBounded(t *testing.T) {
	cfg := DefaultConfig()
	cfg.PullEnabled = false
	cfg.AliveBatch = 1
	cfg.MaxResponseMembers = 10
	net := steadyHBNet(t, 3, cfg, 45)
	p := net.peers[0].p
	p.relays = relayQueue{}
	from := net.peers[1].p.self.ID
	for i := range 50 {
		id := fakeID(200 + i%20)
		p.relay(from, id, nil, &pb.Heartbeat{PkiId: id[:], Sequence: uint64(i)})
	}
	if len(p.relays.items) != 10 || p.relays.alives != 0 {
		t.Fatalf("%d items queued (%d alives), want 10 heartbeats", len(p.relays.items), p.relays.alives)
	}
	for _, it := range p.relays.items {
		if it.hb.GetSequence() < 40 {
			t.Fatalf("queued heartbeat of sequence %d: a newer one of its member came since", it.hb.GetSequence())
		}
	}
}

// With neighbours a peer sends news to about AliveNeighbours peers plus
// one per NeighbourRotation over a long run, not to every member, and
// members stay alive.
func TestNeighboursBoundRelayTargets(t *testing.T) {
	cfg := DefaultConfig()
	cfg.PullEnabled = false
	cfg.AliveBatch = 1
	cfg.AliveNeighbours = 6
	const n = 40
	net := steadyHBNet(t, n, cfg, 46)
	targets := map[identity.PKIID]map[identity.PKIID]bool{}
	net.filter = func(m simMsg) bool {
		if isMembershipNews(t, m.env) {
			if targets[m.from] == nil {
				targets[m.from] = map[identity.PKIID]bool{}
			}
			targets[m.from][m.to] = true
		}
		return true
	}
	const span = 600 // 30 rounds, 10 rotations
	net.ticks(span)
	if !net.converged() {
		t.Fatal("members lost")
	}
	most, sum := 0, 0
	for _, sp := range net.peers {
		if len(sp.tr.dead) != 0 {
			t.Fatalf("peer %d saw deaths %v", sp.idx, sp.tr.dead)
		}
		k := len(targets[sp.p.self.ID])
		most, sum = max(most, k), sum+k
	}
	if limit := cfg.AliveNeighbours + span/cfg.NeighbourRotation + 1; most > limit {
		t.Fatalf("a peer sent news to %d distinct peers in %d ticks, want at most %d", most, span, limit)
	}
	t.Logf("news targets per peer in %d ticks: %.1f on average, %d at most (of %d members)", span, float64(sum)/n, most, n-1)
}

func TestAliveBatchValidate(t *testing.T) {
	for _, b := range []int{-1, DefaultConfig().Expiration} {
		c := DefaultConfig()
		c.AliveBatch = b
		if err := c.Validate(); !errors.Is(err, ErrInvalidConfig) {
			t.Fatalf("AliveBatch %d: %v, want ErrInvalidConfig", b, err)
		}
	}
	c := DefaultConfig()
	c.AliveNeighbours = c.AliveFanout - 1
	if err := c.Validate(); !errors.Is(err, ErrInvalidConfig) {
		t.Fatalf("AliveNeighbours below AliveFanout: %v", err)
	}
	if FabricConfig().AliveBatch != 0 || FabricConfig().AliveNeighbours != 0 {
		t.Fatal("Fabric's profile must relay alives one by one")
	}
}

// No live member goes unheard by another for more than three alive rounds
// plus an expiry scan (and the answer's round trip): the rotating relay
// graph is directed and leaves a peer without a path from some member now
// and then (silences of 86-89 ticks in these runs; Expiration is 100), and
// a peer that notices such a silence asks the member rather than wait for
// its next anti-entropy sync (SyncInterval, = Expiration).
func TestNoLiveMemberUnheardForThreeRounds(t *testing.T) {
	for _, n := range []int{30, 45, 50} { // peers draw from rngs seeded by their index: sizes vary the draws
		cfg := DefaultConfig()
		cfg.PullEnabled = false
		net := steadyHBNet(t, n, cfg, 42)
		worst, who := 0, ""
		for range 600 {
			net.tick()
			for _, sp := range net.peers {
				for id, m := range sp.p.members {
					if s := net.now - int(m.lastHeard); s > worst {
						worst, who = s, fmt.Sprintf("peer %d of %v at tick %d", sp.idx, id, net.now)
					}
				}
			}
		}
		t.Logf("%d peers: longest silence %d ticks (%s)", n, worst, who)
		if bound := 3*cfg.AliveInterval + cfg.Expiration/10 + 2*cfg.AliveBatch; worst > bound {
			t.Errorf("%d peers: %s: unheard for %d ticks, want at most %d", n, who, worst, bound)
		}
	}
}

// A peer that has not heard of a few live members for three rounds asks
// each of them (they answer with their own news); one that lost touch
// with many at once syncs with a member it did hear from rather than dial
// every silent one, which may have crashed.
func TestSilentMembersAskedOrSynced(t *testing.T) {
	for _, silentN := range []int{2, 10} {
		cfg := DefaultConfig()
		cfg.PullEnabled = false
		net := steadyHBNet(t, 20, cfg, 42)
		p := net.peers[0].p
		scan := uint64(cfg.Expiration / 10)
		for (p.now+1)%scan != 0 {
			net.tick()
		}
		silent := map[identity.PKIID]bool{}
		for i := 1; i <= silentN; i++ {
			id := fakeID(i)
			silent[id] = true
			// As if its last heartbeats had not reached us.
			m := p.members[id]
			m.lastHeard, m.seq = p.now-3*uint64(cfg.AliveInterval), m.seq-1
		}
		asked := map[identity.PKIID]bool{}
		var syncs []identity.PKIID
		net.filter = func(m simMsg) bool {
			if m.from != p.self.ID {
				return true
			}
			msg := new(pb.GossipMessage)
			if proto.Unmarshal(m.env.GetPayload(), msg) != nil {
				t.Fatal("undecodable envelope")
			}
			req := msg.GetMembershipRequest()
			switch {
			case req == nil:
			case len(req.GetWant()) > 0:
				for _, w := range req.GetWant() {
					if id, err := identity.PKIIDFromBytes(w); err != nil || id != m.to {
						t.Fatalf("%d silent: asked %v about someone else", silentN, m.to)
					}
				}
				asked[m.to] = true
			default:
				syncs = append(syncs, m.to)
			}
			return true
		}
		net.ticks(2) // the scan notes the silence; the next tick sends what it wants
		for _, to := range syncs {
			if silent[to] {
				t.Fatalf("%d silent: synced with silent member %v", silentN, to)
			}
		}
		if silentN <= cfg.AliveNeighbours {
			if len(asked) != silentN {
				t.Fatalf("%d silent: asked %d members, want each silent one", silentN, len(asked))
			}
			for id := range asked {
				if !silent[id] {
					t.Fatalf("%d silent: asked %v, which we hear from", silentN, id)
				}
			}
		} else if len(asked) != 0 || len(syncs) == 0 {
			t.Fatalf("%d silent: asked %d members and synced %d times, want one sync and no asks", silentN, len(asked), len(syncs))
		}
		for id := range silent {
			if now := p.now; now-p.members[id].lastHeard > 3*uint64(cfg.AliveInterval) {
				t.Fatalf("%d silent: member %v still unheard for %d ticks after asking", silentN, id, now-p.members[id].lastHeard)
			}
		}
	}
}
