package blockstore_test

import (
	"errors"
	"sync/atomic"
	"testing"

	"github.com/ipfs/go-cid"

	"github.com/casd/casd/blockstore"
	"github.com/casd/casd/blockstore/blockstoretest"
)

// TestGCLeafClaimDoesNotHideInnerBlocks mounts the attack of issue
// "Hostile peers", point 1: any peer may store a pinned root, and a root
// that calls an inner block of someone's file a leaf must not make GC skip
// that block's children. The honest file is root -> mid -> {inner -> {a,
// b}, c}; the hostile root reaches inner in one step, as a leaf, before
// the honest path reaches it as an inner block. GC must keep every block
// of both pins and remove only the stray one.
func TestGCLeafClaimDoesNotHideInnerBlocks(t *testing.T) {
	s := newStore(t)
	ctx := t.Context()
	a := blockstoretest.NewBlock([]byte("chunk a"))
	b := blockstoretest.NewBlock([]byte("chunk b"))
	inner := blockstoretest.Node(a.Cid, b.Cid)
	c := blockstoretest.NewBlock([]byte("chunk c"))
	mid := blockstoretest.Node(inner.Cid, c.Cid)
	root := blockstoretest.Node(mid.Cid)
	hostile := blockstoretest.Node(inner.Cid)
	stray := blockstoretest.NewBlock([]byte("nobody pins me"))
	blockstoretest.MustPut(t, s, a, b, c, inner, mid, root, hostile, stray)
	for _, r := range []cid.Cid{root.Cid, hostile.Cid} {
		if err := s.Pin(ctx, r, "test"); err != nil {
			t.Fatal(err)
		}
	}
	// inner's children are leaves, and the hostile root says its own are.
	leaves := func(c cid.Cid, _ []byte) bool { return c.Equals(inner.Cid) || c.Equals(hostile.Cid) }

	res, err := s.GC(ctx, blockstoretest.Links, blockstore.WithLeaves(leaves))
	if err != nil {
		t.Fatalf("GC: %v", err)
	}
	if want := (blockstore.GCResult{Removed: 1, Freed: int64(len(stray.Data))}); res != want {
		t.Errorf("GC = %+v; want %+v (only the stray block)", res, want)
	}
	for _, blk := range []blockstore.Block{a, b, c, inner, mid, root, hostile} {
		if ok, err := s.Has(ctx, blk.Cid); err != nil || !ok {
			t.Errorf("pinned block %s gone after GC (%v)", blk.Cid, err)
		}
	}
	rep, err := s.Verify(ctx, blockstoretest.Links)
	if err != nil || rep.Checked != 7 || len(rep.Missing)+len(rep.Corrupt) != 0 {
		t.Fatalf("Verify after GC = %+v, %v; want 7 blocks, all good", rep, err)
	}
}

// TestGCWalkSharedChildrenOnce: blocks that link many times to one child
// (a "DAG bomb") cost GC one read per distinct block, and a walk that
// reaches more CIDs than its bound fails GC, which then removes nothing.
func TestGCWalkSharedChildrenOnce(t *testing.T) {
	s := newStore(t)
	ctx := t.Context()
	leaf := blockstoretest.NewBlock([]byte("the one leaf"))
	blocks := []blockstore.Block{leaf}
	below := leaf.Cid
	for range 6 {
		links := make([]cid.Cid, 64)
		for i := range links {
			links[i] = below
		}
		n := blockstoretest.Node(links...)
		blocks = append(blocks, n)
		below = n.Cid
	}
	blockstoretest.MustPut(t, s, blocks...)
	if err := s.Pin(ctx, below, "hostile"); err != nil {
		t.Fatal(err)
	}
	var calls atomic.Int64 // GC lists links from several goroutines
	links := func(c cid.Cid, data []byte) ([]cid.Cid, error) {
		calls.Add(1)
		return blockstoretest.Links(c, data)
	}
	if res, err := s.GC(ctx, links); err != nil || res.Removed != 0 {
		t.Fatalf("GC = %+v, %v; want nothing removed", res, err)
	}
	if got := calls.Load(); got != int64(len(blocks)) {
		t.Errorf("GC listed links %d times; want once per distinct block (%d)", got, len(blocks))
	}
	missing := blockstoretest.Node(blockstoretest.NewBlock([]byte("absent 1")).Cid, blockstoretest.NewBlock([]byte("absent 2")).Cid)
	blockstoretest.MustPut(t, s, missing)
	if err := s.Pin(ctx, missing.Cid, "hostile"); err != nil {
		t.Fatal(err)
	}
	if _, err := s.GC(ctx, links, blockstore.WithMaxMissing(1)); !errors.Is(err, blockstore.ErrTooManyBlocks) {
		t.Fatalf("GC past its bound: %v; want ErrTooManyBlocks", err)
	}
	if _, err := s.GC(ctx, links, blockstore.WithMaxMissing(2)); err != nil {
		t.Fatalf("GC at its bound: %v", err)
	}
}
