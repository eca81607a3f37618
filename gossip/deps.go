package gossip

import (
	"errors"

	"github.com/blockgossip/blockgossip/identity"
	pb "github.com/blockgossip/blockgossip/protos"
)

// Ledger is the block store a Peer commits to. The Peer calls it from its
// single goroutine only.
type Ledger interface {
	// Height is the number of committed blocks (the next block's number).
	Height() uint64
	// Append commits the block numbered Height(), checking that its
	// previous hash is the hash of the last block.
	Append(b *pb.Block) error
	// Block returns the committed block numbered n.
	Block(n uint64) (*pb.Block, error)
}

// Crypto signs this peer's alive messages and verifies other members'.
// It is called from the Peer's goroutine only.
type Crypto interface {
	// Sign signs payload with this peer's identity key.
	Sign(payload []byte) []byte
	// Verify checks that m's certificate is a valid member certificate of
	// m's org whose PKI-ID is m.PkiId, and that signature is its key's
	// signature over payload.
	Verify(m *pb.Member, payload, signature []byte) error
}

// NopCrypto signs nothing and accepts everything. For simulations and tests
// of identity-free cores only: it makes alive messages forgeable.
type NopCrypto struct{}

// Sign returns nil.
func (NopCrypto) Sign([]byte) []byte { return nil }

// Verify accepts.
func (NopCrypto) Verify(*pb.Member, []byte, []byte) error { return nil }

// Self is this peer as its alive messages announce it.
type Self struct {
	ID       identity.PKIID
	Endpoint string
	Org      string
	// Cert is the DER certificate, carried in alive messages so that relayed
	// ones can be verified.
	Cert []byte
	// Incarnation must grow across restarts: take it from an
	// IncarnationStore.
	Incarnation uint64
}

// Errors the Peer reports (to InjectBlock's caller, or to the Tracer for
// what peers send).
var (
	// ErrMalformed: an envelope or message could not be decoded or lacks a
	// required field. The sender is buggy or hostile; nothing to do here.
	ErrMalformed = errors.New("malformed gossip message")
	// ErrBadSignature: an alive message whose originator's signature does
	// not verify. It is dropped and not relayed.
	ErrBadSignature = errors.New("bad member signature")
	// ErrDuplicateBlock: the block is already committed, buffered or was
	// seen recently. Harmless.
	ErrDuplicateBlock = errors.New("duplicate block")
	// ErrBeyondWindow: the block is too far ahead of the ledger height to
	// buffer; it was forwarded but must be fetched again (pull does it).
	ErrBeyondWindow = errors.New("block beyond reorder window")
	// ErrBrokenChain: a correctly signed block whose previous hash is not
	// our tip: the orderer equivocated or our ledger is corrupt. Check the
	// orderer.
	ErrBrokenChain = errors.New("block does not extend the chain")
)
