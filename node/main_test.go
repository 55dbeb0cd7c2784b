package node_test

import (
	"testing"

	"go.uber.org/goleak"
)

// TestMain fails the package if any goroutine outlives the tests: every
// node, host and loop a test starts must be stopped by its Close.
func TestMain(m *testing.M) { goleak.VerifyTestMain(m) }
