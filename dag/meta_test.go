package dag_test

import (
	"bytes"
	"context"
	"fmt"
	"io/fs"
	"runtime"
	"strings"
	"testing"
	"time"

	"github.com/ipfs/go-cid"
	"github.com/stretchr/testify/require"

	"github.com/casd/casd/blockstore"
	"github.com/casd/casd/dag"
	"github.com/casd/casd/dag/dagtest"
)

// TestMediaType: the media type a file is stored with is the caller's if
// given, else guessed from the name's extension, else sniffed from the
// first bytes of the file (the first chunk, not a later one).
func TestMediaType(t *testing.T) {
	pdf := append([]byte("%PDF-1.7\n"), randomBytes(100, 1)...)
	html := []byte("<!DOCTYPE html><html><body>hi</body></html>")
	cs := dag.MinChunkSize
	bigPDF := append(bytes.Clone(pdf), randomBytes(3*cs, 2)...)                  // later chunks are noise
	bigNoise := append(randomBytes(cs, 3), append(bytes.Clone(pdf), html...)...) // looks like a PDF only later
	cases := []struct {
		name, given string
		data        []byte
		want        string
	}{
		{"report.pdf", "", nil, "application/pdf"},
		{"notes.txt", "", []byte("plain"), "text/plain; charset=utf-8"},
		{"noext", "", pdf, "application/pdf"},
		{"noext", "", html, "text/html; charset=utf-8"},
		{"noext big", "", bigPDF, "application/pdf"},
		{"noext noise", "", bigNoise, "application/octet-stream"},
		{"name wins.txt", "", pdf, "text/plain; charset=utf-8"},
		{"given.pdf", "application/x-mine", pdf, "application/x-mine"},
		{"given", "text/x-given", html, "text/x-given"},
		{"empty", "", nil, ""},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			st := dagtest.NewMemStore()
			s := testSecrets(1)
			a, err := dag.Add(t.Context(), bytes.NewReader(tc.data), dag.Meta{Name: tc.name, MediaType: tc.given}, s, st,
				dag.AddOptions{ChunkSize: cs})
			require.NoError(t, err)
			require.Equal(t, tc.want, a.Meta.MediaType)
			f, err := dag.OpenOwned(t.Context(), st, a.Root, s)
			require.NoError(t, err)
			require.Equal(t, tc.want, f.Meta.MediaType, "as the root records it")
		})
	}
}

// TestMetaRoundTrip: what the root seals about a file comes back exactly:
// every permission bit (and only those), chunk sizes at both ends of the
// range, and names of any length up to the limit, whatever padding the root
// body ends up with.
func TestMetaRoundTrip(t *testing.T) {
	type tc struct {
		name  string
		mode  fs.FileMode
		chunk int
		size  int
	}
	var cases []tc
	for _, mode := range []fs.FileMode{0, 0o777, 0o755 | fs.ModeSetuid | fs.ModeSticky, 0o600} {
		cases = append(cases, tc{"mode.bin", mode, dag.MinChunkSize, 10})
	}
	cases = append(cases,
		tc{"max chunk", 0o644, dag.MaxChunkSize, dag.MaxChunkSize + 1},
		tc{"min chunk", 0o644, dag.MinChunkSize, dag.MinChunkSize + 1},
	)
	// The root body is padded to a multiple of 512 bytes, with at least one
	// byte of padding: names whose length puts the body on every side of a
	// multiple of 512.
	for k := 1; k*512 <= 4096+512; k++ {
		for n := k*512 - 20; n <= k*512+4 && n <= 4096; n++ {
			cases = append(cases, tc{strings.Repeat("n", n), 0o640, dag.MinChunkSize, 0})
		}
	}
	for _, c := range cases {
		st := dagtest.NewMemStore()
		s := testSecrets(1)
		data := randomBytes(c.size, uint64(len(c.name)))
		a, err := dag.Add(t.Context(), bytes.NewReader(data), dag.Meta{Name: c.name, Mode: c.mode}, s, st,
			dag.AddOptions{ChunkSize: c.chunk})
		require.NoError(t, err, "name of %d bytes", len(c.name))
		f, err := dag.OpenOwned(t.Context(), st, a.Root, s)
		require.NoError(t, err, "name of %d bytes", len(c.name))
		require.Equal(t, dag.Meta{Name: c.name, Size: int64(c.size), Mode: c.mode.Perm(), ChunkSize: c.chunk, MediaType: a.Meta.MediaType}, f.Meta)
		got, err := readAll(t, st, f)
		require.NoError(t, err)
		require.True(t, bytes.Equal(data, got))
	}
	_, err := dag.Add(t.Context(), bytes.NewReader(nil), dag.Meta{Name: strings.Repeat("n", 4097)}, testSecrets(1), dagtest.NewMemStore(), dag.AddOptions{})
	require.ErrorIs(t, err, dag.ErrBadName, "a name over 4096 bytes")
}

// TestReadMissingBlock: a file with a block missing fails to read with an
// error that says so (ErrNotFound, which the CLI and API report as not
// found), not as corruption.
func TestReadMissingBlock(t *testing.T) {
	for _, kind := range []byte{dag.KindChunk, dag.KindNode} {
		t.Run(fmt.Sprint("kind ", kind), func(t *testing.T) {
			st := dagtest.NewMemStore()
			s := testSecrets(1)
			a := add(t, st, randomBytes(5*dag.MinChunkSize, 6), "x", s, smallTree)
			var victims []cid.Cid
			require.NoError(t, dag.Walk(t.Context(), st, a.Root, func(c cid.Cid, k byte) error {
				if k == kind {
					victims = append(victims, c)
				}
				return nil
			}))
			st.Delete(victims[len(victims)-1])
			f, err := dag.OpenOwned(t.Context(), st, a.Root, s)
			require.NoError(t, err)
			_, err = readAll(t, st, f)
			require.ErrorIs(t, err, blockstore.ErrNotFound)
			require.False(t, dag.IsAuthError(err), "a missing block is not corruption: %v", err)
		})
	}
}

func TestCheckChunkSize(t *testing.T) {
	for n := dag.MinChunkSize; n <= dag.MaxChunkSize; n *= 2 {
		require.NoError(t, dag.CheckChunkSize(n), "%d", n)
	}
	for _, n := range []int{0, -dag.MinChunkSize, dag.MinChunkSize / 2, dag.MinChunkSize + 1, dag.MinChunkSize * 3, dag.MaxChunkSize - 1, dag.MaxChunkSize * 2} {
		require.Error(t, dag.CheckChunkSize(n), "%d", n)
	}
}

// TestReadDefaultWindowOneCPU: the default read window works on a machine
// (or container) with a single CPU.
func TestReadDefaultWindowOneCPU(t *testing.T) {
	st := dagtest.NewMemStore()
	s := testSecrets(1)
	data := randomBytes(5*dag.MinChunkSize+3, 8)
	a := add(t, st, data, "x", s, smallTree)
	f, err := dag.OpenOwned(t.Context(), st, a.Root, s)
	require.NoError(t, err)

	defer runtime.GOMAXPROCS(runtime.GOMAXPROCS(1))
	ctx, cancel := context.WithTimeout(t.Context(), 5*time.Second)
	defer cancel()
	var out bytes.Buffer
	n, err := f.WriteTo(ctx, &out, st, dag.ReadOptions{})
	require.NoError(t, err)
	require.EqualValues(t, len(data), n)
	require.True(t, bytes.Equal(data, out.Bytes()))
}

// TestEveryTreeShape adds files of 1 to 17 chunks at fanout 2 (trees of
// height 0 to 4, each level full or not) through a plain BlockPutter, and
// checks that each reads back, that Walk finds every block written, and
// that progress rises with each stored batch and ends at the file's size.
func TestEveryTreeShape(t *testing.T) {
	cs := dag.MinChunkSize
	for chunks := 1; chunks <= 17; chunks++ {
		t.Run(fmt.Sprint(chunks), func(t *testing.T) {
			st := dagtest.NewMemStore()
			s := testSecrets(1)
			data := randomBytes((chunks-1)*cs+1+chunks, uint64(chunks))
			var progress []int64
			opt := dag.AddOptions{ChunkSize: cs, Fanout: 2, Progress: func(n int64) { progress = append(progress, n) }}
			a, err := dag.Add(t.Context(), bytes.NewReader(data), dag.Meta{Name: "x"}, s, st, opt)
			require.NoError(t, err)
			require.NotEmpty(t, progress)
			require.IsIncreasing(t, progress)
			require.EqualValues(t, len(data), progress[len(progress)-1])

			var walked int
			require.NoError(t, dag.Walk(t.Context(), st, a.Root, func(cid.Cid, byte) error { walked++; return nil }))
			require.Equal(t, a.Blocks, walked)
			require.Equal(t, st.Len(), walked)
			f, err := dag.OpenOwned(t.Context(), st, a.Root, s)
			require.NoError(t, err)
			got, err := readAll(t, st, f)
			require.NoError(t, err)
			require.True(t, bytes.Equal(data, got))
		})
	}
}
