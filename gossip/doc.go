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
// hash) -> forward at once to Fanout random live peers of the same org ->
// reorder buffer -> commit in order to the ledger. Nothing unverified is
// ever forwarded or committed; a peer that sends a forged block is
// penalised and, after repeated offences, disconnected and ignored.
//
// Push comes in two modes. The default is Fabric's: every peer forwards a
// new block once to Fanout random live peers of its org, which reaches
// the fraction p = 1 - e^(-Fanout*p) of them (98% for 4) at Fanout copies
// per peer; pull repairs the rest. With Config.Tree, blocks flow in full
// along a self-pruning tree and are announced lazily (IHave) elsewhere, so
// each peer gets about one copy and a missing one is grafted from an
// announcer within GraftTimeout ticks.
package gossip
