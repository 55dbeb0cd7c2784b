package blockstore_test

import (
	"bytes"
	"fmt"
	"strings"
	"sync/atomic"
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

// TestGCWithLeavesKeepsDeepTrees: WithLeaves only spares GC reading the
// children of the blocks it names; a tree whose root is above that level
// (a file of more than one manifest block's worth of chunks) must keep every
// block. The LeafFunc knows the tree's shape, as dag's does from the height
// each manifest block states in the clear.
func TestGCWithLeavesKeepsDeepTrees(t *testing.T) {
	for _, depth := range []int{2, 3, 4} {
		t.Run(fmt.Sprintf("depth %d", depth), func(t *testing.T) {
			s := newStore(t)
			ctx := t.Context()
			rng := blockstoretest.NewRand(uint64(30 + depth))
			tree := blockstoretest.MakeTree(rng, depth, 3, 64)
			garbage := blockstoretest.MakeTree(rng, depth, 2, 64)
			blockstoretest.MustPut(t, s, tree.Blocks...)
			blockstoretest.MustPut(t, s, garbage.Blocks...)
			if err := s.Pin(ctx, tree.Root, "owner"); err != nil {
				t.Fatal(err)
			}
			// The blocks whose children are all leaves: the nodes just
			// above the leaves, in both trees.
			lowest := make(map[cid.Cid]bool)
			for _, tr := range []blockstoretest.Tree{tree, garbage} {
				for _, b := range tr.Blocks {
					children, err := blockstoretest.Links(b.Cid, b.Data)
					if err != nil {
						t.Fatal(err)
					}
					if len(children) > 0 && !isNode(children[0], tr) {
						lowest[b.Cid] = true
					}
				}
			}
			var asked atomic.Int32
			leaves := func(c cid.Cid, _ []byte) bool {
				asked.Add(1)
				return lowest[c]
			}

			res, err := s.GC(ctx, blockstoretest.Links, blockstore.WithLeaves(leaves))
			if err != nil {
				t.Fatalf("GC: %v", err)
			}
			var freed int64
			for _, b := range garbage.Blocks {
				freed += int64(len(b.Data))
			}
			if res.Removed != len(garbage.Blocks) || res.Freed != freed {
				t.Errorf("GC = %+v; want the %d unpinned blocks (%d bytes) removed", res, len(garbage.Blocks), freed)
			}
			for _, b := range tree.Blocks {
				got, err := s.Get(ctx, b.Cid)
				if err != nil || !bytes.Equal(got, b.Data) {
					t.Fatalf("pinned block %s after GC: %v", b.Cid, err)
				}
			}
			if asked.Load() == 0 {
				t.Fatal("GC never asked the LeafFunc")
			}
			rep, err := s.Verify(ctx, blockstoretest.Links)
			if err != nil || rep.Checked != len(tree.Blocks) || len(rep.Missing)+len(rep.Corrupt) != 0 {
				t.Fatalf("Verify after GC = %+v, %v; want the %d blocks of the tree, all good", rep, err, len(tree.Blocks))
			}
		})
	}
}

// isNode reports whether c is an interior node of tr.
func isNode(c cid.Cid, tr blockstoretest.Tree) bool {
	for _, b := range tr.Blocks {
		if b.Cid.Equals(c) {
			children, _ := blockstoretest.Links(b.Cid, b.Data)
			return len(children) > 0
		}
	}
	return false
}

// TestGCEmptyBlock: an empty block is a block like any other: kept when
// pinned, removed and counted when not.
func TestGCEmptyBlock(t *testing.T) {
	s := newStore(t)
	ctx := t.Context()
	empty := blockstoretest.NewBlock(nil)
	parent := blockstoretest.Node(empty.Cid)
	blockstoretest.MustPut(t, s, parent, empty)
	if err := s.Pin(ctx, parent.Cid, "owner"); err != nil {
		t.Fatal(err)
	}
	if res, err := s.GC(ctx, blockstoretest.Links); err != nil || res != (blockstore.GCResult{}) {
		t.Fatalf("GC = %+v, %v; want nothing removed", res, err)
	}
	if err := s.Unpin(ctx, parent.Cid, "owner"); err != nil {
		t.Fatal(err)
	}
	res, err := s.GC(ctx, blockstoretest.Links)
	if want := (blockstore.GCResult{Removed: 2, Freed: int64(len(parent.Data))}); err != nil || res != want {
		t.Fatalf("GC = %+v, %v; want %+v", res, err, want)
	}
	if st, err := s.Stat(ctx); err != nil || st != (blockstore.Stat{}) {
		t.Fatalf("Stat after GC = %+v, %v; want empty", st, err)
	}
}

func TestPinReasonLength(t *testing.T) {
	s := newStore(t)
	root := blockstoretest.NewBlock([]byte("root")).Cid
	long := strings.Repeat("r", blockstore.MaxReasonLen)
	if err := s.Pin(t.Context(), root, long); err != nil {
		t.Fatalf("Pin with a reason of %d bytes: %v", len(long), err)
	}
	if err := s.Pin(t.Context(), root, long+"r"); err == nil {
		t.Fatalf("Pin with a reason of %d bytes succeeded", len(long)+1)
	}
	if pins, err := s.Pins(t.Context()); err != nil || len(pins) != 1 || pins[0].Reason != long {
		t.Fatalf("Pins = %v, %v; want the one pin with the long reason", pins, err)
	}
}
