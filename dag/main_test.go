package dag_test

import (
	"testing"

	"go.uber.org/goleak"
)

// TestMain fails the package if a goroutine outlives the tests: every
// worker an operation starts must be done when the operation returns.
func TestMain(m *testing.M) { goleak.VerifyTestMain(m) }
