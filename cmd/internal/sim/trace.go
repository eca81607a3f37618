package sim

import (
	"fmt"
	"io"
	"strings"

	"github.com/blockgossip/blockgossip/ledger"
	pb "github.com/blockgossip/blockgossip/protos"
	"google.golang.org/protobuf/proto"
)

// msgTrace writes one line per event that touches the traced peers: a
// debugging aid for tests in this package (Options.trace), to see why a
// peer is last. Off (nil) in every command run.
type msgTrace struct {
	out   io.Writer
	peers map[int]bool
}

func (t *msgTrace) on(peers ...int) bool {
	for _, p := range peers {
		if t.peers[p] {
			return true
		}
	}
	return false
}

func (t *msgTrace) logf(now int64, format string, args ...any) {
	fmt.Fprintf(t.out, "%9.3f ms  %s\n", float64(now)/1e6, fmt.Sprintf(format, args...))
}

// describe names a message and the block numbers or ranges it carries.
func describe(env *pb.Envelope) string {
	var m pb.GossipMessage
	if err := proto.Unmarshal(env.GetPayload(), &m); err != nil {
		return "undecodable"
	}
	nums := func(bs []*pb.Block) string {
		var s []string
		for _, b := range bs {
			h, err := ledger.ParseHeader(b)
			if err != nil {
				s = append(s, "?")
				continue
			}
			s = append(s, fmt.Sprint(h.GetNumber()))
		}
		return strings.Join(s, ",")
	}
	ranges := func(rs []*pb.BlockRange) string {
		var s []string
		for _, r := range rs {
			s = append(s, fmt.Sprintf("[%d,%d)", r.GetStart(), r.GetEnd()))
		}
		return strings.Join(s, "")
	}
	switch c := m.Content.(type) {
	case *pb.GossipMessage_Block:
		return fmt.Sprintf("block %s hop %d", nums([]*pb.Block{c.Block.GetBlock()}), max(c.Block.GetHops(), env.GetHops()))
	case *pb.GossipMessage_Ihave:
		return fmt.Sprintf("ihave %d", c.Ihave.GetNumber())
	case *pb.GossipMessage_Graft:
		return fmt.Sprintf("graft %d", c.Graft.GetNumber())
	case *pb.GossipMessage_Prune:
		return "prune"
	case *pb.GossipMessage_PullHello:
		return fmt.Sprintf("pull-hello %x", c.PullHello.GetNonce()&0xffff)
	case *pb.GossipMessage_PullDigest:
		return fmt.Sprintf("pull-digest %x %s", c.PullDigest.GetNonce()&0xffff, ranges(c.PullDigest.GetRanges()))
	case *pb.GossipMessage_PullRequest:
		return fmt.Sprintf("pull-request %x %s", c.PullRequest.GetNonce()&0xffff, ranges(c.PullRequest.GetRanges()))
	case *pb.GossipMessage_PullResponse:
		return fmt.Sprintf("pull-response %x blocks %s", c.PullResponse.GetNonce()&0xffff, nums(c.PullResponse.GetBlocks()))
	case *pb.GossipMessage_StateRequest:
		return fmt.Sprintf("state-request %s", ranges([]*pb.BlockRange{c.StateRequest.GetRange()}))
	case *pb.GossipMessage_StateResponse:
		return fmt.Sprintf("state-response blocks %s height %d", nums(c.StateResponse.GetBlocks()), c.StateResponse.GetHeight())
	case *pb.GossipMessage_Alive:
		return fmt.Sprintf("alive inc %d seq %d", c.Alive.GetIncarnation(), c.Alive.GetSequence())
	case *pb.GossipMessage_Leadership:
		return fmt.Sprintf("leadership decl=%v height %d", c.Leadership.GetDeclaration(), c.Leadership.GetLedgerHeight())
	}
	return fmt.Sprintf("%T", m.Content)
}
