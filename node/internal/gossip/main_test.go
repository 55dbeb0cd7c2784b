package gossip

import (
	"testing"

	"go.uber.org/goleak"
)

// TestMain fails the package if any goroutine outlives the tests: every
// Gossip a test starts must have stopped all of its own by Close.
func TestMain(m *testing.M) { goleak.VerifyTestMain(m) }
