package replicate

import (
	"testing"

	"github.com/stretchr/testify/require"

	"github.com/casd/casd/blockstore/blockstoretest"
)

// TestServedWatch: a watch sees the block served after it began, not
// before, nor another block; overlapping watches on one block each see
// what was served during their own span; the table empties when the last
// watch stops.
func TestServedWatch(t *testing.T) {
	var s servedWatch
	a, b := blockstoretest.NewBlock([]byte("a")).Cid, blockstoretest.NewBlock([]byte("b")).Cid
	s.note(a) // before any watch: ignored
	stop1 := s.watch(a)
	s.note(b)
	s.note(a) // seen by the first watch only
	stop2 := s.watch(a)
	require.False(t, stop2(), "nothing served since the second watch began")
	stop3 := s.watch(a)
	s.note(a)
	require.True(t, stop3())
	require.True(t, stop1())
	require.True(t, stop1(), "stop is idempotent")
	require.Empty(t, s.watched)
	require.Zero(t, s.active.Load())
	require.False(t, s.watch(a)(), "a new watch starts clean")
}
