package ledger

import (
	"bytes"
	"crypto/sha256"
	"encoding/binary"
	"errors"
	"fmt"

	pb "github.com/blockgossip/blockgossip/protos"
	"google.golang.org/protobuf/proto"
)

// BlockVerifier checks the orderer's signature over a block header, given
// the exact header bytes received. identity.OrdererVerifier implements it;
// ledger does not import identity.
type BlockVerifier interface {
	VerifyBlockSignature(header, signature []byte) error
}

// Verification errors. Each rejection wraps exactly one of these, so callers
// can tell them apart with errors.Is.
var (
	ErrMalformedBlock = errors.New("malformed block")
	ErrBadSignature   = errors.New("bad orderer signature")
	ErrBadDataHash    = errors.New("data hash does not match transactions")
)

// DataHash is SHA-256 over the transactions, each preceded by its length as
// a big-endian uint64. The length prefix makes the encoding injective: a
// relaying peer cannot re-split the bytes into other transactions with the
// same hash (the flaw behind Fabric's CVE-2023-46132).
func DataHash(txs [][]byte) []byte {
	h := sha256.New()
	var n [8]byte
	for _, tx := range txs {
		binary.BigEndian.PutUint64(n[:], uint64(len(tx)))
		h.Write(n[:])
		h.Write(tx)
	}
	return h.Sum(nil)
}

// HeaderHash is the hash of a block: SHA-256 over its header bytes exactly
// as they travel.
func HeaderHash(b *pb.Block) []byte {
	s := sha256.Sum256(b.GetHeader())
	return s[:]
}

// ParseHeader decodes a block's header bytes.
func ParseHeader(b *pb.Block) (*pb.BlockHeader, error) {
	if b == nil || len(b.GetHeader()) == 0 {
		return nil, fmt.Errorf("%w: no header", ErrMalformedBlock)
	}
	h := new(pb.BlockHeader)
	if err := proto.Unmarshal(b.GetHeader(), h); err != nil {
		return nil, fmt.Errorf("%w: header: %v", ErrMalformedBlock, err)
	}
	return h, nil
}

// NewBlock builds an unsigned block; the orderer signs it with SignBlock.
// Header bytes are produced once here and never re-marshalled afterwards.
func NewBlock(number uint64, previousHash []byte, txs [][]byte, cutTimeUnixNano int64) *pb.Block {
	hdr, err := proto.MarshalOptions{Deterministic: true}.Marshal(&pb.BlockHeader{
		Number:       number,
		PreviousHash: previousHash,
		DataHash:     DataHash(txs),
	})
	if err != nil { // cannot happen for this message; keep the invariant loud
		panic(fmt.Sprintf("marshal block header: %v", err))
	}
	return &pb.Block{
		Header:   hdr,
		Data:     &pb.BlockData{Transactions: txs},
		Metadata: &pb.BlockMetadata{CutTimeUnixNano: cutTimeUnixNano},
	}
}

// SignBlock sets the block's signature using sign, which signs the header
// bytes (for example identity.Identity.Sign).
func SignBlock(b *pb.Block, sign func([]byte) []byte) {
	if b.Metadata == nil {
		b.Metadata = &pb.BlockMetadata{}
	}
	b.Metadata.Signature = sign(b.Header)
}

// VerifyBlock checks a block on its own: the header parses, the data hash
// matches the transactions and the orderer's signature covers the header
// bytes. It returns the parsed header. Chain linkage (number and previous
// hash) is checked at commit, by the ledger.
func VerifyBlock(b *pb.Block, v BlockVerifier) (*pb.BlockHeader, error) {
	h, err := ParseHeader(b)
	if err != nil {
		return nil, err
	}
	if err := verifyContent(b, h, v); err != nil {
		return nil, fmt.Errorf("block %d: %w", h.GetNumber(), err)
	}
	return h, nil
}

// Verified is a block that Verify found whole: its header parses, its
// data hash matches its transactions and the orderer's signature covers
// its header. Only Verify and VerifyEncoded make one, so a ledger may commit it without
// checking it again (AppendVerified): a peer that verified a block before
// forwarding it need not pay for the hash and the signature twice. The
// block must not be modified after Verify.
type Verified struct {
	block *pb.Block
	hdr   *pb.BlockHeader
	raw   []byte // the block's encoding, when VerifyEncoded decoded it
}

// Verify checks b as VerifyBlock does and returns it as Verified.
func Verify(b *pb.Block, v BlockVerifier) (Verified, error) {
	h, err := VerifyBlock(b, v)
	if err != nil {
		return Verified{}, err
	}
	return Verified{block: b, hdr: h}, nil
}

// Block is the verified block (nil for the zero Verified).
func (vb Verified) Block() *pb.Block { return vb.block }

// Header is the verified block's parsed header (nil for the zero Verified).
func (vb Verified) Header() *pb.BlockHeader { return vb.hdr }

// verifyContent checks the data hash and the orderer signature of a block
// whose header h was parsed from b. Its errors do not name the block.
func verifyContent(b *pb.Block, h *pb.BlockHeader, v BlockVerifier) error {
	if !bytes.Equal(h.GetDataHash(), DataHash(b.GetData().GetTransactions())) {
		return ErrBadDataHash
	}
	if v == nil {
		return ErrNoVerifier
	}
	if err := v.VerifyBlockSignature(b.GetHeader(), b.GetMetadata().GetSignature()); err != nil {
		return fmt.Errorf("%w: %v", ErrBadSignature, err)
	}
	return nil
}
