// Package pull repairs what push dissemination missed: the digest pull
// protocol (hello, digest, request, response) for recent blocks, and range
// state transfer for peers that are far behind.
//
// The Engine is a plain state machine in the style of etcd's raft: it owns
// no goroutine, socket or clock. The caller (the gossip node) drives it with
// Tick, once per logical tick (gossip's tick is 100 ms by default), passing
// the live members and the ledger heights they advertise, and with Step, once
// per pull or state message received. Both return the messages to send; Step
// also returns the blocks that arrived. Those blocks are unverified: the
// caller verifies, dedupes, buffers and commits them, reports a bad one with
// ReportInvalid, and tells the engine its new height with OnCommitted.
//
// Pull. Every PullInterval ticks the engine sends PullHello with a fresh
// random nonce to PullPeers random live peers. Each answers with a PullDigest
// of the block numbers it holds around its height (the last DigestWindow
// committed blocks and any buffered ones up to DigestWindow above), as
// compact ranges. Once all digests are in, or DigestWait ticks have passed,
// or DigestGrace ticks after the first digest (a missing one is then lost,
// not slow), the initiator asks for each block it lacks from exactly one
// responder, spreading the blocks over the responders, and they answer
// PullResponse.
//
// Sub-ticks. A caller with a finer clock (gossip: TreeResolution sub-ticks
// per tick) says so with SetSubTicks, calls SubTick(k) when NextDeadline
// reports a timer due within the tick, and Advance(k) before stepping a
// message that arrived at sub-tick k. The waits that decide how fast a
// lost message is repaired then run in sub-ticks: the request after the
// first digest (DigestGraceSub), the re-ask of an unanswered request and
// the hedge of a state request (ReaskAfterSub to start with, then the
// measured round trip), a round whose hellos all went unanswered (hellos
// to other peers once, after a round trip; up to three times, a round trip
// apart, when PullSoon says we are behind), and PullSoon between ticks.
// Intervals, nonce lifetimes, timeouts and cooldowns stay in ticks.
//
// Repair under loss and churn. An engine pulls at its first tick
// (PullOnStart): after a restart, blocks were cut while it was down. A
// request still unanswered after the re-ask deadline has the blocks it
// lacks asked, once, of one other responder of the round (one with no
// request of ours in flight, a digest of it possibly late); if that fails
// too, or nobody else offered them, they are freed and a new round starts
// at once. A digest that comes after the round's request is asked for the
// blocks nobody was asked for. Only rounds collecting digests or waiting
// on answers that are not yet late hold PullSoon back.
//
// Catch-up (CatchUpPeers). A peer that knows from membership heights that
// it is behind (a live peer two blocks or more ahead) asks the range right
// above its height, at most BatchSize blocks, of two holders at once with
// a state request, without the hello/digest round trip; one lost answer
// then costs nothing, and when both are late two others are asked, once.
//
// Serving rule: a responder serves a PullRequest only if, within the last
// NonceTTL ticks, it sent a digest with that nonce to that same peer (one
// outstanding digest per peer; it entitles two requests: an ask and a
// re-ask), and only blocks
// inside its current digest window. So a peer cannot make us scan or send
// anything we did not offer, and every answer is capped by
// MaxBlocksPerResponse and MaxResponseBytes.
//
// State transfer. When a live peer advertises a height more than
// StateTransferThreshold above ours, the engine asks for contiguous ranges of
// at most BatchSize blocks, each from a random peer whose height covers the
// range start, keeping up to MaxInFlight requests pipelined, and retries a
// range elsewhere after StateTimeout ticks. The range holding the next
// block to commit is hedged (asked from a second peer) once its answer is
// half a timeout late, so one slow peer cannot hold the pipeline back.
//
// Lying peers. A peer gets a strike when it does not answer a state
// request in time; answers empty or out of range while claiming the blocks
// (a short answer is fine: responders cap by bytes); advertises a height
// lower than before within one incarnation; sends a pull response with
// blocks we did not ask it for; or sends a block the caller rejects
// (ReportInvalid). Strikes put it in cooldown (not asked for anything),
// doubling with each consecutive strike up to MaxCooldown, and a useful
// answer clears them; while it has strikes it gets one state request at a
// time. Selection only ever considers peers out of cooldown, so a peer
// advertising a huge height and serving nothing costs one request slot per
// cooldown, never a stall (CometBFT CVE-2025-24371).
package pull
