package blockstore_test

import (
	"strings"
	"testing"

	"github.com/ipfs/go-cid"

	"github.com/casd/casd/blockstore"
	"github.com/casd/casd/blockstore/blockstoretest"
)

// usageClass sorts reasons as node does: own, then held for others.
func usageClass(reason string) int {
	switch {
	case reason == "owner":
		return 0
	case strings.HasPrefix(reason, "replica:"):
		return 1
	}
	return -1
}

func sizeOfBlocks(bs ...blockstore.Block) int64 {
	var n int64
	for _, b := range bs {
		n += int64(len(b.Data))
	}
	return n
}

// TestUsageCountsEachBlockOnce: a block shared by an own file and a
// replica counts as own, even when the replica was pinned first; a block
// shared by two replicas counts once; what only an uncounted pin or no pin
// reaches is in no class; a chunk spared reading by WithLeaves is still
// sized; a missing block counts 0.
func TestUsageCountsEachBlockOnce(t *testing.T) {
	s := newStore(t)
	ctx := t.Context()
	shared := blockstoretest.NewBlock([]byte("shared by own and replica"))
	both := blockstoretest.NewBlock([]byte("shared by two replicas, 40 bytes......"))
	ownLeaf := blockstoretest.NewBlock([]byte("own only"))
	repLeaf := blockstoretest.NewBlock([]byte("replica only, longer than the rest"))
	missing := blockstoretest.NewBlock([]byte("never stored"))
	own := blockstoretest.Node(shared.Cid, ownLeaf.Cid)
	rep1 := blockstoretest.Node(shared.Cid, both.Cid, repLeaf.Cid, missing.Cid)
	rep2 := blockstoretest.Node(both.Cid)
	other := blockstoretest.NewBlock([]byte("pinned for an uncounted reason"))
	loose := blockstoretest.NewBlock([]byte("pinned by nobody"))
	blockstoretest.MustPut(t, s, shared, both, ownLeaf, repLeaf, own, rep1, rep2, other, loose)
	for _, p := range []struct {
		root   cid.Cid
		reason string
	}{{rep1.Cid, "replica:k1"}, {rep2.Cid, "replica:k2"}, {own.Cid, "owner"}, {other.Cid, "cache"}} {
		if err := s.Pin(ctx, p.root, p.reason); err != nil {
			t.Fatal(err)
		}
	}
	wantOwn := sizeOfBlocks(own, shared, ownLeaf)
	wantOffered := sizeOfBlocks(rep1, rep2, both, repLeaf)
	nodes := map[cid.Cid]bool{own.Cid: true, rep1.Cid: true, rep2.Cid: true}
	leaves := func(c cid.Cid, _ []byte) bool { return nodes[c] }
	for _, opts := range [][]blockstore.GCOption{nil, {blockstore.WithLeaves(leaves)}} {
		got, err := s.Usage(ctx, blockstoretest.Links, usageClass, 2, opts...)
		if err != nil {
			t.Fatalf("Usage: %v", err)
		}
		if len(got) != 2 || got[0] != wantOwn || got[1] != wantOffered {
			t.Fatalf("Usage (%d options) = %v; want [%d %d]", len(opts), got, wantOwn, wantOffered)
		}
	}
}

// TestUsageLeafThenInner: a block that a lower class reaches only as a
// leaf is that class's, and its children, which that class does not
// reach, are the class that walks it as an inner block.
func TestUsageLeafThenInner(t *testing.T) {
	s := newStore(t)
	ctx := t.Context()
	deep := blockstoretest.NewBlock([]byte("under the inner node"))
	inner := blockstoretest.Node(deep.Cid)
	ownRoot := blockstoretest.Node(inner.Cid) // claims inner is a leaf
	// A different root (a missing second child) that walks inner.
	repRoot := blockstoretest.Node(inner.Cid, blockstoretest.NewBlock([]byte("x")).Cid)
	blockstoretest.MustPut(t, s, deep, inner, ownRoot, repRoot)
	if err := s.Pin(ctx, ownRoot.Cid, "owner"); err != nil {
		t.Fatal(err)
	}
	if err := s.Pin(ctx, repRoot.Cid, "replica:k1"); err != nil {
		t.Fatal(err)
	}
	leaves := func(c cid.Cid, _ []byte) bool { return c.Equals(ownRoot.Cid) }
	got, err := s.Usage(ctx, blockstoretest.Links, usageClass, 2, blockstore.WithLeaves(leaves))
	if err != nil {
		t.Fatal(err)
	}
	if want := []int64{sizeOfBlocks(ownRoot, inner), sizeOfBlocks(repRoot, deep)}; got[0] != want[0] || got[1] != want[1] {
		t.Fatalf("Usage = %v; want %v", got, want)
	}
}
