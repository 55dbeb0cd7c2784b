package api_test

import (
	"testing"

	"go.uber.org/goleak"
)

// TestMain fails the package if a goroutine outlives the tests: every
// server a test starts must have returned from Shutdown, every client
// closed its connections.
func TestMain(m *testing.M) { goleak.VerifyTestMain(m) }
