package gossip

import (
	"bytes"
	"testing"

	"google.golang.org/protobuf/encoding/protowire"
	"google.golang.org/protobuf/proto"

	pb "github.com/blockgossip/blockgossip/protos"
)

// However a pushed block's envelope is built (from the received payload,
// around the block's bytes, or by marshalling), it carries the payload
// proto.Marshal writes for a BlockMessage without hops, and the hops in
// the envelope; pushedBlock reads it back with the block's bytes a slice
// of the payload, and a received payload is forwarded without a copy.
func TestWireBlockRoundTrip(t *testing.T) {
	b := makeChain(testOrderer, 1, 5)[0]
	raw, err := proto.Marshal(b)
	if err != nil {
		t.Fatal(err)
	}
	want, err := proto.Marshal(&pb.GossipMessage{Content: &pb.GossipMessage_Block{Block: &pb.BlockMessage{Block: b}}})
	if err != nil {
		t.Fatal(err)
	}
	enc, err := encodeBlock(b)
	if err != nil {
		t.Fatal(err)
	}
	for name, w := range map[string]wireBlock{"encoded": enc, "raw only": {raw: raw}, "unknown": {}} {
		for _, hops := range []uint32{1, 127, 128, 1 << 31} {
			env := w.envelope(b, hops)
			if !bytes.Equal(env.GetPayload(), want) || env.GetHops() != hops {
				t.Fatalf("%s, hops %d: payload differs from proto.Marshal's, or hops %d", name, hops, env.GetHops())
			}
			got, h, ok := pushedBlock(env.GetPayload())
			if !ok || h != 0 || !bytes.Equal(got.raw, raw) || &got.payload[0] != &env.GetPayload()[0] {
				t.Fatalf("%s, hops %d: pushedBlock = %d bytes, hops %d, %v", name, hops, len(got.raw), h, ok)
			}
			if &got.raw[0] != &env.GetPayload()[bytes.Index(want, raw)] {
				t.Fatalf("%s: the block's bytes were copied", name)
			}
			if fwd := got.envelope(b, hops+1); &fwd.GetPayload()[0] != &env.GetPayload()[0] || fwd.GetHops() != hops+1 {
				t.Fatalf("%s: the forward copied the payload (or hops %d)", name, fwd.GetHops())
			}
		}
	}
	// A BlockMessage with its own hops (a graft's answer) is read, and
	// its forward is rebuilt around the block's bytes, hops in the
	// envelope only.
	old, err := proto.Marshal(&pb.GossipMessage{Content: &pb.GossipMessage_Block{Block: &pb.BlockMessage{Block: b, Hops: 3}}})
	if err != nil {
		t.Fatal(err)
	}
	w, h, ok := pushedBlock(old)
	if !ok || h != 3 || w.payload != nil || !bytes.Equal(w.raw, raw) {
		t.Fatalf("BlockMessage with hops: hops %d, payload kept %v, %v", h, w.payload != nil, ok)
	}
	if fwd := w.envelope(b, 4); !bytes.Equal(fwd.GetPayload(), want) || fwd.GetHops() != 4 {
		t.Fatal("the forward of a BlockMessage with hops is not rebuilt without them")
	}
}

// What pushedBlock does not take (another message, fields repeated or
// unknown, a truncated payload) goes to proto.Unmarshal, which decides.
func TestPushedBlockLeavesTheUnusualToProto(t *testing.T) {
	b := makeChain(testOrderer, 1, 6)[0]
	bm, err := proto.Marshal(&pb.BlockMessage{Block: b, Hops: 3})
	if err != nil {
		t.Fatal(err)
	}
	wrap := func(inner []byte) []byte {
		return protowire.AppendBytes(protowire.AppendTag(nil, fieldGossipBlock, protowire.BytesType), inner)
	}
	field := func(num protowire.Number, v uint64) []byte {
		return protowire.AppendVarint(protowire.AppendTag(bytes.Clone(bm), num, protowire.VarintType), v)
	}
	payload := wrap(bm)
	if _, hops, ok := pushedBlock(payload); !ok || hops != 3 {
		t.Fatalf("the usual encoding: hops %d, taken %v", hops, ok)
	}
	hello, err := proto.Marshal(&pb.GossipMessage{Content: &pb.GossipMessage_PullHello{PullHello: &pb.PullHello{Nonce: 1}}})
	if err != nil {
		t.Fatal(err)
	}
	for name, p := range map[string][]byte{
		"another message":     hello,
		"empty":               nil,
		"block message twice": append(bytes.Clone(payload), payload...),
		"hops twice":          wrap(field(fieldBlockMsgHops, 4)),
		"unknown field":       wrap(field(9, 4)),
		"no block":            wrap(nil),
		"truncated":           payload[:len(payload)-1],
	} {
		if _, _, ok := pushedBlock(p); ok {
			t.Errorf("%s: taken by pushedBlock", name)
		}
	}
}
