package gossip

import "fmt"

// Via tells how a block reached this peer.
type Via uint8

// The ways a block arrives.
const (
	ViaPush    Via = iota + 1 // pushed by a peer (pb.BlockMessage)
	ViaPull                   // digest pull (pull/)
	ViaState                  // range state transfer (pull/)
	ViaOrderer                // injected: delivered by the orderer to the leader
)

func (v Via) String() string {
	switch v {
	case ViaPush:
		return "push"
	case ViaPull:
		return "pull"
	case ViaState:
		return "state"
	case ViaOrderer:
		return "orderer"
	}
	return fmt.Sprintf("via(%d)", uint8(v))
}
