//go:build faults

package tests

import (
	"bytes"
	"context"
	"crypto/ed25519"
	"crypto/x509"
	"encoding/pem"
	"errors"
	"fmt"
	"math/rand/v2"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"google.golang.org/grpc"
	"google.golang.org/protobuf/proto"

	"github.com/blockgossip/blockgossip/comm"
	"github.com/blockgossip/blockgossip/identity"
	"github.com/blockgossip/blockgossip/ledger"
	pb "github.com/blockgossip/blockgossip/protos"
)

// cryptoDir is network up's crypto material.
func (f *faultNet) cryptoDir() string { return filepath.Join(f.dir, "crypto") }

// loadCA reads an org's CA (certificate and key) from the crypto dir: what
// an attacker who stole nothing does not have, but what the test needs to
// mint a valid member, an expired one or a revoked one.
func (f *faultNet) loadCA(org string) *identity.CA {
	f.t.Helper()
	certPEM, err := os.ReadFile(filepath.Join(f.cryptoDir(), org, "ca", "ca.crt"))
	if err != nil {
		f.t.Fatal(err)
	}
	keyPEM, err := os.ReadFile(filepath.Join(f.cryptoDir(), org, "ca", "ca.key"))
	if err != nil {
		f.t.Fatal(err)
	}
	cb, _ := pem.Decode(certPEM)
	kb, _ := pem.Decode(keyPEM)
	if cb == nil || kb == nil {
		f.t.Fatalf("%s CA files are not PEM", org)
	}
	cert, err := x509.ParseCertificate(cb.Bytes)
	if err != nil {
		f.t.Fatal(err)
	}
	key, err := x509.ParsePKCS8PrivateKey(kb.Bytes)
	if err != nil {
		f.t.Fatal(err)
	}
	return &identity.CA{Org: org, Cert: cert, CertDER: cb.Bytes, Key: key.(ed25519.PrivateKey)}
}

func (f *faultNet) description() (*identity.NetworkDescription, *identity.MSP) {
	f.t.Helper()
	d, err := identity.LoadNetworkDescription(filepath.Join(f.cryptoDir(), "network-description.json"))
	if err != nil {
		f.t.Fatal(err)
	}
	m, err := d.MSP()
	if err != nil {
		f.t.Fatal(err)
	}
	return d, m
}

// ledgerInfoAs calls Admin.LedgerInfo on a node as id over mutual TLS,
// trusting the servers msp trusts.
func ledgerInfoAs(id *identity.Identity, msp *identity.MSP, addr string) (*pb.LedgerInfoResponse, error) {
	conn, err := grpc.NewClient(addr, comm.DialOptions(comm.DefaultConfig(), id, msp)...)
	if err != nil {
		return nil, err
	}
	defer conn.Close()
	ctx, cancel := context.WithTimeout(context.Background(), 3*time.Second)
	defer cancel()
	return pb.NewAdminClient(conn).LedgerInfo(ctx, &pb.LedgerInfoRequest{})
}

// deliverAs opens a Deliver stream on the orderer as id and reads one block.
func deliverAs(id *identity.Identity, msp *identity.MSP, addr string) error {
	conn, err := grpc.NewClient(addr, comm.DialOptions(comm.DefaultConfig(), id, msp)...)
	if err != nil {
		return err
	}
	defer conn.Close()
	ctx, cancel := context.WithTimeout(context.Background(), 3*time.Second)
	defer cancel()
	s, err := pb.NewAtomicBroadcastClient(conn).Deliver(ctx, &pb.DeliverRequest{Start: 0, StopAfter: 0, HasStop: true})
	if err != nil {
		return err
	}
	_, err = s.Recv()
	return err
}

// TestFaultForeignExpiredRevokedClientsRefused: a client with a certificate
// from a foreign CA (even one naming org1), an expired one, or a revoked
// one cannot call a peer or the orderer; a valid one can.
func TestFaultForeignExpiredRevokedClientsRefused(t *testing.T) {
	f := upNet(t, 1, 1)
	_, msp := f.description()
	org1 := f.loadCA("org1")
	foreignCA, err := identity.NewCA("org1", 0) // same org name, another key
	if err != nil {
		t.Fatal(err)
	}
	foreign, err := foreignCA.NewIdentity("org1-client", identity.RoleClient)
	if err != nil {
		t.Fatal(err)
	}
	now := time.Now()
	expired, err := org1.Issue("org1-expired", identity.RoleClient, now.Add(-48*time.Hour), now.Add(-24*time.Hour))
	if err != nil {
		t.Fatal(err)
	}
	future, err := org1.Issue("org1-future", identity.RoleClient, now.Add(24*time.Hour), now.Add(48*time.Hour))
	if err != nil {
		t.Fatal(err)
	}
	client, err := identity.LoadIdentity(filepath.Join(f.cryptoDir(), "org1", "org1-client", "cert.pem"),
		filepath.Join(f.cryptoDir(), "org1", "org1-client", "key.pem"))
	if err != nil {
		t.Fatal(err)
	}
	peer, orderer := f.peers("")[0], f.node("orderer")

	// The valid client is served: the refusals below are about the cert.
	for _, n := range []node{peer, orderer} {
		if _, err := ledgerInfoAs(client, msp, n.Address); err != nil {
			t.Fatalf("valid client refused by %s: %v", n.Name, err)
		}
	}
	if err := deliverAs(client, msp, orderer.Address); err != nil {
		t.Fatalf("valid client cannot Deliver: %v", err)
	}
	refused := func(what string, id *identity.Identity) {
		t.Helper()
		for _, n := range []node{peer, orderer} {
			if r, err := ledgerInfoAs(id, msp, n.Address); err == nil {
				t.Errorf("%s client served by %s: %v", what, n.Name, r)
			}
		}
		if err := deliverAs(id, msp, orderer.Address); err == nil {
			t.Errorf("%s client served a block by the orderer's Deliver", what)
		}
	}
	refused("foreign-CA", foreign)
	refused("expired", expired)
	refused("not-yet-valid", future)

	// Revoke the client in the network description; nodes read it at start.
	path := filepath.Join(f.cryptoDir(), "network-description.json")
	d, err := identity.LoadNetworkDescription(path)
	if err != nil {
		t.Fatal(err)
	}
	d.Revoked = append(d.Revoked, client.Cert.SerialNumber.Text(16))
	raw, err := d.Marshal()
	if err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(path, raw, 0o644); err != nil {
		t.Fatal(err)
	}
	for _, n := range []string{"orderer", peer.Name} {
		f.stop(n)
		f.restart(n)
	}
	refused("revoked", client)
	admin, err := identity.LoadIdentity(f.net().Admin.Cert, f.net().Admin.Key)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := ledgerInfoAs(admin, msp, peer.Address); err != nil {
		t.Fatalf("the admin (not revoked) is refused after the restart: %v", err)
	}
	// The refused clients did no harm.
	f.submit(20)
	f.converge(30 * time.Second)
}

// hostile is a member with valid credentials (a peer certificate that
// org1's CA really issued) driving a raw transport.
type hostile struct {
	t      *testing.T
	id     *identity.Identity
	tr     *comm.GRPC
	victim identity.PKIID
	rng    *rand.Rand

	mu     sync.Mutex
	alives []*pb.Envelope // received from honest peers, for replay
	downs  int            // streams the victim closed on us
	wg     sync.WaitGroup
	cancel context.CancelFunc
}

func newHostile(t *testing.T, f *faultNet, name, victimAddr string) *hostile {
	t.Helper()
	return hostileAs(t, f, issueMember(t, f.loadCA("org1"), name), victimAddr)
}

// issueMember issues an org1 peer identity called name: a valid member.
func issueMember(t *testing.T, ca *identity.CA, name string) *identity.Identity {
	t.Helper()
	id, err := ca.IssueHosts(name, identity.RolePeer, time.Now().Add(-time.Hour), time.Now().Add(24*time.Hour), []string{"127.0.0.1"})
	if err != nil {
		t.Fatal(err)
	}
	return id
}

// hostileAs starts an attacker with identity id, connected to victimAddr.
func hostileAs(t *testing.T, f *faultNet, id *identity.Identity, victimAddr string) *hostile {
	t.Helper()
	_, msp := f.description()
	cfg := comm.DefaultConfig()
	cfg.MaxMessageBytes = 64 << 20 // so that we, not our own transport, decide what is oversized
	cfg.SendQueue = 4096
	tr, err := comm.NewGRPC(cfg, id, msp, nil)
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	h := &hostile{t: t, id: id, tr: tr, rng: rand.New(rand.NewPCG(66, 6)), cancel: cancel}
	h.wg.Add(1)
	go func() { // the attacker reads what it is sent, keeping alives to replay
		defer h.wg.Done()
		for {
			select {
			case <-ctx.Done():
				return
			case m := <-tr.Incoming():
				msg := new(pb.GossipMessage)
				if proto.Unmarshal(m.Env.GetPayload(), msg) == nil && msg.GetAlive() != nil {
					h.mu.Lock()
					if len(h.alives) < 1000 {
						h.alives = append(h.alives, m.Env)
					}
					h.mu.Unlock()
				}
			case ev := <-tr.Events():
				if !ev.Up {
					h.mu.Lock()
					h.downs++
					h.mu.Unlock()
				}
			}
		}
	}()
	t.Cleanup(h.close)
	cctx, ccancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer ccancel()
	if h.victim, err = tr.Connect(cctx, victimAddr); err != nil {
		t.Fatalf("a valid member cannot even connect to %s: %v", victimAddr, err)
	}
	return h
}

func (h *hostile) close() {
	h.cancel()
	h.tr.Close()
	h.wg.Wait()
}

// send queues env to the victim, waiting while our own queue is full
// (the attacker is patient; it never gives up on a message).
func (h *hostile) send(env *pb.Envelope) {
	for range 2000 {
		err := h.tr.Send(comm.Peer{ID: h.victim}, env)
		if !errors.Is(err, comm.ErrQueueFull) {
			return
		}
		time.Sleep(time.Millisecond)
	}
}

func (h *hostile) msg(m *pb.GossipMessage, signed bool) *pb.Envelope {
	b, err := proto.Marshal(m)
	if err != nil {
		h.t.Fatal(err)
	}
	env := &pb.Envelope{Payload: b}
	if signed {
		env.Signature = h.id.Sign(b)
	}
	return env
}

// alive is a correctly signed alive of ours, claiming height.
func (h *hostile) alive(inc, seq, height uint64) *pb.Envelope {
	return h.msg(&pb.GossipMessage{Content: &pb.GossipMessage_Alive{Alive: &pb.AliveMessage{
		Member:      &pb.Member{PkiId: h.id.ID.Bytes(), Endpoint: "127.0.0.1:9", Org: "org1", Certificate: h.id.CertDER},
		Incarnation: inc, Sequence: seq, LedgerHeight: height,
	}}}, true)
}

func (h *hostile) block(b *pb.Block) *pb.Envelope {
	return h.msg(&pb.GossipMessage{Content: &pb.GossipMessage_Block{Block: &pb.BlockMessage{Block: b, Hops: 1}}}, false)
}

func (h *hostile) randBytes(n int) []byte {
	b := make([]byte, n)
	for i := range b {
		b[i] = byte(h.rng.Uint32())
	}
	return b
}

// attack sends one round of everything the issue lists, around height
// next (the next block the network will cut) and tip (its predecessor's
// hash). ordererKey signs the wrong-previous-hash blocks. Without
// badBlocks it sends no invalid block: a flooder and liar that is never
// banned for blocks, so its floods keep reaching the victim.
func (h *hostile) attack(round int, next uint64, tip []byte, ordererKey *identity.Identity, badBlocks bool) {
	// Lies about its height (alive correctly signed, so believed).
	h.send(h.alive(uint64(time.Now().UnixNano()), uint64(round+1), next+1<<40))
	for k := range uint64(4) {
		if !badBlocks {
			break
		}
		// Forged blocks: right shape, right link, no orderer signature.
		b := ledger.NewBlock(next+k, tip, [][]byte{h.randBytes(64)}, 0)
		b.Metadata.Signature = h.randBytes(64)
		h.send(h.block(b))
		// Orderer-signed blocks with a wrong previous hash.
		w := ledger.NewBlock(next+k, h.randBytes(32), [][]byte{h.randBytes(64)}, 0)
		ledger.SignBlock(w, ordererKey.Sign)
		h.send(h.block(w))
	}
	// Garbage bytes, signed and not.
	for range 20 {
		h.send(&pb.Envelope{Payload: h.randBytes(1 + h.rng.IntN(512)), Signature: h.randBytes(64)})
	}
	// Replayed old alive messages (others', and an old one of ours).
	h.mu.Lock()
	old := slices.Clone(h.alives)
	h.mu.Unlock()
	for i, env := range old {
		if i%3 == 0 {
			h.send(env)
		}
	}
	h.send(h.alive(1, 1, 0))
	// Floods of hello, digest and state requests, and membership requests.
	for range 300 {
		n := h.rng.Uint64()
		h.send(h.msg(&pb.GossipMessage{Content: &pb.GossipMessage_PullHello{PullHello: &pb.PullHello{Nonce: n}}}, false))
		h.send(h.msg(&pb.GossipMessage{Content: &pb.GossipMessage_PullDigest{PullDigest: &pb.PullDigest{Nonce: n,
			Ranges: []*pb.BlockRange{{Start: 0, End: next + 1<<30}}}}}, false))
		h.send(h.msg(&pb.GossipMessage{Content: &pb.GossipMessage_PullRequest{PullRequest: &pb.PullRequest{Nonce: n,
			Ranges: []*pb.BlockRange{{Start: 0, End: next}}}}}, false))
		h.send(h.msg(&pb.GossipMessage{Content: &pb.GossipMessage_StateRequest{StateRequest: &pb.StateRequest{Nonce: n + 1,
			Range: &pb.BlockRange{Start: 0, End: 1 << 62}}}}, false))
	}
	for range 50 {
		h.send(h.msg(&pb.GossipMessage{Content: &pb.GossipMessage_MembershipRequest{MembershipRequest: &pb.MembershipRequest{
			SelfAlive: h.alive(uint64(time.Now().UnixNano()), 1, 1<<40)}}}, false))
	}
}

// oversized sends one envelope larger than the victim's MaxMessageBytes.
func (h *hostile) oversized() {
	h.send(&pb.Envelope{Payload: bytes.Repeat([]byte{0x2a}, 20<<20)})
}

// propagation measures, n times, how long a freshly cut block takes to
// reach every live peer; it returns the median.
func (f *faultNet) propagation(n int) time.Duration {
	f.t.Helper()
	var ds []time.Duration
	for range n {
		f.submit(10) // batchmaxtx: one block, cut at once
		ds = append(ds, f.follow(30*time.Second))
	}
	slices.Sort(ds)
	return ds[len(ds)/2]
}

// TestFaultHostileMember: a member with valid credentials sends forged
// blocks, orderer-signed blocks with a wrong previous hash, garbage,
// replayed alives, floods of hello/digest/state/membership requests, lies
// about its height, and an oversized message. Honest peers stay correct
// (identical chains at the orderer's tip), keep disseminating at normal
// speed, and penalise or disconnect it.
func TestFaultHostileMember(t *testing.T) {
	f := upNet(t, 1, 3, fastFailureEnv...)
	f.oneLeaderPerOrg(30 * time.Second)
	f.submit(30)
	f.converge(30 * time.Second)
	base := f.propagation(5)

	victim := f.peers("")[0]
	ordererKey, err := identity.LoadIdentity(filepath.Join(f.cryptoDir(), "ordererorg", "orderer", "cert.pem"),
		filepath.Join(f.cryptoDir(), "ordererorg", "orderer", "key.pem"))
	if err != nil {
		t.Fatal(err)
	}
	// Phase 1: a flooder and liar with no invalid block, never banned for
	// blocks; phase 2: the full attack, forged blocks included.
	flooder := newHostile(t, f, "org1-flooder", victim.Address)
	h := newHostile(t, f, "org1-hostile", victim.Address)
	orderer := f.node("orderer")
	var under [2]time.Duration
	for phase, atk := range []*hostile{flooder, h} {
		stop := make(chan struct{})
		var wg sync.WaitGroup
		wg.Add(1)
		go func() {
			defer wg.Done()
			for round := 0; ; round++ {
				select {
				case <-stop:
					return
				default:
				}
				s, err := status(orderer)
				if err != nil {
					continue
				}
				tip := make([]byte, 32)
				fmt.Sscanf(s.TipHash, "%x", &tip)
				atk.attack(round, s.Height, tip, ordererKey, phase == 1)
				time.Sleep(20 * time.Millisecond)
			}
		}()
		under[phase] = f.propagation(5)
		atk.oversized()
		close(stop)
		wg.Wait()
	}
	o, _ := f.converge(30 * time.Second)
	t.Logf("block propagation median: %v before, %v under floods and lies, %v under the full attack; orderer height %d",
		base, under[0], under[1], o.Height)
	for i, u := range under {
		if u > 3*base+time.Second {
			t.Errorf("dissemination slowed in phase %d: median %v under attack, %v before", i+1, u, base)
		}
	}
	for _, p := range f.livePeers() {
		s, err := status(p)
		if err != nil {
			t.Fatal(err)
		}
		if s.LivePeers < 2 {
			t.Errorf("%s sees %d live peers: honest members were dropped", p.Name, s.LivePeers)
		}
	}
	// The lies about height do not keep honest peers "catching up" forever.
	f.eventually(15*time.Second, "every peer ready after the attack", func() error {
		for _, p := range f.livePeers() {
			if code, body, err := get(p, "/readyz"); err != nil || code != 200 {
				return fmt.Errorf("%s /readyz %d %s %v", p.Name, code, body, err)
			}
		}
		return nil
	})
	raw, _ := os.ReadFile(victim.Log)
	if n := strings.Count(string(raw), "block rejected"); n == 0 {
		t.Errorf("%s logged no rejected block: the attack did not reach it", victim.Name)
	} else {
		t.Logf("%s rejected %d blocks", victim.Name, n)
	}
	penalised := strings.Contains(string(raw), "peer penalised") && strings.Contains(string(raw), h.id.ID.String())
	h.mu.Lock()
	downs := h.downs
	h.mu.Unlock()
	flooder.mu.Lock()
	fdowns := flooder.downs
	flooder.mu.Unlock()
	t.Logf("victim penalised the hostile member: %v; streams closed on it: %d (on the flooder: %d)", penalised, downs, fdowns)
	if !penalised && downs == 0 {
		t.Errorf("the hostile member was neither penalised nor disconnected by %s; log %s", victim.Name, victim.Log)
	}
	// Correct after all: the victim's ledger verifies offline.
	f.stop(victim.Name)
	f.verifyLedger(victim.Name)
}

// TestFaultHeightLiarCannotBlockElection: a member with valid credentials
// announces an absurd ledger height and never leads. When the org's leader
// dies, an honest peer must still take over (a rule like "a peer far behind
// never becomes leader" must not count the liar), and blocks keep flowing.
func TestFaultHeightLiarCannotBlockElection(t *testing.T) {
	f := upNet(t, 1, 3, fastFailureEnv...)
	leaders := f.oneLeaderPerOrg(30 * time.Second)
	var entry node
	for _, p := range f.peers("") {
		if p.Name != leaders["org1"] {
			entry = p
			break
		}
	}
	liar := newHostile(t, f, "org1-liar", entry.Address)
	stop := make(chan struct{})
	var wg sync.WaitGroup
	wg.Add(1)
	go func() {
		defer wg.Done()
		inc := uint64(time.Now().UnixNano())
		for seq := uint64(1); ; seq++ {
			select {
			case <-stop:
				return
			case <-time.After(200 * time.Millisecond):
			}
			liar.send(liar.alive(inc, seq, 1<<40))
		}
	}()
	defer func() { close(stop); wg.Wait() }()
	f.submit(20)
	time.Sleep(2 * time.Second) // the lie spreads by alive relay
	f.kill9(leaders["org1"])
	killed := time.Now()
	var next string
	f.eventually(30*time.Second, "an honest peer takes over org1 while a member lies about its height", func() error {
		ls, err := f.leaders(leaders["org1"])
		if err != nil {
			return err
		}
		if len(ls["org1"]) != 1 {
			return fmt.Errorf("org1 leaders %v", ls["org1"])
		}
		next = ls["org1"][0]
		return nil
	})
	recovery(t, "leader kill-9 with a height liar", time.Since(killed), "new leader "+next)
	f.submit(20)
	f.follow(30*time.Second, leaders["org1"])
}

// TestFaultFalseLeaderCannotStallOrg: a member of org1 with valid
// credentials (and a PKI-ID below every honest peer's, so it wins the
// ID-ordered tie-break) declares itself org1's leader to every peer of the
// org and never delivers a block. Blocks must keep reaching org1.
//
// The honest leader steps down to the usurper (lower ID wins), but the
// followers probe the orderer's height (election.Config.StallTimeout): when
// the orderer's blocks reach no org peer for the stall timeout they stop
// trusting the usurper for a penalty and elect one of themselves.
func TestFaultFalseLeaderCannotStallOrg(t *testing.T) {
	f := upNet(t, 1, 3, fastFailureEnv...)
	f.oneLeaderPerOrg(30 * time.Second)
	f.submit(20)
	f.converge(30 * time.Second)
	var lowest identity.PKIID
	for i, p := range f.peers("") {
		id, err := identity.LoadIdentity(filepath.Join(f.cryptoDir(), "org1", p.Name, "cert.pem"),
			filepath.Join(f.cryptoDir(), "org1", p.Name, "key.pem"))
		if err != nil {
			t.Fatal(err)
		}
		if i == 0 || id.ID.Less(lowest) {
			lowest = id.ID
		}
	}
	// Mint identities until one sorts below every honest peer: about 1 in
	// 4 on average, but 64 tries (each a member with a transport, as this
	// test once made) failed in about 1 CI run in 20 when an honest ID
	// sorted low. Issuing a certificate alone takes well under a
	// millisecond; the odds that 100,000 tries all fail are about 3 in
	// 100,000.
	ca := f.loadCA("org1")
	var low *identity.Identity
	for try := 0; low == nil; try++ {
		if try == 100_000 {
			t.Fatal("no certificate with a PKI-ID below the honest peers' in 100,000 tries")
		}
		if id := issueMember(t, ca, fmt.Sprintf("org1-usurper%d", try)); id.ID.Less(lowest) {
			low = id
		}
	}
	peers := f.peers("")
	usurper := hostileAs(t, f, low, peers[0].Address)
	for _, p := range peers[1:] {
		ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
		_, err := usurper.tr.Connect(ctx, p.Address)
		cancel()
		if err != nil {
			t.Fatalf("connect %s: %v", p.Name, err)
		}
	}
	stop := make(chan struct{})
	var wg sync.WaitGroup
	wg.Add(1)
	go func() {
		defer wg.Done()
		inc := uint64(time.Now().UnixNano())
		for seq := uint64(1); ; seq++ {
			select {
			case <-stop:
				return
			case <-time.After(100 * time.Millisecond):
			}
			alive := usurper.alive(inc, seq, 0)
			decl := usurper.msg(&pb.GossipMessage{Content: &pb.GossipMessage_Leadership{Leadership: &pb.LeadershipMessage{
				PkiId: usurper.id.ID.Bytes(), Org: "org1", Declaration: true, Incarnation: inc, Sequence: seq, LedgerHeight: 1 << 40,
			}}}, true)
			for _, p := range peers {
				id := peerID(t, f, p.Name)
				_ = usurper.tr.Send(comm.Peer{ID: id}, alive)
				_ = usurper.tr.Send(comm.Peer{ID: id}, decl)
			}
		}
	}()
	defer func() { close(stop); wg.Wait() }()
	time.Sleep(3 * time.Second) // declarations sink in
	if ls, err := f.leaders(); err != nil || len(ls["org1"]) != 0 {
		t.Fatalf("org1 leaders %v (%v) with the usurper declaring: the honest leader should have stepped down, or this test proves nothing", ls["org1"], err)
	}
	start := time.Now()
	f.submit(20)
	f.follow(30 * time.Second)
	recovery(t, "false leader declared", time.Since(start), "blocks still reach org1")
	f.oneLeaderPerOrg(10 * time.Second) // an honest peer leads again, the usurper ignored
	f.submit(20)
	f.follow(10 * time.Second)
}

// peerID is a peer's PKI-ID, from its certificate in the crypto dir.
func peerID(t *testing.T, f *faultNet, name string) identity.PKIID {
	id, err := identity.LoadIdentity(filepath.Join(f.cryptoDir(), "org1", name, "cert.pem"),
		filepath.Join(f.cryptoDir(), "org1", name, "key.pem"))
	if err != nil {
		t.Fatal(err)
	}
	return id.ID
}
