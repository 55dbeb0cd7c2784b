package dag_test

import (
	"bytes"
	"context"
	"errors"
	"io"
	"math/rand/v2"
	"testing"

	"github.com/ipfs/go-cid"
	"github.com/stretchr/testify/require"

	"github.com/casd/casd/crypt"
	"github.com/casd/casd/dag"
	"github.com/casd/casd/dag/dagtest"
)

func testSecrets(seed byte) *crypt.Secrets {
	s := &crypt.Secrets{}
	for i := range s.Master {
		s.Master[i] = seed
		s.Convergence[i] = seed + 1
	}
	return s
}

func randomBytes(n int, seed uint64) []byte {
	r := rand.New(rand.NewPCG(seed, seed^0x9e3779b97f4a7c15))
	b := make([]byte, n)
	for i := range b {
		b[i] = byte(r.Uint32())
	}
	return b
}

// smallTree makes trees of height 2 from a handful of chunks.
var smallTree = dag.AddOptions{ChunkSize: dag.MinChunkSize, Fanout: 2}

func add(t testing.TB, st *dagtest.MemStore, data []byte, name string, s *crypt.Secrets, opt dag.AddOptions) *dag.Added {
	t.Helper()
	a, err := dag.Add(t.Context(), bytes.NewReader(data), dag.Meta{Name: name, Mode: 0o640}, s, st, opt)
	require.NoError(t, err)
	return a
}

func readAll(t testing.TB, st *dagtest.MemStore, f *dag.File) ([]byte, error) {
	t.Helper()
	var out bytes.Buffer
	_, err := f.WriteTo(t.Context(), &out, st, dag.ReadOptions{Window: 3})
	return out.Bytes(), err
}

func TestRoundTrip(t *testing.T) {
	cs := dag.MinChunkSize
	cases := []struct {
		name string
		size int
		opt  dag.AddOptions
	}{
		{"empty", 0, dag.AddOptions{}},
		{"one byte", 1, dag.AddOptions{}},
		{"one pad unit", 4096, dag.AddOptions{}},
		{"exactly one chunk", dag.DefaultChunkSize, dag.AddOptions{}},
		{"one chunk plus one byte", dag.DefaultChunkSize + 1, dag.AddOptions{}},
		{"tree of height 1", 3*cs + 7, smallTree},
		{"tree of height 3", 9*cs - 1, smallTree},
		{"full fanout", 4 * cs, dag.AddOptions{ChunkSize: cs, Fanout: 4}},
		{"one worker", 5*cs + 3, dag.AddOptions{ChunkSize: cs, Workers: 1}},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			st := dagtest.NewMemStore()
			s := testSecrets(1)
			data := randomBytes(tc.size, uint64(tc.size))
			a := add(t, st, data, "relevé de compte ü 日本.pdf", s, tc.opt)
			require.EqualValues(t, tc.size, a.Meta.Size)

			f, err := dag.OpenOwned(t.Context(), st, a.Root, s)
			require.NoError(t, err)
			require.Equal(t, "relevé de compte ü 日本.pdf", f.Meta.Name)
			require.Equal(t, "application/pdf", f.Meta.MediaType)
			require.EqualValues(t, 0o640, f.Meta.Mode)
			require.EqualValues(t, tc.size, f.Meta.Size)
			require.Equal(t, a.Key, f.Key)
			got, err := readAll(t, st, f)
			require.NoError(t, err)
			require.True(t, bytes.Equal(data, got), "plaintext differs")

			f2, err := dag.OpenFile(t.Context(), st, a.Root, a.Key)
			require.NoError(t, err)
			got, err = readAll(t, st, f2)
			require.NoError(t, err)
			require.True(t, bytes.Equal(data, got))
		})
	}
}

func TestAddIsConvergent(t *testing.T) {
	st := dagtest.NewMemStore()
	s := testSecrets(1)
	data := randomBytes(5*dag.MinChunkSize+11, 7)
	a1 := add(t, st, data, "f.bin", s, smallTree)
	n := st.Len()
	a2 := add(t, st, data, "f.bin", s, smallTree)
	require.Equal(t, a1.Root, a2.Root)
	require.Equal(t, n, st.Len(), "re-adding stored new blocks")

	// Another node's secrets give unrelated blocks.
	a3 := add(t, st, data, "f.bin", testSecrets(9), smallTree)
	require.NotEqual(t, a1.Root, a3.Root)
	require.Equal(t, 2*n, st.Len())
}

func TestOpenErrors(t *testing.T) {
	st := dagtest.NewMemStore()
	s := testSecrets(1)
	a := add(t, st, randomBytes(3*dag.MinChunkSize, 3), "x", s, smallTree)
	var chunk, node cid.Cid
	require.NoError(t, dag.Walk(t.Context(), st, a.Root, func(c cid.Cid, kind byte) error {
		switch kind {
		case dag.KindChunk:
			chunk = c
		case dag.KindNode:
			node = c
		}
		return nil
	}))
	other := testSecrets(5)
	var wrongKey crypt.Key
	wrongKey[0] = 1

	cases := []struct {
		name string
		open func() error
		want error
	}{
		{"not owner", func() error { _, err := dag.OpenOwned(t.Context(), st, a.Root, other); return err }, dag.ErrNeedCapability},
		{"wrong key", func() error { _, err := dag.OpenFile(t.Context(), st, a.Root, wrongKey); return err }, dag.ErrUnauthenticated},
		{"chunk CID", func() error { _, err := dag.OpenOwned(t.Context(), st, chunk, s); return err }, dag.ErrNotFile},
		{"node CID", func() error { _, err := dag.OpenOwned(t.Context(), st, node, s); return err }, dag.ErrNotFile},
		{"unknown CID", func() error {
			_, err := dag.OpenOwned(t.Context(), st, cidOf(t, []byte("nothing")), s)
			return err
		}, errNotFound},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			require.ErrorIs(t, tc.open(), tc.want)
		})
	}
}

func TestCorruptBlocksAreRejected(t *testing.T) {
	cases := []struct {
		name   string
		kind   byte
		mangle func([]byte) []byte
	}{
		{"flipped chunk byte", dag.KindChunk, func(b []byte) []byte { b[len(b)/2] ^= 1; return b }},
		{"truncated chunk", dag.KindChunk, func(b []byte) []byte { return b[:len(b)-100] }},
		{"flipped node byte", dag.KindNode, func(b []byte) []byte { b[len(b)-1] ^= 0x80; return b }},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			st := dagtest.NewMemStore()
			s := testSecrets(1)
			a := add(t, st, randomBytes(4*dag.MinChunkSize, 4), "x", s, smallTree)
			var victim cid.Cid
			require.NoError(t, dag.Walk(t.Context(), st, a.Root, func(c cid.Cid, kind byte) error {
				if kind == tc.kind && !victim.Defined() {
					victim = c
				}
				return nil
			}))
			data, err := st.Get(t.Context(), victim)
			require.NoError(t, err)
			st.Set(victim, tc.mangle(data))

			f, err := dag.OpenOwned(t.Context(), st, a.Root, s)
			require.NoError(t, err)
			_, err = readAll(t, st, f)
			require.Error(t, err)
			require.True(t, dag.IsAuthError(err), "want an authentication error, got %v", err)
		})
	}
}

func TestNoPlaintextInBlocks(t *testing.T) {
	st := dagtest.NewMemStore()
	marker := []byte("MARKER-7f3a9c1e-do-not-leak")
	data := bytes.Repeat(marker, 3*dag.MinChunkSize/len(marker))
	add(t, st, data, "secret-"+string(marker)+".txt", testSecrets(1), smallTree)
	for c, b := range st.All() {
		require.False(t, bytes.Contains(b, marker), "block %s leaks the marker", c)
		require.False(t, bytes.Contains(b, marker[:12]), "block %s leaks part of the marker", c)
	}
}

func TestWalkListsEveryBlockRootFirst(t *testing.T) {
	st := dagtest.NewMemStore()
	a := add(t, st, randomBytes(5*dag.MinChunkSize, 5), "x", testSecrets(1), smallTree)
	var got []cid.Cid
	kinds := map[byte]int{}
	require.NoError(t, dag.Walk(t.Context(), st, a.Root, func(c cid.Cid, kind byte) error {
		got = append(got, c)
		kinds[kind]++
		return nil
	}))
	require.Equal(t, a.Root, got[0])
	require.Equal(t, st.Len(), len(got))
	require.Equal(t, a.Blocks, len(got))
	require.Equal(t, 5, kinds[dag.KindChunk])
	require.Equal(t, 1, kinds[dag.KindRoot])
	// Five chunks at fanout 2: 3 nodes of height 0, 2 of height 1, root of height 2.
	require.Equal(t, 5, kinds[dag.KindNode])
	for _, c := range got {
		data, err := st.Get(t.Context(), c)
		require.NoError(t, err)
		links, err := dag.Links(c, data)
		require.NoError(t, err)
		if kind, _ := dag.BlockKind(data); kind == dag.KindChunk {
			require.Empty(t, links)
			require.True(t, dag.LinksAreLeaves(c, data))
		} else {
			require.NotEmpty(t, links)
			childData, err := st.Get(t.Context(), links[0])
			require.NoError(t, err)
			childKind, _ := dag.BlockKind(childData)
			require.Equal(t, childKind == dag.KindChunk, dag.LinksAreLeaves(c, data), "block %s", c)
		}
	}
}

func TestAddRejectsBadNames(t *testing.T) {
	for _, name := range []string{"", ".", "..", "a/b", "nul\x00", string([]byte{0xff, 0xfe})} {
		t.Run(name, func(t *testing.T) {
			_, err := dag.Add(t.Context(), bytes.NewReader(nil), dag.Meta{Name: name}, testSecrets(1), dagtest.NewMemStore(), dag.AddOptions{})
			require.ErrorIs(t, err, dag.ErrBadName)
		})
	}
}

type failingReader struct{ n int }

func (r *failingReader) Read(p []byte) (int, error) {
	if r.n <= 0 {
		return 0, errors.New("disk on fire")
	}
	n := min(len(p), r.n)
	r.n -= n
	return n, nil
}

func TestAddStopsOnReadErrorWithoutRoot(t *testing.T) {
	st := dagtest.NewMemStore()
	_, err := dag.Add(t.Context(), &failingReader{n: 3 * dag.MinChunkSize}, dag.Meta{Name: "x"}, testSecrets(1), st, smallTree)
	require.ErrorContains(t, err, "disk on fire")
	for c, b := range st.All() {
		kind, err := dag.BlockKind(b)
		require.NoError(t, err)
		require.NotEqual(t, dag.KindRoot, kind, "a failed add wrote root %s", c)
	}
}

func TestAddHonoursCancellation(t *testing.T) {
	ctx, cancel := context.WithCancel(t.Context())
	cancel()
	_, err := dag.Add(ctx, io.LimitReader(zeroReader{}, 64<<20), dag.Meta{Name: "x"}, testSecrets(1), dagtest.NewMemStore(), dag.AddOptions{})
	require.ErrorIs(t, err, context.Canceled)
}

type zeroReader struct{}

func (zeroReader) Read(p []byte) (int, error) { clear(p); return len(p), nil }
