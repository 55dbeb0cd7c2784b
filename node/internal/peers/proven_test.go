package peers_test

import (
	"testing"

	"github.com/stretchr/testify/require"

	"github.com/casd/casd/node/internal/peers"
)

// TestProvenBoundedAndForgets: proven peers are remembered up to a bound,
// the least recently proven forgotten first (a check does not refresh a
// peer, only a new proof does), and a peer that fails is forgotten at once.
func TestProvenBoundedAndForgets(t *testing.T) {
	s := peers.NewProven()
	const n = 5000 // past the bound of 4,096
	for i := range n {
		s.Add(testPeer(i))
	}
	require.Equal(t, 4096, s.Len())
	require.False(t, s.Has(testPeer(0)), "the oldest proof is forgotten first")
	require.True(t, s.Has(testPeer(n-1)))

	first := testPeer(n - 4096) // now the least recently proven
	require.True(t, s.Has(first))
	s.Add(testPeer(n)) // evicts first: Has did not refresh it
	require.False(t, s.Has(first))

	s.Add(testPeer(1)) // a new proof refreshes
	s.Forget(testPeer(1))
	require.False(t, s.Has(testPeer(1)), "a failed challenge forgets the peer")
}
