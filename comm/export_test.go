package comm

import (
	"time"

	"github.com/blockgossip/blockgossip/identity"
	pb "github.com/blockgossip/blockgossip/protos"
)

// Hooks for the external tests (package comm_test).

// MakeHandshake builds a signed handshake for a stream presenting tlsCertDER.
func MakeHandshake(self *identity.Identity, tlsCertDER []byte) (*pb.Envelope, error) {
	return makeHandshake(self, tlsCertDER, time.Now())
}

// ActiveDialer says who dialled the stream in use to id, if any.
func (t *GRPC) ActiveDialer(id identity.PKIID) (identity.PKIID, bool) {
	t.mu.Lock()
	defer t.mu.Unlock()
	if p := t.peers[id]; p != nil && p.active != nil {
		return p.active.dialer, true
	}
	return identity.PKIID{}, false
}

// Backoff is the current redial backoff to id (0: none).
func (t *GRPC) Backoff(id identity.PKIID) time.Duration {
	t.mu.Lock()
	defer t.mu.Unlock()
	if p := t.peers[id]; p != nil {
		return p.backoff
	}
	return 0
}

// Streams counts live streams, active or draining.
func (t *GRPC) Streams() int { return t.Stats().Streams }

// Recheck runs the revocation/expiry re-check now.
func (t *GRPC) Recheck() { t.recheck() }

// Dials counts the streams this transport dialled through to a handshake.
func (t *GRPC) Dials() uint64 { return t.dials.Load() }

// ReapIdle retires the streams idle as of now, as the reaper would, and
// returns how many.
func (t *GRPC) ReapIdle(now time.Time) int { return t.reapIdle(now) }

// CheckEnvelope vets a post-handshake envelope.
var CheckEnvelope = checkEnvelope
