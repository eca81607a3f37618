package identity

import (
	"crypto/x509"
	"testing"
	"time"

	"go.uber.org/goleak"
)

func TestMain(m *testing.M) { goleak.VerifyTestMain(m) }

// t0 is the fixed instant tests pin MSP clocks to.
var t0 = time.Date(2030, 6, 1, 12, 0, 0, 0, time.UTC)

// fixture is two orgs' CAs, a peer of each, and an MSP trusting both,
// with its clock pinned to t0.
type fixture struct {
	ca1, ca2     *CA
	peer1, peer2 *Identity
	msp          *MSP
}

func newFixture(t testing.TB) *fixture {
	t.Helper()
	f := &fixture{ca1: mustCA(t, "org1"), ca2: mustCA(t, "org2")}
	f.peer1 = mustIssue(t, f.ca1, "org1-peer0", RolePeer)
	f.peer2 = mustIssue(t, f.ca2, "org2-peer0", RolePeer)
	var err error
	f.msp, err = NewMSP(map[string]*x509.Certificate{"org1": f.ca1.Cert, "org2": f.ca2.Cert})
	if err != nil {
		t.Fatal(err)
	}
	f.msp.SetClock(func() time.Time { return t0 })
	return f
}

// mustCA makes a CA valid a year around t0.
func mustCA(t testing.TB, org string) *CA {
	t.Helper()
	ca, err := NewCAValidBetween(org, t0.AddDate(-1, 0, 0), t0.AddDate(1, 0, 0))
	if err != nil {
		t.Fatal(err)
	}
	return ca
}

// mustIssue issues a certificate valid a month around t0.
func mustIssue(t testing.TB, ca *CA, name string, role Role) *Identity {
	t.Helper()
	id, err := ca.Issue(name, role, t0.AddDate(0, -1, 0), t0.AddDate(0, 1, 0))
	if err != nil {
		t.Fatal(err)
	}
	return id
}
