package dag_test

import (
	"bytes"
	"path/filepath"
	"testing"

	"github.com/stretchr/testify/require"

	"github.com/casd/casd/blockstore"
	"github.com/casd/casd/dag"
)

// TestAddToBlockstore runs Add through the staged-batch path of a real
// block store and reads the file back from it.
func TestAddToBlockstore(t *testing.T) {
	dir := t.TempDir()
	st, err := blockstore.Open(filepath.Join(dir, "blocks"), filepath.Join(dir, "meta.db"))
	require.NoError(t, err)
	t.Cleanup(func() { require.NoError(t, st.Close()) })
	var _ dag.BatchPutter = st

	s := testSecrets(1)
	data := randomBytes(40*dag.MinChunkSize+9, 40) // more than one commit batch
	var progress []int64
	a, err := dag.Add(t.Context(), bytes.NewReader(data), dag.Meta{Name: "x"}, s, st,
		dag.AddOptions{ChunkSize: dag.MinChunkSize, Progress: func(n int64) { progress = append(progress, n) }})
	require.NoError(t, err)
	require.Equal(t, int64(len(data)), progress[len(progress)-1])
	require.IsIncreasing(t, progress)

	stat, err := st.Stat(t.Context())
	require.NoError(t, err)
	require.Equal(t, a.Blocks, stat.Blocks)
	require.Equal(t, a.Bytes, stat.Bytes)

	f, err := dag.OpenOwned(t.Context(), st, a.Root, &s.Master)
	require.NoError(t, err)
	var out bytes.Buffer
	_, err = f.WriteTo(t.Context(), &out, st, dag.ReadOptions{})
	require.NoError(t, err)
	require.True(t, bytes.Equal(data, out.Bytes()))

	rep, err := st.Verify(t.Context(), dag.Links)
	require.NoError(t, err)
	require.Empty(t, rep.Corrupt)
	require.Empty(t, rep.Missing)
	require.Equal(t, a.Blocks, rep.Checked)
}
