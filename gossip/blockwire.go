package gossip

import (
	"google.golang.org/protobuf/encoding/protowire"

	pb "github.com/blockgossip/blockgossip/protos"
)

// Field numbers of the block path's messages (protos/gossip.proto), which
// pushedBlock and blockEnvelope read and write without proto's copies.
const (
	fieldGossipBlock  protowire.Number = 5 // GossipMessage.block
	fieldBlockMsgBody protowire.Number = 1 // BlockMessage.block
	fieldBlockMsgHops protowire.Number = 2 // BlockMessage.hops
)

// pushedBlock finds a pushed block in an envelope's payload when the
// payload is a GossipMessage holding one BlockMessage in the usual
// encoding (each field once, nothing else): the block's encoding, a
// slice of payload, and its hops. Anything else reports false and takes
// proto.Unmarshal's path, which accepts what this one does not.
func pushedBlock(payload []byte) (raw []byte, hops uint32, ok bool) {
	num, typ, n := protowire.ConsumeTag(payload)
	if n < 0 || num != fieldGossipBlock || typ != protowire.BytesType {
		return nil, 0, false
	}
	msg, m := protowire.ConsumeBytes(payload[n:])
	if m < 0 || n+m != len(payload) {
		return nil, 0, false
	}
	var seenBody, seenHops bool
	for len(msg) > 0 {
		num, typ, n := protowire.ConsumeTag(msg)
		if n < 0 {
			return nil, 0, false
		}
		msg = msg[n:]
		switch {
		case num == fieldBlockMsgBody && typ == protowire.BytesType && !seenBody:
			raw, n = protowire.ConsumeBytes(msg)
			seenBody = true
		case num == fieldBlockMsgHops && typ == protowire.VarintType && !seenHops:
			var v uint64
			v, n = protowire.ConsumeVarint(msg)
			hops, seenHops = uint32(v), true
		default:
			return nil, 0, false
		}
		if n < 0 {
			return nil, 0, false
		}
		msg = msg[n:]
	}
	return raw, hops, seenBody
}

// blockEnvelope is the envelope pushing block b with hops, built around
// raw, b's encoding, when known: the block is copied once into the
// payload and not marshalled. The payload is what proto.Marshal writes.
func blockEnvelope(b *pb.Block, raw []byte, hops uint32) *pb.Envelope {
	if raw == nil {
		return envelope(&pb.GossipMessage{Content: &pb.GossipMessage_Block{Block: &pb.BlockMessage{Block: b, Hops: hops}}})
	}
	body := protowire.SizeTag(fieldBlockMsgBody) + protowire.SizeBytes(len(raw))
	if hops != 0 {
		body += protowire.SizeTag(fieldBlockMsgHops) + protowire.SizeVarint(uint64(hops))
	}
	p := make([]byte, 0, protowire.SizeTag(fieldGossipBlock)+protowire.SizeBytes(body))
	p = protowire.AppendTag(p, fieldGossipBlock, protowire.BytesType)
	p = protowire.AppendVarint(p, uint64(body))
	p = protowire.AppendTag(p, fieldBlockMsgBody, protowire.BytesType)
	p = protowire.AppendBytes(p, raw)
	if hops != 0 {
		p = protowire.AppendTag(p, fieldBlockMsgHops, protowire.VarintType)
		p = protowire.AppendVarint(p, uint64(hops))
	}
	return &pb.Envelope{Payload: p}
}
