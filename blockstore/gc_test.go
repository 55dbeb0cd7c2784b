package blockstore_test

import (
	"testing"

	"github.com/ipfs/go-cid"

	"github.com/casd/casd/blockstore"
	"github.com/casd/casd/blockstore/blockstoretest"
)

// TestGCWithLeavesDoesNotReadLeaves: with WithLeaves, GC marks the children
// of a block whose children are leaves without reading them. The leaf here
// is one the LinkFunc cannot parse, so reading it would fail the GC.
func TestGCWithLeavesDoesNotReadLeaves(t *testing.T) {
	s := newStore(t)
	unparsable := blockstoretest.NewBlock([]byte("blockstoretest-node\nnot a CID"))
	parent := blockstoretest.Node(unparsable.Cid)
	stray := blockstoretest.NewBlock([]byte("nobody pins me"))
	blockstoretest.MustPut(t, s, unparsable, parent, stray)
	if err := s.Pin(t.Context(), parent.Cid, "test"); err != nil {
		t.Fatal(err)
	}

	if _, err := s.GC(t.Context(), blockstoretest.Links); err == nil {
		t.Fatal("GC without leaves read the unparsable leaf and still succeeded")
	}
	leaves := func(c cid.Cid, _ []byte) bool { return c.Equals(parent.Cid) }
	res, err := s.GC(t.Context(), blockstoretest.Links, blockstore.WithLeaves(leaves))
	if err != nil {
		t.Fatalf("GC with leaves: %v", err)
	}
	if res.Removed != 1 {
		t.Fatalf("removed %d blocks, want only the stray one", res.Removed)
	}
	for _, b := range []blockstore.Block{unparsable, parent} {
		if ok, err := s.Has(t.Context(), b.Cid); err != nil || !ok {
			t.Fatalf("pinned block %s gone after GC (%v)", b.Cid, err)
		}
	}
}
