package gossip

import (
	"bytes"
	"testing"

	"google.golang.org/protobuf/encoding/protowire"
	"google.golang.org/protobuf/proto"

	pb "github.com/blockgossip/blockgossip/protos"
)

// blockEnvelope writes what proto.Marshal writes, with or without the
// block's encoding at hand, and pushedBlock reads it back: the block's
// bytes are a slice of the payload, not a copy.
func TestBlockEnvelopeRoundTrip(t *testing.T) {
	b := makeChain(testOrderer, 1, 5)[0]
	raw, err := proto.Marshal(b)
	if err != nil {
		t.Fatal(err)
	}
	for _, hops := range []uint32{0, 1, 127, 128, 1 << 31} {
		want, err := proto.Marshal(&pb.GossipMessage{Content: &pb.GossipMessage_Block{Block: &pb.BlockMessage{Block: b, Hops: hops}}})
		if err != nil {
			t.Fatal(err)
		}
		for _, r := range [][]byte{raw, nil} {
			if env := blockEnvelope(b, r, hops); !bytes.Equal(env.GetPayload(), want) {
				t.Fatalf("hops %d, raw known %v: payload differs from proto.Marshal's", hops, r != nil)
			}
		}
		gotRaw, gotHops, ok := pushedBlock(want)
		if !ok || gotHops != hops || !bytes.Equal(gotRaw, raw) {
			t.Fatalf("hops %d: pushedBlock = %d bytes, hops %d, %v", hops, len(gotRaw), gotHops, ok)
		}
		at := bytes.Index(want, raw)
		if &gotRaw[0] != &want[at] {
			t.Fatalf("hops %d: the block's bytes were copied", hops)
		}
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
