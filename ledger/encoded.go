package ledger

import (
	"fmt"

	"google.golang.org/protobuf/encoding/protowire"
	"google.golang.org/protobuf/proto"

	pb "github.com/blockgossip/blockgossip/protos"
)

// DecodeBlock decodes a marshalled Block without copying its bytes: the
// header, the transactions and the signature of the result are slices of
// raw, so raw must not be modified while the block is in use. A 100 KiB
// block received in a message is then decoded for the cost of a walk over
// its few fields, not of a copy (proto.Unmarshal copies every bytes
// field). An encoding that is valid but unusual (a field repeated, an
// unknown field) is decoded by proto.Unmarshal, with its semantics.
func DecodeBlock(raw []byte) (*pb.Block, error) {
	if b, ok := decodeAliased(raw); ok {
		return b, nil
	}
	b := new(pb.Block)
	if err := proto.Unmarshal(raw, b); err != nil {
		return nil, fmt.Errorf("%w: %v", ErrMalformedBlock, err)
	}
	return b, nil
}

// Encoded is a block DecodeEncoded decoded from its encoding, with the
// encoding: VerifyEncoded can then keep the bytes for the ledger without
// decoding them again.
type Encoded struct {
	block *pb.Block
	raw   []byte
}

// DecodeEncoded decodes raw with DecodeBlock and keeps raw beside it.
func DecodeEncoded(raw []byte) (Encoded, error) {
	b, err := DecodeBlock(raw)
	if err != nil {
		return Encoded{}, err
	}
	return Encoded{block: b, raw: raw}, nil
}

// Block is the decoded block (nil for the zero Encoded).
func (e Encoded) Block() *pb.Block { return e.block }

// Bytes is the block's encoding (nil for the zero Encoded).
func (e Encoded) Bytes() []byte { return e.raw }

// VerifyEncoded verifies e's block as Verify does. The Verified keeps
// e's bytes, which AppendVerified stores as they are instead of
// marshalling the block again.
func VerifyEncoded(e Encoded, v BlockVerifier) (Verified, error) {
	vb, err := Verify(e.block, v)
	if err != nil {
		return Verified{}, err
	}
	vb.raw = e.raw
	return vb, nil
}

// Bytes is the verified block's encoding when VerifyEncoded made it, and
// nil when Verify did.
func (vb Verified) Bytes() []byte { return vb.raw }

// decodeAliased decodes the usual encoding of a Block: each field at most
// once, no unknown field, every bytes field a slice of raw. It reports
// false for anything else, which DecodeBlock leaves to proto.Unmarshal.
func decodeAliased(raw []byte) (*pb.Block, bool) {
	b := new(pb.Block)
	seen := 0
	ok := eachField(raw, func(num protowire.Number, v []byte) bool {
		if seen&(1<<num) != 0 {
			return false
		}
		seen |= 1 << num
		switch num {
		case 1:
			b.Header = v
		case 2:
			b.Data = new(pb.BlockData)
			return eachField(v, func(num protowire.Number, tx []byte) bool {
				b.Data.Transactions = append(b.Data.Transactions, tx)
				return num == 1
			})
		case 3:
			b.Metadata = new(pb.BlockMetadata)
			return decodeMetadata(v, b.Metadata)
		default:
			return false
		}
		return true
	})
	return b, ok
}

// decodeMetadata decodes a BlockMetadata: signature (bytes, field 1) and
// cut time (varint, field 2), each at most once.
func decodeMetadata(b []byte, m *pb.BlockMetadata) bool {
	seen := 0
	for len(b) > 0 {
		num, typ, n := protowire.ConsumeTag(b)
		if n < 0 || num > 2 || seen&(1<<num) != 0 {
			return false
		}
		seen |= 1 << num
		b = b[n:]
		switch {
		case num == 1 && typ == protowire.BytesType:
			v, n := protowire.ConsumeBytes(b)
			if n < 0 {
				return false
			}
			m.Signature, b = v, b[n:]
		case num == 2 && typ == protowire.VarintType:
			v, n := protowire.ConsumeVarint(b)
			if n < 0 {
				return false
			}
			m.CutTimeUnixNano, b = int64(v), b[n:]
		default:
			return false
		}
	}
	return true
}

// eachField calls f with each field of b, which must all be of the bytes
// wire type (strings, bytes, messages), until f returns false. It reports
// whether b was all such fields and f never refused one.
func eachField(b []byte, f func(num protowire.Number, v []byte) bool) bool {
	for len(b) > 0 {
		num, typ, n := protowire.ConsumeTag(b)
		if n < 0 || typ != protowire.BytesType {
			return false
		}
		b = b[n:]
		v, n := protowire.ConsumeBytes(b)
		if n < 0 {
			return false
		}
		b = b[n:]
		if !f(num, v) {
			return false
		}
	}
	return true
}
