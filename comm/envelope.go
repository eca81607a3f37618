package comm

import (
	"fmt"
	"unicode/utf8"

	"google.golang.org/protobuf/encoding/protowire"
	"google.golang.org/protobuf/reflect/protoreflect"

	pb "github.com/blockgossip/blockgossip/protos"
)

// gossipMessage describes GossipMessage, whose contents checkEnvelope vets.
var gossipMessage = (&pb.GossipMessage{}).ProtoReflect().Descriptor()

// checkEnvelope vets an envelope received after the handshake: its payload
// must be a GossipMessage whose top-level fields are all known contents
// other than a handshake, and which decodes (well-formed at every depth,
// valid UTF-8 strings). It walks the wire format without decoding, so a
// 1 MiB block costs as little as a 1 KiB one. What the content means (a
// nil block, say) is for whoever interprets it to judge.
func checkEnvelope(env *pb.Envelope) error {
	b := env.GetPayload()
	if len(b) == 0 {
		return fmt.Errorf("%w: empty payload", ErrBadMessage)
	}
	return walk(b, gossipMessage, 0)
}

// maxDepth bounds nesting; GossipMessage needs 4.
const maxDepth = 16

// walk checks that b is a well-formed encoding of md. At the top level
// (depth 0) it also insists on known contents other than a handshake.
func walk(b []byte, md protoreflect.MessageDescriptor, depth int) error {
	if depth > maxDepth {
		return fmt.Errorf("%w: nested deeper than %d", ErrBadMessage, maxDepth)
	}
	for len(b) > 0 {
		num, typ, n := protowire.ConsumeTag(b)
		if n < 0 {
			return fmt.Errorf("%w: %v", ErrBadMessage, protowire.ParseError(n))
		}
		if num > protowire.MaxValidNumber {
			return fmt.Errorf("%w: field number %d out of range", ErrBadMessage, num)
		}
		b = b[n:]
		m := protowire.ConsumeFieldValue(num, typ, b)
		if m < 0 {
			return fmt.Errorf("%w: %v", ErrBadMessage, protowire.ParseError(m))
		}
		val := b[:m]
		b = b[m:]
		fd := md.Fields().ByNumber(num)
		if depth == 0 {
			if fd == nil || typ != protowire.BytesType {
				return fmt.Errorf("%w: unknown content field %d", ErrBadMessage, num)
			}
			if fd.Name() == "handshake" {
				return fmt.Errorf("%w: handshake after the stream was established", ErrBadMessage)
			}
		}
		if fd == nil || typ != protowire.BytesType {
			continue // unknown fields and wire-type mismatches decode as unknown fields
		}
		v, _ := protowire.ConsumeBytes(val)
		switch fd.Kind() {
		case protoreflect.MessageKind:
			if err := walk(v, fd.Message(), depth+1); err != nil {
				return err
			}
		case protoreflect.StringKind:
			if !utf8.Valid(v) {
				return fmt.Errorf("%w: field %s is not UTF-8", ErrBadMessage, fd.FullName())
			}
		}
	}
	return nil
}
