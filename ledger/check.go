package ledger

import (
	"bytes"
	"encoding/hex"
	"fmt"

	pb "github.com/blockgossip/blockgossip/protos"
	"google.golang.org/protobuf/proto"
)

// accepted is a block that passed every check and is ready to commit.
type accepted struct {
	raw    []byte  // marshalled pb.Block, what is stored
	number uint64  // header number == old height
	tip    TipInfo // the tip after committing it
}

// prepare checks b against tip (cheap linkage checks first, so a peer
// sending junk costs us no signature verification) and marshals it.
func prepare(b *pb.Block, tip TipInfo, v BlockVerifier) (accepted, error) {
	h, err := ParseHeader(b)
	if err != nil {
		return accepted{}, err
	}
	err = checkLink(h, tip)
	if err == nil {
		err = verifyContent(b, h, v)
	}
	if err != nil {
		return accepted{}, fmt.Errorf("block %d: %w", h.GetNumber(), err)
	}
	return accept(b, h, nil, tip)
}

// prepareVerified checks a block Verify or VerifyEncoded passed against
// tip and marshals it if its encoding is not known; its content is not
// checked again.
func prepareVerified(vb Verified, tip TipInfo) (accepted, error) {
	b, h := vb.Block(), vb.Header()
	if b == nil || h == nil {
		return accepted{}, fmt.Errorf("%w: not a block Verify returned", ErrMalformedBlock)
	}
	if err := checkLink(h, tip); err != nil {
		return accepted{}, fmt.Errorf("block %d: %w", h.GetNumber(), err)
	}
	return accept(b, h, vb.Bytes(), tip)
}

// accept marshals b, whose header h passed every check, for the commit,
// unless raw, its encoding, is known.
func accept(b *pb.Block, h *pb.BlockHeader, raw []byte, tip TipInfo) (accepted, error) {
	if raw == nil {
		var err error
		if raw, err = proto.Marshal(b); err != nil {
			return accepted{}, fmt.Errorf("block %d: %w: marshal: %v", h.GetNumber(), ErrMalformedBlock, err)
		}
	}
	return accepted{
		raw:    raw,
		number: h.GetNumber(),
		tip: TipInfo{
			Height:       tip.Height + 1,
			CurrentHash:  HeaderHash(b),
			PreviousHash: bytes.Clone(h.GetPreviousHash()),
		},
	}, nil
}

// checkLink checks that a block with header h is the next one after tip.
// Its errors do not name the block.
func checkLink(h *pb.BlockHeader, tip TipInfo) error {
	if h.GetNumber() != tip.Height {
		return fmt.Errorf("%w: ledger height is %d, so the next block must be %d",
			ErrWrongNumber, tip.Height, tip.Height)
	}
	if !bytes.Equal(h.GetPreviousHash(), tip.CurrentHash) {
		return fmt.Errorf("%w: block links to %s, tip hash is %s",
			ErrBadPreviousHash, shortHash(h.GetPreviousHash()), shortHash(tip.CurrentHash))
	}
	return nil
}

// shortHash prints enough of a hash to tell blocks apart in a message.
func shortHash(h []byte) string {
	if len(h) == 0 {
		return "(empty)"
	}
	if len(h) > 8 {
		h = h[:8]
	}
	return hex.EncodeToString(h)
}

// clone returns a TipInfo whose slices the caller may keep and modify.
func (t TipInfo) clone() TipInfo {
	return TipInfo{Height: t.Height, CurrentHash: bytes.Clone(t.CurrentHash), PreviousHash: bytes.Clone(t.PreviousHash)}
}

// unmarshalBlock decodes a stored block.
func unmarshalBlock(raw []byte) (*pb.Block, error) {
	b := new(pb.Block)
	if err := proto.Unmarshal(raw, b); err != nil {
		return nil, err
	}
	return b, nil
}

// rangeEnd caps end at height and reports whether start is readable.
func rangeEnd(start, end, height uint64) (uint64, error) {
	if start >= height {
		return 0, fmt.Errorf("block %d: %w: ledger height is %d", start, ErrNotFound, height)
	}
	return min(end, height), nil
}

// fits reports whether a block of size n may join a range result of total
// bytes so far holding count blocks.
func fits(total, n, count, maxBytes int) bool {
	return count == 0 || maxBytes <= 0 || total+n <= maxBytes
}
