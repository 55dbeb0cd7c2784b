package dag_test

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"path/filepath"
	"slices"
	"testing"

	"github.com/ipfs/go-cid"
	"github.com/stretchr/testify/require"

	"github.com/casd/casd/blockstore"
	"github.com/casd/casd/blockstore/blockstoretest"
	"github.com/casd/casd/dag"
	"github.com/casd/casd/dag/dagtest"
)

// TestGCKeepsFileUnderForgedLeafRoot mounts issue "Hostile peers", point
// 1, with a real file: a stranger stores (and so pins) a root of height 0
// whose one "chunk" is an inner manifest node of someone's file. GC reads
// the forged root's children as chunks, so it marks that node live without
// reading it; the honest root must still get the node's subtree read and
// kept, and the file must read back whole and verify clean.
func TestGCKeepsFileUnderForgedLeafRoot(t *testing.T) {
	dir := t.TempDir()
	st, err := blockstore.Open(filepath.Join(dir, "blocks"), filepath.Join(dir, "meta.db"))
	require.NoError(t, err)
	t.Cleanup(func() { require.NoError(t, st.Close()) })
	ctx := t.Context()
	s := testSecrets(1)

	// Nine chunks at fanout 2: a tree of height 3. The victim is a node of
	// height 1, two levels under the root: GC walks level by level, so it
	// meets the victim as the forged root's "chunk" first, whatever the
	// order of the two pins.
	data := randomBytes(9*dag.MinChunkSize-3, 41)
	a, err := dag.Add(ctx, bytes.NewReader(data), dag.Meta{Name: "victim"}, s, st, smallTree)
	require.NoError(t, err)
	require.NoError(t, st.Pin(ctx, a.Root, "owner"))
	var nodes []cid.Cid // in walk order: heights 2, 1, 0, ...
	require.NoError(t, dag.Walk(ctx, st, a.Root, func(c cid.Cid, kind byte) error {
		if kind == dag.KindNode {
			nodes = append(nodes, c)
		}
		return nil
	}))
	inner := nodes[1]
	innerData, err := st.Get(ctx, inner)
	require.NoError(t, err)
	require.False(t, dag.LinksAreLeaves(inner, innerData), "the victim node must have nodes under it")

	forged := blockstoretest.NewBlock(dag.SealManifest(dag.KindRoot, 0, []cid.Cid{inner}))
	require.True(t, dag.LinksAreLeaves(forged.Cid, forged.Data))
	require.NoError(t, st.Put(ctx, forged))
	require.NoError(t, st.Pin(ctx, forged.Cid, "replica"))

	res, err := st.GC(ctx, dag.Links, blockstore.WithLeaves(dag.LinksAreLeaves))
	require.NoError(t, err)
	require.Equal(t, blockstore.GCResult{}, res, "GC removed blocks that a pin reaches")

	f, err := dag.OpenOwned(ctx, st, a.Root, s)
	require.NoError(t, err)
	var out bytes.Buffer
	_, err = f.WriteTo(ctx, &out, st, dag.ReadOptions{})
	require.NoError(t, err)
	require.True(t, bytes.Equal(data, out.Bytes()), "file reads back other bytes after GC")
	rep, err := st.Verify(ctx, dag.Links)
	require.NoError(t, err)
	require.Empty(t, rep.Missing)
	require.Empty(t, rep.Corrupt)
	require.Equal(t, a.Blocks+1, rep.Checked)
}

// bombHeight is the height of the DAG bomb: the most a manifest may state.
const bombHeight = 8

// dagBomb stores the DAG bomb of issue "Hostile peers", point 2: a root of
// height 8 whose every level links 1,024 times to one block of the level
// below, down to one chunk (not stored: walks do not fetch chunks). Walked
// link by link it is 1024^9 steps; it has 10 distinct blocks, which it
// returns root first, then in walk order.
func dagBomb(t testing.TB) (*dagtest.MemStore, []cid.Cid) {
	t.Helper()
	st := dagtest.NewMemStore()
	below := blockstoretest.NewBlock([]byte("the one chunk")).Cid
	order := []cid.Cid{below}
	for h := range bombHeight + 1 {
		kind := dag.KindNode
		if h == bombHeight {
			kind = dag.KindRoot
		}
		b := blockstoretest.NewBlock(dag.SealManifest(kind, h, slices.Repeat([]cid.Cid{below}, dag.DefaultFanout)))
		require.NoError(t, st.PutMany(t.Context(), []blockstore.Block{b}))
		below = b.Cid
		order = append(order, below)
	}
	slices.Reverse(order)
	return st, order
}

// TestWalkDAGBomb: Walk visits each distinct block of the bomb once, in
// order (root, the nodes from the top down, the chunk), with its kind. A
// walk that calls back more often fails at once instead of running on.
func TestWalkDAGBomb(t *testing.T) {
	st, want := dagBomb(t)
	var got []cid.Cid
	kinds := map[byte]int{}
	err := dag.Walk(t.Context(), st, want[0], func(c cid.Cid, kind byte) error {
		if len(got) == len(want) {
			return fmt.Errorf("callback %d: more calls than the bomb has distinct blocks", len(got)+1)
		}
		got = append(got, c)
		kinds[kind]++
		return nil
	})
	require.NoError(t, err)
	require.Equal(t, want, got)
	require.Equal(t, map[byte]int{dag.KindRoot: 1, dag.KindNode: bombHeight, dag.KindChunk: 1}, kinds)
}

// TestWalkStopsWithContext: a walk ends with ctx's error once ctx ends,
// without another callback.
func TestWalkStopsWithContext(t *testing.T) {
	st, want := dagBomb(t)
	ctx, cancel := context.WithCancel(t.Context())
	defer cancel()
	calls := 0
	err := dag.Walk(ctx, st, want[0], func(cid.Cid, byte) error {
		calls++
		if calls > 1 {
			return errors.New("called back after its context ended")
		}
		cancel()
		return nil
	})
	require.ErrorIs(t, err, context.Canceled)
	require.Equal(t, 1, calls)

	require.ErrorIs(t, dag.Walk(ctx, st, want[0], func(cid.Cid, byte) error {
		t.Fatal("called back under an ended context")
		return nil
	}), context.Canceled)
}

// TestWalkBound: a walk reaching more distinct blocks than its bound ends
// with ErrTooManyBlocks after exactly that many callbacks; at the bound it
// succeeds. The bound counts distinct blocks, so an honest file of n
// blocks walks at a bound of n.
func TestWalkBound(t *testing.T) {
	st, want := dagBomb(t)
	calls := 0
	count := func(cid.Cid, byte) error {
		if calls++; calls > 1000 {
			return errors.New("more callbacks than any walk here needs")
		}
		return nil
	}
	err := dag.Walk(t.Context(), st, want[0], count, dag.WithMaxBlocks(4))
	require.ErrorIs(t, err, dag.ErrTooManyBlocks)
	require.Equal(t, 4, calls)
	calls = 0
	require.NoError(t, dag.Walk(t.Context(), st, want[0], count, dag.WithMaxBlocks(len(want))))
	require.Equal(t, len(want), calls)

	mem := dagtest.NewMemStore()
	a := add(t, mem, randomBytes(5*dag.MinChunkSize, 6), "x", testSecrets(1), smallTree)
	calls = 0
	require.NoError(t, dag.Walk(t.Context(), mem, a.Root, count, dag.WithMaxBlocks(a.Blocks)))
	require.Equal(t, a.Blocks, calls)
	require.ErrorIs(t, dag.Walk(t.Context(), mem, a.Root, count, dag.WithMaxBlocks(a.Blocks-1)), dag.ErrTooManyBlocks)
}

// TestWalkRepeatedChunks: a file whose chunks repeat (convergent keys give
// equal chunks one CID, and equal subtrees one node) walks each distinct
// block once, as many as the store holds.
func TestWalkRepeatedChunks(t *testing.T) {
	st := dagtest.NewMemStore()
	a := add(t, st, make([]byte, 9*dag.MinChunkSize), "zeros", testSecrets(1), smallTree)
	seen := map[cid.Cid]bool{}
	require.NoError(t, dag.Walk(t.Context(), st, a.Root, func(c cid.Cid, _ byte) error {
		require.False(t, seen[c], "block %s walked twice", c)
		seen[c] = true
		return nil
	}))
	require.Equal(t, st.Len(), len(seen))
}
