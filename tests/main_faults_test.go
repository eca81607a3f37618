//go:build faults

package tests

import (
	"testing"

	"go.uber.org/goleak"
)

// Every goroutine a fault scenario starts (feeders, reapers, the TCP
// cutter, the hostile member's transport) is stopped by its cleanup.
func TestMain(m *testing.M) { goleak.VerifyTestMain(m) }
