// Package ledger stores a peer's chain of blocks.
//
// A block is accepted only in order: its number must equal the ledger's
// height, its previous hash must be the hash of the current tip, its data
// hash must cover its transactions and the orderer's signature must cover
// its header bytes (see VerifyBlock). Blocks are kept as marshalled
// protobuf, so the header bytes that were signed are the header bytes
// served to other peers.
//
// Two implementations share the Ledger interface and its semantics:
// Store, backed by LevelDB, commits each block, its number and hash
// indexes and the tip record in one synced batch, so a crash at any point
// leaves the last committed block as the tip; Memory keeps everything in
// memory for protocol tests and the simulator.
//
// VerifyChain re-checks a stored ledger offline (`blockgossip ledger
// verify`) and names the first bad block.
//
// Package ledger knows nothing of gossip or the network.
package ledger
