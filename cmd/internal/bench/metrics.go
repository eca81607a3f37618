package bench

import (
	"maps"
	"math"
	"slices"
	"time"

	"github.com/blockgossip/blockgossip/gossip"
	"github.com/blockgossip/blockgossip/identity"
)

// Cut is one timed block as the orderer cut it.
type Cut struct {
	Number uint64
	At     time.Time
	// Bytes is the block's encoded size (proto.Size): the unit of
	// amplification, so that one copy per peer is exactly 1.0.
	Bytes int
}

// Delivery is one peer's commit of one timed block.
type Delivery struct {
	Peer   int
	Number uint64
	At     time.Time
	Via    gossip.Via
	// Hops is how many hops the copy made from the orderer's stream (the
	// leader's commit is 0, its push 1): the depth of the peer in the
	// block's dissemination tree.
	Hops uint32
	// From is the peer whose copy was committed: the peer itself for a
	// block from the orderer; zero when not known.
	From identity.PKIID
}

// Traffic is what all peers received during the timed part of a run.
type Traffic struct {
	// BlockBytes: envelopes carrying block bodies (BlockMessage,
	// PullResponse, StateResponse) and the orderer's DeliverResponses.
	BlockBytes uint64
	// ControlBytes: every other envelope received.
	ControlBytes uint64
	// OrdererEgressBytes: DeliverResponse bytes the orderer sent (all
	// peers' deliver clients together).
	OrdererEgressBytes uint64
	// Duplicates: copies of blocks a peer had already accepted.
	Duplicates uint64
	// Grafts: grafts sent for announced blocks that had not arrived in
	// time; GraftRepeats of them for a block grafted before (the hedge,
	// retries); TreeGrafts of them made the announcer an eager neighbour.
	Grafts, GraftRepeats, TreeGrafts uint64
	// LeaderTakeovers: times a peer became its org's leader (each starts
	// a deliver stream: more orderer egress). Not used by Compute.
	LeaderTakeovers uint64
	// Messages: envelopes received from peers, by GossipMessage type
	// (gossip.proto's oneof field name: "block", "ihave", ...). Over gRPC
	// each one costs both ends system calls and wake-ups whatever its
	// size, so on a busy host their number matters beside their bytes.
	Messages map[string]uint64
	// Links counts the (peer, sender) pairs first heard from in the
	// window: every one is a stream (over gRPC a TLS handshake, buffers
	// and goroutines at both ends) that the protocol opened while timed.
	// LinksHeld is the count of such pairs at the window's end. Not used
	// by Compute.
	Links, LinksHeld uint64
}

// Record is the raw outcome of a timed run; Compute derives the figures.
type Record struct {
	Peers int
	// Planned is how many blocks the run meant to cut; blocks it did not
	// cut (a cancelled or overrun run) count as incomplete. 0 means
	// len(Cuts).
	Planned    int
	Cuts       []Cut
	Deliveries []Delivery
	Traffic    Traffic
	// PeerIDs maps peer indexes to PKI-IDs, so that Compute can follow
	// each block's copies back from its last peer (BlockTiming.LastPath).
	// Optional.
	PeerIDs []identity.PKIID
}

// Percentiles of a latency distribution, in milliseconds.
type Percentiles struct {
	P50 float64 `json:"p50"`
	P90 float64 `json:"p90"`
	P99 float64 `json:"p99"`
	Max float64 `json:"max"`
}

// PeerLatency is the p50 and p99 of per-peer commit latency, ms.
type PeerLatency struct {
	P50 float64 `json:"p50"`
	P99 float64 `json:"p99"`
}

// ViaShares are the fractions of deliveries by the way they came; they sum
// to 1 when there was any delivery.
type ViaShares struct {
	Push    float64 `json:"push"`
	Pull    float64 `json:"pull"`
	State   float64 `json:"state"`
	Orderer float64 `json:"orderer"`
}

// Figures are what Compute derives from a Record.
type Figures struct {
	// DeliveryRatio is deliveries / (peers x planned blocks).
	DeliveryRatio float64 `json:"delivery_ratio"`
	// IncompleteBlocks did not reach every peer within the drain deadline
	// (or were never cut: a cancelled run).
	IncompleteBlocks int `json:"incomplete_blocks"`
	// TimeToLast: per block that reached every peer, its last commit minus
	// its cut time (nearest-rank percentiles; zeros if none completed).
	TimeToLast Percentiles `json:"time_to_last_ms"`
	// PeerLatency: per (peer, block) commit of the blocks that reached
	// every peer, commit minus cut time.
	PeerLatency PeerLatency `json:"peer_latency_ms"`
	// Amplification is block bytes received / (mean block size x peers x
	// blocks): 1.0 is one copy per peer.
	Amplification float64 `json:"amplification"`
	// WireAmplification is every byte received / the same denominator.
	WireAmplification float64 `json:"wire_amplification"`
	// DuplicatesPerDelivery is duplicate copies received per delivery.
	DuplicatesPerDelivery float64 `json:"duplicates_per_delivery"`
	// GraftsPerDelivery is grafts sent per delivery; GraftRepeatsPerDelivery
	// and TreeGraftsPerDelivery count those for a block grafted before and
	// those that made the announcer an eager neighbour. Over gRPC nothing
	// is lost on a live stream: there, grafts are of copies merely late.
	GraftsPerDelivery       float64 `json:"grafts_per_delivery"`
	GraftRepeatsPerDelivery float64 `json:"graft_repeats_per_delivery"`
	TreeGraftsPerDelivery   float64 `json:"tree_grafts_per_delivery"`
	// MessagesPerDelivery is envelopes received from peers per delivery;
	// MessagesPerDeliveryByType splits it by message type.
	MessagesPerDelivery       float64            `json:"messages_per_delivery"`
	MessagesPerDeliveryByType map[string]float64 `json:"messages_per_delivery_by_type"`
	// OrdererEgressBytesPerBlock is the orderer's deliver bytes per block.
	OrdererEgressBytesPerBlock float64 `json:"orderer_egress_bytes_per_block"`
	// Via are the shares of deliveries by push, pull, state and orderer.
	Via ViaShares `json:"via"`
	// PushHops are the hop counts of the deliveries by push: how deep the
	// dissemination tree is (a deep tree is a slow last peer).
	PushHops HopFigures `json:"push_hops"`
	// BlocksPerS and MBPerS are throughput over the timed window (first
	// cut to last commit): complete blocks per second, and committed
	// block bytes across all peers per second (MB = 10^6 bytes).
	BlocksPerS float64 `json:"blocks_per_s"`
	MBPerS     float64 `json:"mb_per_s"`
	// TimeToLastSamples are the per-block times to the last peer, sorted,
	// ms: the data of the CDF plot.
	TimeToLastSamples []float64 `json:"time_to_last_samples_ms"`
	// PerBlock is every complete block in cut order, with its time to the
	// last peer and who that peer was: whether the slow blocks of a run
	// come together, at one period, or at one peer.
	PerBlock []BlockTiming `json:"per_block"`
}

// HopFigures summarise hop counts (nearest-rank percentiles).
type HopFigures struct {
	Mean float64 `json:"mean"`
	P50  float64 `json:"p50"`
	P99  float64 `json:"p99"`
	Max  float64 `json:"max"`
}

// BlockTiming is one complete block of a run.
type BlockTiming struct {
	Number uint64 `json:"number"`
	// CutMs is when it was cut, ms after the first cut.
	CutMs        float64 `json:"cut_ms"`
	TimeToLastMs float64 `json:"time_to_last_ms"`
	// LastPeer is the index of the last peer to commit it, and LastVia
	// how that peer got it (push, pull, state, orderer).
	LastPeer int    `json:"last_peer"`
	LastVia  string `json:"last_via"`
	// LastHops is the hop count of the last peer's copy.
	LastHops uint32 `json:"last_hops"`
	// LastPath is the way the last peer's copy came, from the peer that
	// had it from the orderer to the last peer: when each committed it. A
	// long gap between two steps is where the block stalled. Empty when
	// the record names no senders.
	LastPath []PathStep `json:"last_path,omitempty"`
}

// PathStep is one peer on a block's way to its last peer.
type PathStep struct {
	Peer int `json:"peer"`
	// AtMs is when the peer committed the block, ms after its cut.
	AtMs float64 `json:"at_ms"`
	Via  string  `json:"via"`
	Hops uint32  `json:"hops"`
}

// maxPath bounds a traced path: far more hops than any tree has, and a
// guard against a cycle in a malformed record.
const maxPath = 64

// lastPath follows the copies of a block back from its last delivery:
// ds are the block's counted deliveries, index maps PKI-IDs to peers.
func lastPath(last Delivery, ds []Delivery, index map[identity.PKIID]int, cut time.Time) []PathStep {
	if len(index) == 0 {
		return nil
	}
	byPeer := make(map[int]Delivery, len(ds))
	for _, d := range ds {
		byPeer[d.Peer] = d
	}
	path := []Delivery{last}
	for cur := last; len(path) < maxPath; {
		from, ok := index[cur.From]
		if !ok || from == cur.Peer {
			break // the orderer's copy, or a sender we do not know
		}
		prev, ok := byPeer[from]
		if !ok {
			break
		}
		path = append(path, prev)
		cur = prev
	}
	steps := make([]PathStep, len(path))
	for i, d := range path {
		steps[len(path)-1-i] = PathStep{Peer: d.Peer, AtMs: ms(d.At.Sub(cut)), Via: d.Via.String(), Hops: d.Hops}
	}
	return steps
}

// Compute derives the figures of a record. Deliveries of blocks not in
// Cuts, and second deliveries of a (peer, block), are ignored.
func Compute(r Record) Figures {
	var f Figures
	blocks := len(r.Cuts)
	if blocks == 0 || r.Peers <= 0 {
		f.IncompleteBlocks = r.Planned
		f.TimeToLastSamples, f.PerBlock = []float64{}, []BlockTiming{}
		return f
	}
	cutAt := make(map[uint64]int, blocks) // number -> index in r.Cuts
	totalBytes := 0
	for i, c := range r.Cuts {
		cutAt[c.Number] = i
		totalBytes += c.Bytes
	}
	meanBytes := float64(totalBytes) / float64(blocks)

	type peerBlock struct {
		peer int
		num  uint64
	}
	seen := make(map[peerBlock]bool, len(r.Deliveries))
	perBlock := make([][]Delivery, blocks)
	var vias [5]int
	var hops []float64 // of push deliveries
	var committed float64
	var lastCommit time.Time
	for _, d := range r.Deliveries {
		i, ok := cutAt[d.Number]
		if !ok || seen[peerBlock{d.Peer, d.Number}] {
			continue
		}
		seen[peerBlock{d.Peer, d.Number}] = true
		perBlock[i] = append(perBlock[i], d)
		if int(d.Via) < len(vias) {
			vias[d.Via]++
		}
		if d.Via == gossip.ViaPush {
			hops = append(hops, float64(d.Hops))
		}
		committed += float64(r.Cuts[i].Bytes)
		if d.At.After(lastCommit) {
			lastCommit = d.At
		}
	}
	deliveries := len(seen)
	planned := max(r.Planned, blocks)
	f.DeliveryRatio = float64(deliveries) / float64(r.Peers*planned)
	f.IncompleteBlocks = planned - blocks

	index := make(map[identity.PKIID]int, len(r.PeerIDs))
	for i, id := range r.PeerIDs {
		index[id] = i
	}
	first := slices.MinFunc(r.Cuts, func(a, b Cut) int { return a.At.Compare(b.At) }).At
	f.PerBlock = []BlockTiming{}
	var ttl, lat []float64
	for i, ds := range perBlock {
		if len(ds) < r.Peers {
			f.IncompleteBlocks++
			continue
		}
		cut := r.Cuts[i].At
		last := Delivery{At: cut}
		for _, d := range ds {
			lat = append(lat, ms(d.At.Sub(cut)))
			if d.At.After(last.At) {
				last = d
			}
		}
		ttl = append(ttl, ms(last.At.Sub(cut)))
		f.PerBlock = append(f.PerBlock, BlockTiming{Number: r.Cuts[i].Number, CutMs: ms(cut.Sub(first)),
			TimeToLastMs: ms(last.At.Sub(cut)), LastPeer: last.Peer, LastVia: last.Via.String(), LastHops: last.Hops,
			LastPath: lastPath(last, ds, index, cut)})
	}
	slices.Sort(ttl)
	slices.Sort(lat)
	f.TimeToLastSamples = append([]float64{}, ttl...)
	f.TimeToLast = Percentiles{P50: NearestRank(ttl, 50), P90: NearestRank(ttl, 90), P99: NearestRank(ttl, 99), Max: NearestRank(ttl, 100)}
	f.PeerLatency = PeerLatency{P50: NearestRank(lat, 50), P99: NearestRank(lat, 99)}
	if len(hops) > 0 {
		slices.Sort(hops)
		sum := 0.0
		for _, h := range hops {
			sum += h
		}
		f.PushHops = HopFigures{Mean: sum / float64(len(hops)), P50: NearestRank(hops, 50), P99: NearestRank(hops, 99), Max: NearestRank(hops, 100)}
	}

	denom := meanBytes * float64(r.Peers) * float64(blocks)
	f.Amplification = float64(r.Traffic.BlockBytes) / denom
	f.WireAmplification = float64(r.Traffic.BlockBytes+r.Traffic.ControlBytes) / denom
	f.OrdererEgressBytesPerBlock = float64(r.Traffic.OrdererEgressBytes) / float64(blocks)
	if deliveries > 0 {
		d := float64(deliveries)
		f.DuplicatesPerDelivery = float64(r.Traffic.Duplicates) / d
		f.GraftsPerDelivery = float64(r.Traffic.Grafts) / d
		f.GraftRepeatsPerDelivery = float64(r.Traffic.GraftRepeats) / d
		f.TreeGraftsPerDelivery = float64(r.Traffic.TreeGrafts) / d
		f.MessagesPerDeliveryByType = map[string]float64{}
		for _, k := range slices.Sorted(maps.Keys(r.Traffic.Messages)) { // in order: the same sum, bit for bit
			n := float64(r.Traffic.Messages[k])
			f.MessagesPerDelivery += n / d
			f.MessagesPerDeliveryByType[k] = n / d
		}
		f.Via = ViaShares{
			Push: float64(vias[gossip.ViaPush]) / d, Pull: float64(vias[gossip.ViaPull]) / d,
			State: float64(vias[gossip.ViaState]) / d, Orderer: float64(vias[gossip.ViaOrderer]) / d,
		}
	}
	if window := lastCommit.Sub(first).Seconds(); deliveries > 0 && window > 0 {
		f.BlocksPerS = float64(len(ttl)) / window
		f.MBPerS = committed / window / 1e6
	}
	return f
}

// NearestRank returns the p-th percentile (0 < p <= 100) of sorted by the
// nearest-rank method: the smallest value with at least p% of the values at
// or below it. It returns 0 for an empty slice.
func NearestRank(sorted []float64, p float64) float64 {
	if len(sorted) == 0 {
		return 0
	}
	rank := int(math.Ceil(p * float64(len(sorted)) / 100))
	return sorted[min(max(rank, 1), len(sorted))-1]
}

func ms(d time.Duration) float64 { return float64(d) / float64(time.Millisecond) }
