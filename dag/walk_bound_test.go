package dag_test

import (
	"bytes"
	"testing"

	"github.com/ipfs/go-cid"
	"github.com/stretchr/testify/require"

	"github.com/casd/casd/dag"
	"github.com/casd/casd/dag/dagtest"
)

// TestWalkZeroBoundIsDefault: WithMaxBlocks(0) or less means the default
// bound, not "no block at all".
func TestWalkZeroBoundIsDefault(t *testing.T) {
	st := dagtest.NewMemStore()
	a, err := dag.Add(t.Context(), bytes.NewReader(randomBytes(3*dag.MinChunkSize, 7)), dag.Meta{Name: "f"}, testSecrets(1), st, dag.AddOptions{ChunkSize: dag.MinChunkSize})
	require.NoError(t, err)
	for _, n := range []int{0, -1} {
		count := 0
		err := dag.Walk(t.Context(), st, a.Root, func(cid.Cid, byte) error { count++; return nil }, dag.WithMaxBlocks(n))
		require.NoError(t, err, "WithMaxBlocks(%d)", n)
		require.Equal(t, a.Blocks, count)
	}
}
