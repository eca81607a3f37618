package comm_test

import (
	"errors"
	"fmt"
	"math/rand/v2"
	"sync"
	"testing"
	"time"

	"github.com/stretchr/testify/require"
	"google.golang.org/protobuf/proto"

	"github.com/blockgossip/blockgossip/comm"
	"github.com/blockgossip/blockgossip/comm/transporttest"
	"github.com/blockgossip/blockgossip/identity"
	pb "github.com/blockgossip/blockgossip/protos"
)

// collector reads one node's Incoming until stopped, counting envelopes
// per sender. (Order per sender holds on one stream, which the contract
// suite checks; across the settling of simultaneous dials it may not.)
type collector struct {
	mu    sync.Mutex
	from  map[identity.PKIID]int
	total int
	bad   []string
	got   chan struct{} // signalled on every envelope
	stop  chan struct{}
	done  chan struct{}
}

func collect(tr comm.Transport) *collector {
	c := &collector{
		from: map[identity.PKIID]int{},
		got:  make(chan struct{}, 1), stop: make(chan struct{}), done: make(chan struct{}),
	}
	go func() {
		defer close(c.done)
		for {
			select {
			case <-c.stop:
				return
			case m := <-tr.Incoming():
				msg := new(pb.GossipMessage)
				err := proto.Unmarshal(m.Env.GetPayload(), msg)
				c.mu.Lock()
				if err != nil || msg.GetPullHello() == nil {
					c.bad = append(c.bad, fmt.Sprint("not a tagged envelope: ", err))
				}
				c.from[m.From]++
				c.total++
				c.mu.Unlock()
				select {
				case c.got <- struct{}{}:
				default:
				}
			}
		}
	}()
	return c
}

func (c *collector) close() {
	close(c.stop)
	<-c.done
}

func (c *collector) count() int {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.total
}

// waitTotal waits, without polling, until the collectors hold want envelopes.
func waitTotal(t *testing.T, cs []*collector, want int) {
	t.Helper()
	deadline := time.After(60 * time.Second)
	for {
		sum := 0
		for _, c := range cs {
			sum += c.count()
		}
		if sum >= want {
			require.Equal(t, want, sum)
			return
		}
		select {
		case <-cs[0].got:
		case <-time.After(10 * time.Millisecond): // another collector progressed
		case <-deadline:
			t.Fatalf("received %d of %d envelopes", sum, want)
		}
	}
}

// exchange has every node send total/len(nodes) envelopes to seeded random
// other nodes, all senders at once, and checks every envelope arrives once,
// in order per sender, with nothing dropped, over one stream per pair.
func exchange(t *testing.T, nodes []*gnode, total int) {
	per := total / len(nodes)
	cs := make([]*collector, len(nodes))
	for i, n := range nodes {
		cs[i] = collect(n.tr)
	}
	defer func() {
		for _, c := range cs {
			c.close()
		}
	}()
	sent := make([]map[int]int, len(nodes)) // sender -> receiver -> count
	var wg sync.WaitGroup
	for i, n := range nodes {
		sent[i] = map[int]int{}
		wg.Add(1)
		go func() {
			defer wg.Done()
			rng := rand.New(rand.NewPCG(uint64(i), 99))
			for k := range per {
				j := rng.IntN(len(nodes) - 1)
				if j >= i {
					j++
				}
				if err := n.tr.Send(nodes[j].peer(), transporttest.Env(k)); err != nil {
					t.Errorf("send %d->%d: %v", i, j, err)
					return
				}
				sent[i][j]++
			}
		}()
	}
	wg.Wait()
	defer func() {
		if t.Failed() {
			for i, n := range nodes {
				st := n.tr.Stats()
				t.Logf("node %d: sent %d received %d dropped %d bad %d handshake failures %d",
					i, st.Total.Sent.Msgs, st.Total.Received.Msgs, st.Total.Dropped.Msgs, st.Total.BadStreams, st.HandshakeFailures)
			}
		}
	}()
	waitTotal(t, cs, per*len(nodes))

	var received, dropped uint64
	for j, n := range nodes {
		st := n.tr.Stats()
		received += st.Total.Received.Msgs
		dropped += st.Total.Dropped.Msgs
		require.Zero(t, st.HandshakeFailures)
		cs[j].mu.Lock()
		require.Empty(t, cs[j].bad)
		for i := range nodes {
			require.Equal(t, sent[i][j], cs[j].from[nodes[i].id.ID], "envelopes %d -> %d", i, j)
		}
		cs[j].mu.Unlock()
	}
	require.Equal(t, uint64(per*len(nodes)), received+dropped, "received + dropped == sent")
	require.Zero(t, dropped, "queues sized for the load drop nothing")

	// Once settled, both ends of each pair agree on one stream (when both
	// dialled at once, the lower PKI-ID's; the tie-break is tested apart)
	// and superseded streams have drained away.
	settled := func() bool {
		for i, a := range nodes {
			peers := 0
			for j, b := range nodes {
				if i == j || sent[i][j]+sent[j][i] == 0 {
					continue
				}
				peers++
				da, okA := a.tr.ActiveDialer(b.id.ID)
				db, okB := b.tr.ActiveDialer(a.id.ID)
				if !okA || !okB || da != db {
					return false
				}
			}
			if a.tr.Streams() != peers {
				return false
			}
		}
		return true
	}
	require.Eventually(t, settled, 20*time.Second, 5*time.Millisecond)
}

func roomyConfig() *comm.Config {
	cfg := comm.DefaultConfig()
	cfg.SendQueue = 10000
	cfg.RecvQueue = 10000
	// 380 TLS dials at once on a shared 2-core machine under -race can take
	// seconds; the defaults are for production, not for this burst.
	cfg.ConnectTimeout = 30 * time.Second
	cfg.HandshakeTimeout = 30 * time.Second
	return &cfg
}

func TestTwoPeersExchange10000(t *testing.T) {
	pn := newPeerNet(t)
	exchange(t, []*gnode{pn.node(0, roomyConfig()), pn.node(1, roomyConfig())}, 10000)
}

func TestTwentyPeersExchange10000(t *testing.T) {
	pn := newPeerNet(t)
	var nodes []*gnode
	for i := range 20 {
		nodes = append(nodes, pn.node(i%2, roomyConfig()))
	}
	exchange(t, nodes, 10000)
}

// TestTwoPeersExchangeWithSmallQueues: with queues far too small for the
// load, envelopes are dropped, yet every one is accounted for: received +
// dropped == sent, and what the counters call received is what arrived.
func TestTwoPeersExchangeWithSmallQueues(t *testing.T) {
	pn := newPeerNet(t)
	cfg := comm.DefaultConfig()
	cfg.SendQueue, cfg.RecvQueue = 16, 16
	nodes := []*gnode{pn.node(0, &cfg), pn.node(1, &cfg)}
	cs := []*collector{collect(nodes[0].tr), collect(nodes[1].tr)}
	defer func() {
		for _, c := range cs {
			c.close()
		}
	}()
	const per = 5000
	var wg sync.WaitGroup
	refused := make([]int, 2)
	for i, n := range nodes {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for k := range per {
				if err := n.tr.Send(nodes[1-i].peer(), transporttest.Env(k)); err != nil {
					if !errors.Is(err, comm.ErrQueueFull) {
						t.Errorf("send: %v", err)
						return
					}
					refused[i]++
				}
			}
		}()
	}
	wg.Wait()
	counts := func() (received, dropped uint64) {
		for _, n := range nodes {
			st := n.tr.Stats().Total
			received += st.Received.Msgs
			dropped += st.Dropped.Msgs
		}
		return received, dropped
	}
	require.Eventually(t, func() bool { r, d := counts(); return r+d == 2*per }, 60*time.Second, time.Millisecond)
	r, d := counts()
	require.Positive(t, d, "queues this small overflow")
	require.Positive(t, refused[0]+refused[1])
	waitTotal(t, cs, int(r))
	t.Logf("sent %d: received %d, dropped %d (%d refused by Send)", 2*per, r, d, refused[0]+refused[1])
}
