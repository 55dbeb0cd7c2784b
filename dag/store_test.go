package dag_test

import (
	"bytes"
	"context"
	"fmt"
	"io"
	"io/fs"
	"path/filepath"
	"strings"
	"testing"

	"github.com/stretchr/testify/require"

	"github.com/casd/casd/blockstore"
	"github.com/casd/casd/dag"
)

// TestAddToBlockstore runs Add through the staged-batch path of a real
// block store and reads the file back from it. Progress rises at each
// commit and ends at the file's size, also for a file whose last chunk
// completes a commit batch (32 MiB of blocks: 128 chunks of 256 KiB).
func TestAddToBlockstore(t *testing.T) {
	for _, size := range []int{40*dag.MinChunkSize + 9, 128 * dag.MinChunkSize} {
		t.Run(fmt.Sprint(size), func(t *testing.T) { testAddToBlockstore(t, size) })
	}
}

func testAddToBlockstore(t *testing.T, size int) {
	dir := t.TempDir()
	st, err := blockstore.Open(filepath.Join(dir, "blocks"), filepath.Join(dir, "meta.db"))
	require.NoError(t, err)
	t.Cleanup(func() { require.NoError(t, st.Close()) })
	var _ dag.BatchPutter = st

	s := testSecrets(1)
	data := randomBytes(size, uint64(size))
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

	f, err := dag.OpenOwned(t.Context(), st, a.Root, s)
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

// TestGCKeepsFilesOfEveryHeight runs a real block store's GC the way the
// node does (dag.Links, with dag.LinksAreLeaves so that chunks are not
// read) over pinned files whose manifest trees have heights 0 to 3, and an
// unpinned one. GC must remove exactly the unpinned file's blocks, and every
// pinned file must still verify and read back whole.
func TestGCKeepsFilesOfEveryHeight(t *testing.T) {
	dir := t.TempDir()
	st, err := blockstore.Open(filepath.Join(dir, "blocks"), filepath.Join(dir, "meta.db"))
	require.NoError(t, err)
	t.Cleanup(func() { require.NoError(t, st.Close()) })
	ctx := t.Context()
	s := testSecrets(1)

	cs := dag.MinChunkSize
	opt := dag.AddOptions{ChunkSize: cs, Fanout: 2}
	type file struct {
		data []byte
		a    *dag.Added
	}
	var pinned []file
	// 2 chunks: height 0; 3: height 1; 5: height 2; 9: height 3.
	for i, chunks := range []int{2, 3, 5, 9} {
		data := randomBytes(chunks*cs-i, uint64(100+i))
		a, err := dag.Add(ctx, bytes.NewReader(data), dag.Meta{Name: "f"}, s, st, opt)
		require.NoError(t, err)
		require.NoError(t, st.Pin(ctx, a.Root, "owner"))
		pinned = append(pinned, file{data, a})
	}
	before, err := st.Stat(ctx)
	require.NoError(t, err)
	garbage, err := dag.Add(ctx, bytes.NewReader(randomBytes(5*cs+1, 99)), dag.Meta{Name: "g"}, s, st, opt)
	require.NoError(t, err)

	res, err := st.GC(ctx, dag.Links, blockstore.WithLeaves(dag.LinksAreLeaves))
	require.NoError(t, err)
	require.Equal(t, blockstore.GCResult{Removed: garbage.Blocks, Freed: garbage.Bytes}, res)
	after, err := st.Stat(ctx)
	require.NoError(t, err)
	require.Equal(t, before, after)

	rep, err := st.Verify(ctx, dag.Links)
	require.NoError(t, err)
	require.Empty(t, rep.Missing)
	require.Empty(t, rep.Corrupt)
	for _, f := range pinned {
		of, err := dag.OpenOwned(ctx, st, f.a.Root, s)
		require.NoError(t, err)
		var out bytes.Buffer
		_, err = of.WriteTo(ctx, &out, st, dag.ReadOptions{})
		require.NoError(t, err)
		require.True(t, bytes.Equal(f.data, out.Bytes()), "file of %d bytes reads back other bytes after GC", len(f.data))
	}
}

// cancelReader reads from r and cancels its context once n bytes are read.
type cancelReader struct {
	r      io.Reader
	n      int
	cancel context.CancelFunc
}

func (c *cancelReader) Read(p []byte) (int, error) {
	k, err := c.r.Read(p)
	if c.n -= k; c.n <= 0 {
		c.cancel()
	}
	return k, err
}

// TestCancelledAddLeavesNoTempFiles: an add cancelled part way through
// (Ctrl-C, a closed API request) fails, leaves no file, and removes the
// temporary files of the blocks it had staged but not committed, at every
// point it may be stopped at.
func TestCancelledAddLeavesNoTempFiles(t *testing.T) {
	dir := t.TempDir()
	blocks := filepath.Join(dir, "blocks")
	st, err := blockstore.Open(blocks, filepath.Join(dir, "meta.db"))
	require.NoError(t, err)
	t.Cleanup(func() { require.NoError(t, st.Close()) })
	s := testSecrets(1)
	cs := dag.MinChunkSize
	data := randomBytes(160*cs, 160) // 40 MiB: more than one commit batch
	for _, stopAt := range []int{cs / 2, 5 * cs, 20*cs + 1, 100 * cs, 130 * cs} {
		ctx, cancel := context.WithCancel(t.Context())
		r := &cancelReader{r: bytes.NewReader(data), n: stopAt, cancel: cancel}
		_, err := dag.Add(ctx, r, dag.Meta{Name: "x"}, s, st, dag.AddOptions{ChunkSize: cs})
		cancel()
		require.ErrorIs(t, err, context.Canceled, "add stopped after %d bytes", stopAt)
		var temps []string
		require.NoError(t, filepath.WalkDir(blocks, func(p string, d fs.DirEntry, err error) error {
			if err == nil && strings.HasPrefix(d.Name(), ".tmp-") {
				temps = append(temps, p)
			}
			return err
		}))
		require.Empty(t, temps, "temporary files left by an add stopped after %d bytes", stopAt)
	}
	// What was committed is unpinned garbage; no root is among it.
	for c, err := range st.AllKeys(t.Context()) {
		require.NoError(t, err)
		b, err := st.Get(t.Context(), c)
		require.NoError(t, err)
		kind, err := dag.BlockKind(b)
		require.NoError(t, err)
		require.NotEqual(t, dag.KindRoot, kind, "a cancelled add stored root %s", c)
	}
}
