package protocol_test

import (
	"testing"

	"go.uber.org/goleak"
)

// TestMain fails the package if a goroutine outlives the tests: every
// service and host a test starts must be stopped by its Close.
func TestMain(m *testing.M) { goleak.VerifyTestMain(m) }
