package gossip

import (
	"fmt"

	"github.com/blockgossip/blockgossip/ledger"

	"google.golang.org/protobuf/encoding/protowire"
	"google.golang.org/protobuf/proto"

	pb "github.com/blockgossip/blockgossip/protos"
)

// Field numbers of the block path's messages (protos/gossip.proto), which
// pushedBlock and wireBlock read and write without proto's copies.
const (
	fieldGossipBlock  protowire.Number = 5 // GossipMessage.block
	fieldBlockMsgBody protowire.Number = 1 // BlockMessage.block
	fieldBlockMsgHops protowire.Number = 2 // BlockMessage.hops
)

// wireBlock is a pushed block's bytes as they travel, so that a peer
// forwards and commits what it received instead of copying and
// marshalling it again (a 100 KiB block cost three such copies per peer).
// A zero wireBlock means neither is known: the block is marshalled.
type wireBlock struct {
	// payload is a GossipMessage holding only a BlockMessage without
	// hops (those travel in Envelope.hops): it is forwarded as it is.
	payload []byte
	// raw is the block's encoding, a slice of the payload.
	raw []byte
	// enc is the block decoded from raw (stepBlock, encodeBlock): it is
	// verified and committed as it is, not decoded again.
	enc ledger.Encoded
	// stamp is the block's cut stamp (Envelope.stamp; 0: not known),
	// forwarded as it came.
	stamp uint64
}

// pushedBlock finds a pushed block in an envelope's payload when the
// payload is a GossipMessage holding one BlockMessage in the usual
// encoding (each field once, nothing else), and reports its hops (the
// BlockMessage's, 0 if absent). Anything else reports false and takes
// proto.Unmarshal's path, which accepts what this one does not.
func pushedBlock(payload []byte) (w wireBlock, hops uint32, ok bool) {
	num, typ, n := protowire.ConsumeTag(payload)
	if n < 0 || num != fieldGossipBlock || typ != protowire.BytesType {
		return wireBlock{}, 0, false
	}
	msg, m := protowire.ConsumeBytes(payload[n:])
	if m < 0 || n+m != len(payload) {
		return wireBlock{}, 0, false
	}
	var seenBody, seenHops bool
	for len(msg) > 0 {
		num, typ, n := protowire.ConsumeTag(msg)
		if n < 0 {
			return wireBlock{}, 0, false
		}
		msg = msg[n:]
		switch {
		case num == fieldBlockMsgBody && typ == protowire.BytesType && !seenBody:
			w.raw, n = protowire.ConsumeBytes(msg)
			seenBody = true
		case num == fieldBlockMsgHops && typ == protowire.VarintType && !seenHops:
			var v uint64
			v, n = protowire.ConsumeVarint(msg)
			hops, seenHops = uint32(v), true
		default:
			return wireBlock{}, 0, false
		}
		if n < 0 {
			return wireBlock{}, 0, false
		}
		msg = msg[n:]
	}
	if !seenHops {
		w.payload = payload // otherwise its hops would contradict the envelope's
	}
	return w, hops, seenBody
}

// encodeBlock marshals a block to push (from the orderer): once, for
// every push and the ledger alike.
func encodeBlock(b *pb.Block) (wireBlock, error) {
	payload, err := proto.Marshal(&pb.GossipMessage{Content: &pb.GossipMessage_Block{Block: &pb.BlockMessage{Block: b}}})
	if err != nil {
		return wireBlock{}, fmt.Errorf("%w: block: %v", ErrMalformed, err)
	}
	w, _, ok := pushedBlock(payload)
	if !ok { // cannot happen: proto.Marshal writes the usual encoding
		return wireBlock{}, fmt.Errorf("%w: block marshalled into an unexpected encoding", ErrMalformed)
	}
	if w.enc, err = ledger.DecodeEncoded(w.raw); err != nil {
		return wireBlock{}, fmt.Errorf("%w: block: %v", ErrMalformed, err)
	}
	return w, nil
}

// envelope is the envelope pushing block b with hops: w's payload shared
// as it is, or a payload built around w's raw bytes (one copy), or b
// marshalled.
func (w wireBlock) envelope(b *pb.Block, hops uint32) *pb.Envelope {
	switch {
	case w.payload != nil:
		return &pb.Envelope{Payload: w.payload, Hops: hops, Stamp: w.stamp}
	case w.raw != nil:
		body := protowire.SizeTag(fieldBlockMsgBody) + protowire.SizeBytes(len(w.raw))
		p := make([]byte, 0, protowire.SizeTag(fieldGossipBlock)+protowire.SizeBytes(body))
		p = protowire.AppendTag(p, fieldGossipBlock, protowire.BytesType)
		p = protowire.AppendVarint(p, uint64(body))
		p = protowire.AppendTag(p, fieldBlockMsgBody, protowire.BytesType)
		p = protowire.AppendBytes(p, w.raw)
		return &pb.Envelope{Payload: p, Hops: hops, Stamp: w.stamp}
	}
	env := envelope(&pb.GossipMessage{Content: &pb.GossipMessage_Block{Block: &pb.BlockMessage{Block: b}}})
	env.Hops, env.Stamp = hops, w.stamp
	return env
}
