package p2p

import (
	"testing"

	"go.uber.org/goleak"
)

// TestMain fails the package if any goroutine outlives the tests: every
// host, DHT and mDNS service a test starts must be stopped by its Close.
func TestMain(m *testing.M) { goleak.VerifyTestMain(m) }
