package gossip

import (
	"strconv"
	"time"

	"github.com/blockgossip/blockgossip/identity"
	"github.com/prometheus/client_golang/prometheus"
)

// Metrics are a Node's Prometheus collectors. Give each Node its own
// registry, so that many Nodes can live in one process (tests, simulator).
type Metrics struct {
	PeersKnown      prometheus.Gauge       // live members known, excluding self
	IsLeader        prometheus.Gauge       // 1 while this peer leads its org
	Height          prometheus.Gauge       // ledger height
	BlocksReceived  *prometheus.CounterVec // first valid copies, by via
	BlocksDuplicate prometheus.Counter
	BlocksInvalid   prometheus.Counter
	BytesSent       prometheus.Counter
	BytesReceived   prometheus.Counter
	CommitLatency   prometheus.Histogram   // orderer cut to local commit, seconds
	QueueDrops      *prometheus.CounterVec // by queue: send, commits
	Grafts          *prometheus.CounterVec // by repeat and reshapes (see Tracer.GraftSent)
	LinksBroken     *prometheus.CounterVec // by parent (see Tracer.LinkBroken)
}

// NewMetrics creates the collectors and registers them with reg.
func NewMetrics(reg prometheus.Registerer) (*Metrics, error) {
	m := newMetrics()
	for _, c := range []prometheus.Collector{m.PeersKnown, m.IsLeader, m.Height, m.BlocksReceived,
		m.BlocksDuplicate, m.BlocksInvalid, m.BytesSent, m.BytesReceived, m.CommitLatency, m.QueueDrops, m.Grafts, m.LinksBroken} {
		if err := reg.Register(c); err != nil {
			return nil, err
		}
	}
	return m, nil
}

// NopMetrics returns collectors registered nowhere: they count, nobody
// scrapes them.
func NopMetrics() *Metrics { return newMetrics() }

func newMetrics() *Metrics {
	const ns, sub = "blockgossip", "gossip"
	return &Metrics{
		PeersKnown: prometheus.NewGauge(prometheus.GaugeOpts{Namespace: ns, Subsystem: sub, Name: "peers_known",
			Help: "Live members known, excluding self."}),
		IsLeader: prometheus.NewGauge(prometheus.GaugeOpts{Namespace: ns, Subsystem: sub, Name: "is_leader",
			Help: "1 while this peer leads its organisation."}),
		Height: prometheus.NewGauge(prometheus.GaugeOpts{Namespace: ns, Subsystem: sub, Name: "ledger_height",
			Help: "Committed blocks."}),
		BlocksReceived: prometheus.NewCounterVec(prometheus.CounterOpts{Namespace: ns, Subsystem: sub, Name: "blocks_received_total",
			Help: "First valid copies of blocks, by how they came."}, []string{"via"}),
		BlocksDuplicate: prometheus.NewCounter(prometheus.CounterOpts{Namespace: ns, Subsystem: sub, Name: "blocks_duplicate_total",
			Help: "Copies of blocks already accepted."}),
		BlocksInvalid: prometheus.NewCounter(prometheus.CounterOpts{Namespace: ns, Subsystem: sub, Name: "blocks_invalid_total",
			Help: "Blocks that failed verification or linkage."}),
		BytesSent: prometheus.NewCounter(prometheus.CounterOpts{Namespace: ns, Subsystem: sub, Name: "bytes_sent_total",
			Help: "Envelope bytes queued for sending."}),
		BytesReceived: prometheus.NewCounter(prometheus.CounterOpts{Namespace: ns, Subsystem: sub, Name: "bytes_received_total",
			Help: "Envelope bytes received."}),
		CommitLatency: prometheus.NewHistogram(prometheus.HistogramOpts{Namespace: ns, Subsystem: sub, Name: "commit_latency_seconds",
			Help:    "From the orderer cutting a block to its commit here.",
			Buckets: prometheus.ExponentialBuckets(0.005, 2, 14)}), // 5 ms .. 41 s
		QueueDrops: prometheus.NewCounterVec(prometheus.CounterOpts{Namespace: ns, Subsystem: sub, Name: "queue_drops_total",
			Help: "Items dropped because a queue was full, by queue."}, []string{"queue"}),
		Grafts: prometheus.NewCounterVec(prometheus.CounterOpts{Namespace: ns, Subsystem: sub, Name: "grafts_total",
			Help: "Grafts sent for announced blocks that did not arrive in time; repeat: the block was grafted before (hedge or retry); " +
				"reshapes: the graft made the announcer an eager neighbour. Many grafts per block received mean copies run late or are lost."},
			[]string{"repeat", "reshapes"}),
		LinksBroken: prometheus.NewCounterVec(prometheus.CounterOpts{Namespace: ns, Subsystem: sub, Name: "tree_links_broken_total",
			Help: "Tree neighbours dropped because their stream broke (a peer killed or cut off), by whether it was our parent."},
			[]string{"parent"}),
	}
}

// metricsTracer feeds the block counters from protocol events.
type metricsTracer struct {
	NopTracer
	m *Metrics
}

func (t metricsTracer) BlockAccepted(_ identity.PKIID, _ uint64, via Via, _ uint32) {
	t.m.BlocksReceived.WithLabelValues(via.String()).Inc()
}
func (t metricsTracer) BlockDuplicate(identity.PKIID, uint64, Via) { t.m.BlocksDuplicate.Inc() }
func (t metricsTracer) GraftSent(_ identity.PKIID, _ uint64, repeat, reshapes bool) {
	t.m.Grafts.WithLabelValues(strconv.FormatBool(repeat), strconv.FormatBool(reshapes)).Inc()
}
func (t metricsTracer) LinkBroken(_ identity.PKIID, parent bool) {
	t.m.LinksBroken.WithLabelValues(strconv.FormatBool(parent)).Inc()
}
func (t metricsTracer) BlockRejected(identity.PKIID, uint64, Via, error) {
	t.m.BlocksInvalid.Inc()
}

func (m *Metrics) observeCommit(c Commit, now time.Time) {
	if c.CutTimeUnixNano > 0 {
		m.CommitLatency.Observe(now.Sub(time.Unix(0, c.CutTimeUnixNano)).Seconds())
	}
}

// teeTracer sends every event to both tracers.
type teeTracer struct{ a, b Tracer }

func (t teeTracer) MemberAlive(id identity.PKIID, inc uint64, r bool) {
	t.a.MemberAlive(id, inc, r)
	t.b.MemberAlive(id, inc, r)
}
func (t teeTracer) MemberDead(id identity.PKIID) { t.a.MemberDead(id); t.b.MemberDead(id) }
func (t teeTracer) BlockAccepted(f identity.PKIID, n uint64, v Via, h uint32) {
	t.a.BlockAccepted(f, n, v, h)
	t.b.BlockAccepted(f, n, v, h)
}
func (t teeTracer) BlockDuplicate(f identity.PKIID, n uint64, v Via) {
	t.a.BlockDuplicate(f, n, v)
	t.b.BlockDuplicate(f, n, v)
}
func (t teeTracer) BlockRejected(f identity.PKIID, n uint64, v Via, err error) {
	t.a.BlockRejected(f, n, v, err)
	t.b.BlockRejected(f, n, v, err)
}
func (t teeTracer) BlockForwarded(n uint64, h uint32, k int) {
	t.a.BlockForwarded(n, h, k)
	t.b.BlockForwarded(n, h, k)
}
func (t teeTracer) GraftSent(to identity.PKIID, n uint64, repeat, reshapes bool) {
	t.a.GraftSent(to, n, repeat, reshapes)
	t.b.GraftSent(to, n, repeat, reshapes)
}
func (t teeTracer) BlockDropped(n uint64, err error) {
	t.a.BlockDropped(n, err)
	t.b.BlockDropped(n, err)
}
func (t teeTracer) BlockCommitted(n uint64, v Via, h uint32) {
	t.a.BlockCommitted(n, v, h)
	t.b.BlockCommitted(n, v, h)
}
func (t teeTracer) PeerPenalised(id identity.PKIID, n int, banned bool) {
	t.a.PeerPenalised(id, n, banned)
	t.b.PeerPenalised(id, n, banned)
}
func (t teeTracer) LeaderChanged(l identity.PKIID, self bool) {
	t.a.LeaderChanged(l, self)
	t.b.LeaderChanged(l, self)
}
func (t teeTracer) MessageRejected(f identity.PKIID, err error) {
	t.a.MessageRejected(f, err)
	t.b.MessageRejected(f, err)
}
func (t teeTracer) LinkBroken(id identity.PKIID, parent bool) {
	t.a.LinkBroken(id, parent)
	t.b.LinkBroken(id, parent)
}
