// Package gossip disseminates blocks among the peers of a permissioned
// blockchain: membership and failure detection, push dissemination, the
// message store, the block pipeline, and the Node that wires them to a
// transport, a ledger, the pull engine and leader election.
//
// The protocol lives in Peer, a single-threaded state machine with no
// goroutines, sockets or wall clock: the caller feeds it envelopes (Step),
// logical time (Tick) and blocks from the orderer (InjectBlock), and
// collects its effects (Ready: envelopes to send, blocks committed, peers to
// disconnect). A simulator drives thousands of Peers directly; Node is the
// thin shell that runs one Peer on a real transport and a real ticker.
//
// A block travels: receive -> dedupe -> verify (orderer signature, data
// hash) -> forward at once -> reorder buffer -> commit in order to the
// ledger. Nothing unverified is ever forwarded or committed; a peer that
// sends a forged block is penalised and, after repeated offences,
// disconnected and ignored.
//
// Push comes in two modes. The default (Config.Tree) is Plumtree-style:
// each peer starts with Fanout eager and TreeLazy lazy neighbours in its
// org; it pushes a new block in full to the eager ones and announces it
// (IHave) to the lazy ones. A peer that receives a copy it already has
// prunes the link that brought it, so after the first block (the genesis
// block, during warm-up) the eager links form a tree rooted at the leader
// and each peer gets about one copy. A peer that hears an IHave for a block
// it still lacks a graft timeout later grafts the announcer (send it,
// and push to me from now on): a lost copy or a dead parent costs one
// round trip, and the tree repairs itself. While the parent still
// delivers, only late, a graft is one-shot (that block only), so a busy
// moment does not reshape the tree; an unanswered graft is retried with
// two announcers after one graft round trip, and handed to pull when none
// is left. The graft timeout adapts between its floor (GraftTimeout, or
// GraftTimeoutSub) and MaxGraftTimeout to how late the parent's eager
// copies arrive after their IHave, and IHaves go out a delay (IHaveDelay,
// or IHaveDelaySub) after the block, so that big blocks or a busy machine
// do not get blocks grafted that are already on their way; and while the
// eager parent is pushing us blocks (ParentSilence), a missing one is
// waited for, not grafted: over gRPC a copy is lost only with its stream,
// and grafts of late copies made a busy machine busier still. These tree
// timers run on a finer clock than the tick (TreeResolution sub-ticks per
// tick, 20 ms by default): the Node wakes between ticks only while one is
// pending. Dead neighbours are replaced from the live members every tick
// (tree.go has the details), and a parent whose stream broke (a killed
// process: the transport knows seconds before the membership) is dropped
// at once: its children graft without waiting for it and ask a shallower
// neighbour to push to them (LinkDown, linkdown.go). Pull, from the ledger by height (digests
// cover the DigestWindow blocks around each peer's height, state transfer
// streams pipelined ranges beyond), is the repair path behind both; with
// PullOnGap a peer stuck behind pulls at once rather than at its next
// interval.
//
// Membership is signed alive messages spread by gossip, ordered by
// (incarnation, sequence), and expired after Expiration ticks of silence.
// Between signed alives a member sends hash-chain heartbeats that
// receivers check with a hash, not a signature (heartbeat.go), so steady
// membership costs no ed25519 verification and no certificate bytes.
// Relays are batched (every AliveBatch ticks) and flooded over a rotating
// set of AliveNeighbours peers, and pull sends most hellos to push-tree
// neighbours, so that a peer keeps streams with a few peers rather than
// with every member (relaybatch.go says why and what it measured).
//
// Election (package election) picks one leader per org, never one far
// behind; a follower that learns the orderer's height (HeightWatcher)
// stops trusting a declared leader under which the org gets no new block
// for StallTimeout, so a member cannot stall its org by declaring itself
// leader and not delivering.
//
// Fabric's mode (Tree off, FabricConfig) forwards a new block once to
// Fanout random live peers of its org, which reaches the fraction
// p = 1 - e^(-Fanout*p) of them (94% for 3) at Fanout copies per peer;
// pull repairs the rest.
package gossip
