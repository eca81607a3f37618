package ledger

import (
	"errors"
	"fmt"

	pb "github.com/blockgossip/blockgossip/protos"
)

// Ledger is an append-only chain of verified blocks. Implementations are
// safe for concurrent use: appends are serialised, reads run alongside
// them and see a block only once it is committed.
type Ledger interface {
	// Append verifies b and commits it as the new tip. It accepts only
	// number == Height() and previous hash == the tip's hash (empty for
	// block 0). A rejection leaves the ledger unchanged and wraps exactly
	// one of ErrWrongNumber, ErrBadPreviousHash, ErrBadDataHash,
	// ErrBadSignature or ErrMalformedBlock.
	Append(b *pb.Block) error
	// AppendVerified commits a block Verify passed, as Append does but
	// without checking its data hash and signature again: only linkage.
	// The caller verified it against the orderer key this ledger trusts.
	AppendVerified(vb Verified) error
	// Height is the number of committed blocks; block 0 counts, so a ledger
	// holding only the genesis block has height 1.
	Height() uint64
	// Block returns block number; beyond the height it wraps ErrNotFound.
	Block(number uint64) (*pb.Block, error)
	// BlockByHash returns the block whose header hash is hash (see
	// HeaderHash), or an error wrapping ErrNotFound.
	BlockByHash(hash []byte) (*pb.Block, error)
	// Tip describes the last committed block.
	Tip() TipInfo
	// Range returns blocks [start, end), with end capped at Height(). It
	// stops before the total marshalled size would exceed maxBytes, but
	// always returns at least one block when start < Height(); maxBytes <= 0
	// means no cap. start >= Height() wraps ErrNotFound; end <= start
	// returns no blocks and no error.
	Range(start, end uint64, maxBytes int) ([]*pb.Block, error)
	// Close releases the ledger; later calls fail with ErrClosed. Closing
	// twice is harmless.
	Close() error
}

// TipInfo describes the last committed block. For an empty ledger all
// fields are zero.
type TipInfo struct {
	Height       uint64 // number of committed blocks
	CurrentHash  []byte // hash of block Height-1
	PreviousHash []byte // previous hash recorded in block Height-1 (empty for genesis)
}

// Ledger errors. Every error the package returns wraps at most one of these
// (or one of the verification errors in block.go), so callers can branch
// with errors.Is; the message itself says what to do.
var (
	// ErrNotFound: the block is not (yet) in this ledger; ask a peer that
	// is further ahead.
	ErrNotFound = errors.New("block not found")
	// ErrWrongNumber: the block is not the next one; buffer it until its
	// predecessors are committed, or drop it if already committed.
	ErrWrongNumber = errors.New("block number is not the ledger height")
	// ErrBadPreviousHash: the block does not link to our tip; the sender is
	// on another chain or is forging blocks.
	ErrBadPreviousHash = errors.New("previous hash does not match the ledger tip")
	// ErrLocked: another process (or another Open) holds the ledger.
	ErrLocked = errors.New("ledger is locked")
	// ErrCorrupted: what is on disk is inconsistent; run `blockgossip
	// ledger verify` and restore or remove the ledger.
	ErrCorrupted = errors.New("ledger is corrupted")
	// ErrClosed: the ledger was closed.
	ErrClosed = errors.New("ledger is closed")
	// ErrNoVerifier: a ledger needs the orderer's BlockVerifier to check
	// blocks; pass the one pinned in the network description.
	ErrNoVerifier = errors.New("no block verifier")
)

// ChainError names the first bad block VerifyChain found and why.
type ChainError struct {
	Number uint64 // the first bad block
	Err    error  // why; wraps one of the sentinel errors
}

func (e *ChainError) Error() string { return fmt.Sprintf("block %d: %v", e.Number, e.Err) }

// Unwrap lets errors.Is see the reason.
func (e *ChainError) Unwrap() error { return e.Err }

// Compile-time checks that both stores implement Ledger.
var (
	_ Ledger = (*Store)(nil)
	_ Ledger = (*Memory)(nil)
)
