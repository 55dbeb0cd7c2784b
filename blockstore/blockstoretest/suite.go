package blockstoretest

import (
	"bytes"
	"errors"
	"slices"
	"sync"
	"testing"

	"github.com/ipfs/go-cid"

	"github.com/casd/casd/blockstore"
)

// RunSuite checks a [blockstore.Store] in full: [Verify] on its blocks,
// then pins, GC, the GC guard, verification and accounting. newStore is
// called once per subtest and must return an open, empty store that it
// closes with tb.Cleanup.
func RunSuite(t *testing.T, newStore func(tb testing.TB) *blockstore.Store) {
	t.Run("Blocks", func(t *testing.T) {
		Verify(t, func(tb testing.TB) Blockstore { return newStore(tb) })
	})
	t.Run("Pins", func(t *testing.T) { testPins(t, newStore(t)) })
	t.Run("GC", func(t *testing.T) { testGC(t, newStore(t)) })
	t.Run("GCLinkError", func(t *testing.T) { testGCLinkError(t, newStore(t)) })
	t.Run("GCGuard", func(t *testing.T) { testGCGuard(t, newStore(t)) })
	t.Run("Verify", func(t *testing.T) { testVerify(t, newStore(t)) })
	t.Run("Stat", func(t *testing.T) { testStat(t, newStore(t)) })
}

func testPins(t *testing.T, s *blockstore.Store) {
	ctx := t.Context()
	a, b := NewBlock([]byte("a")).Cid, NewBlock([]byte("b")).Cid
	if pins, err := s.Pins(ctx); err != nil || len(pins) != 0 {
		t.Fatalf("Pins of an empty store = %v, %v", pins, err)
	}
	steps := []struct {
		root   cid.Cid
		reason string
	}{{a, "owner"}, {b, "owner"}, {a, "replica:k1"}, {a, "owner"}}
	for _, st := range steps {
		if err := s.Pin(ctx, st.root, st.reason); err != nil {
			t.Fatalf("Pin(%s, %q): %v", st.root, st.reason, err)
		}
	}
	pins, err := s.Pins(ctx)
	if err != nil {
		t.Fatalf("Pins: %v", err)
	}
	if len(pins) != 3 {
		t.Fatalf("Pins = %v; want 3 pins", pins)
	}
	if !slices.IsSortedFunc(pins, func(x, y blockstore.Pin) int {
		if c := x.Created.Compare(y.Created); c != 0 {
			return c
		}
		return bytes.Compare(x.Root.Bytes(), y.Root.Bytes())
	}) {
		t.Fatalf("Pins not ordered by Created then root: %v", pins)
	}
	first := pinOf(t, pins, a, "owner")
	if err := s.Pin(ctx, a, "owner"); err != nil {
		t.Fatal(err)
	}
	ofA, err := s.PinsOf(ctx, a)
	if err != nil {
		t.Fatalf("PinsOf: %v", err)
	}
	if len(ofA) != 2 {
		t.Fatalf("PinsOf(a) = %v; want 2 pins", ofA)
	}
	if again := pinOf(t, ofA, a, "owner"); !again.Created.Equal(first.Created) {
		t.Fatalf("pinning again changed Created from %v to %v", first.Created, again.Created)
	}
	pinOf(t, ofA, a, "replica:k1")

	if err := s.Unpin(ctx, a, "owner"); err != nil {
		t.Fatalf("Unpin: %v", err)
	}
	if err := s.Unpin(ctx, a, "owner"); err != nil {
		t.Fatalf("Unpin of a missing pin: %v; want nil", err)
	}
	ofA, err = s.PinsOf(ctx, a)
	if err != nil || len(ofA) != 1 || ofA[0].Reason != "replica:k1" {
		t.Fatalf("PinsOf(a) after Unpin = %v, %v; want the replica pin", ofA, err)
	}
	if ofC, err := s.PinsOf(ctx, NewBlock([]byte("c")).Cid); err != nil || len(ofC) != 0 {
		t.Fatalf("PinsOf(unpinned) = %v, %v; want none", ofC, err)
	}
	if err := s.Pin(ctx, a, ""); err == nil {
		t.Fatal("Pin with an empty reason succeeded")
	}
	if err := s.Pin(ctx, cid.Undef, "owner"); err == nil {
		t.Fatal("Pin of an undefined CID succeeded")
	}
}

func pinOf(tb testing.TB, pins []blockstore.Pin, root cid.Cid, reason string) blockstore.Pin {
	tb.Helper()
	for _, p := range pins {
		if p.Root.Equals(root) && p.Reason == reason {
			return p
		}
	}
	tb.Fatalf("no pin (%s, %q) in %v", root, reason, pins)
	return blockstore.Pin{}
}

func testGC(t *testing.T, s *blockstore.Store) {
	ctx := t.Context()
	rng := NewRand(10)
	kept := MakeTree(rng, 3, 3, 100)    // pinned twice
	kept2 := MakeTree(rng, 2, 4, 100)   // pinned, one leaf missing
	dropped := MakeTree(rng, 3, 2, 200) // never pinned
	unpinned := MakeTree(rng, 2, 2, 50) // pinned, then unpinned
	shared := RandomBlock(rng, 10)      // in a dropped node and a kept node
	keptShared := Node(kept.Root, shared.Cid)
	droppedShared := Node(shared.Cid)

	MustPut(t, s, kept.Blocks...)
	MustPut(t, s, kept2.Blocks[1:]...) // kept2.Blocks[0] is a leaf
	MustPut(t, s, dropped.Blocks...)
	MustPut(t, s, unpinned.Blocks...)
	MustPut(t, s, shared, keptShared, droppedShared)
	for _, p := range []struct {
		root   cid.Cid
		reason string
	}{{kept.Root, "owner"}, {kept.Root, "replica:x"}, {kept2.Root, "owner"}, {keptShared.Cid, "owner"}, {unpinned.Root, "owner"}} {
		if err := s.Pin(ctx, p.root, p.reason); err != nil {
			t.Fatal(err)
		}
	}
	if err := s.Unpin(ctx, unpinned.Root, "owner"); err != nil {
		t.Fatal(err)
	}

	var wantFreed int64
	var wantRemoved int
	for _, b := range slices.Concat(dropped.Blocks, unpinned.Blocks, []blockstore.Block{droppedShared}) {
		wantFreed += int64(len(b.Data))
		wantRemoved++
	}
	res, err := s.GC(ctx, Links)
	if err != nil {
		t.Fatalf("GC: %v", err)
	}
	if res.Removed != wantRemoved || res.Freed != wantFreed {
		t.Fatalf("GC = %+v; want Removed %d, Freed %d", res, wantRemoved, wantFreed)
	}
	for _, b := range slices.Concat(kept.Blocks, kept2.Blocks[1:], []blockstore.Block{shared, keptShared}) {
		requireBlock(t, s, b)
	}
	for _, b := range slices.Concat(dropped.Blocks, unpinned.Blocks, []blockstore.Block{droppedShared}) {
		requireAbsent(t, s, b.Cid)
	}
	if res, err := s.GC(ctx, Links); err != nil || res != (blockstore.GCResult{}) {
		t.Fatalf("second GC = %+v, %v; want nothing removed", res, err)
	}
}

func testGCLinkError(t *testing.T, s *blockstore.Store) {
	ctx := t.Context()
	root := Node(NewBlock([]byte("child")).Cid)
	garbage := NewBlock([]byte("garbage"))
	MustPut(t, s, root, garbage)
	if err := s.Pin(ctx, root.Cid, "owner"); err != nil {
		t.Fatal(err)
	}
	errLinks := errors.New("cannot decode")
	_, err := s.GC(ctx, func(c cid.Cid, data []byte) ([]cid.Cid, error) { return nil, errLinks })
	if !errors.Is(err, errLinks) {
		t.Fatalf("GC with a failing LinkFunc: error = %v; want it to wrap the LinkFunc's", err)
	}
	requireBlock(t, s, garbage) // nothing swept
}

// testGCGuard checks that a tree added under a guard survives a GC started
// before its root is pinned.
func testGCGuard(t *testing.T, s *blockstore.Store) {
	ctx := t.Context()
	tree := MakeTree(NewRand(11), 2, 3, 100)
	release := s.GCGuard()
	MustPut(t, s, tree.Blocks...)
	var (
		wg  sync.WaitGroup
		res blockstore.GCResult
		err error
	)
	wg.Go(func() { res, err = s.GC(ctx, Links) })
	if perr := s.Pin(ctx, tree.Root, "owner"); perr != nil {
		t.Fatal(perr)
	}
	release()
	release() // harmless
	wg.Wait()
	if err != nil {
		t.Fatalf("GC: %v", err)
	}
	if res.Removed != 0 {
		t.Fatalf("GC removed %d blocks of a tree added under a guard", res.Removed)
	}
	for _, b := range tree.Blocks {
		requireBlock(t, s, b)
	}
}

func testVerify(t *testing.T, s *blockstore.Store) {
	ctx := t.Context()
	rng := NewRand(12)
	tree := MakeTree(rng, 3, 2, 1000)
	loose := RandomBlock(rng, 500)
	MustPut(t, s, tree.Blocks...)
	MustPut(t, s, loose)
	if err := s.Pin(ctx, tree.Root, "owner"); err != nil {
		t.Fatal(err)
	}
	rep, err := s.Verify(ctx, Links)
	if err != nil {
		t.Fatalf("Verify: %v", err)
	}
	if rep.Checked != len(tree.Blocks)+1 || len(rep.Corrupt) != 0 || len(rep.Missing) != 0 {
		t.Fatalf("Verify of a clean store = %+v; want %d checked, nothing wrong", rep, len(tree.Blocks)+1)
	}

	leaf := tree.Blocks[0]
	if err := s.Delete(ctx, leaf.Cid); err != nil {
		t.Fatal(err)
	}
	// A block put under a wrong CID is corrupt (Put trusts its caller).
	liar := blockstore.Block{Cid: NewBlock([]byte("claimed")).Cid, Data: []byte("actual")}
	if err := s.Put(ctx, liar); err != nil {
		t.Fatal(err)
	}
	rep, err = s.Verify(ctx, Links)
	if err != nil {
		t.Fatalf("Verify: %v", err)
	}
	if len(rep.Missing) != 1 || !rep.Missing[0].Equals(leaf.Cid) {
		t.Fatalf("Verify Missing = %v; want [%s]", rep.Missing, leaf.Cid)
	}
	if len(rep.Corrupt) != 1 || !rep.Corrupt[0].Equals(liar.Cid) {
		t.Fatalf("Verify Corrupt = %v; want [%s]", rep.Corrupt, liar.Cid)
	}
	if rep.Checked != len(tree.Blocks)+1 {
		t.Fatalf("Verify Checked = %d; want %d", rep.Checked, len(tree.Blocks)+1)
	}
}

func testStat(t *testing.T, s *blockstore.Store) {
	ctx := t.Context()
	want := blockstore.Stat{}
	check := func(step string) {
		t.Helper()
		got, err := s.Stat(ctx)
		if err != nil {
			t.Fatalf("%s: Stat: %v", step, err)
		}
		if got != want {
			t.Fatalf("%s: Stat = %+v; want %+v", step, got, want)
		}
	}
	check("empty")
	rng := NewRand(13)
	a, b := RandomBlock(rng, 1000), RandomBlock(rng, 3000)
	MustPut(t, s, a, b, a)
	if err := s.Put(ctx, b); err != nil {
		t.Fatal(err)
	}
	want.Blocks, want.Bytes = 2, 4000
	check("after puts")
	if err := s.Pin(ctx, a.Cid, "owner"); err != nil {
		t.Fatal(err)
	}
	if err := s.Pin(ctx, a.Cid, "replica:k"); err != nil {
		t.Fatal(err)
	}
	want.Pins = 2
	check("after pins")
	for range 2 {
		if err := s.Delete(ctx, b.Cid); err != nil {
			t.Fatal(err)
		}
	}
	want.Blocks, want.Bytes = 1, 1000
	check("after delete")
	if _, err := s.GC(ctx, Links); err != nil {
		t.Fatal(err)
	}
	check("after GC of nothing")
	if err := s.Unpin(ctx, a.Cid, "owner"); err != nil {
		t.Fatal(err)
	}
	if err := s.Unpin(ctx, a.Cid, "replica:k"); err != nil {
		t.Fatal(err)
	}
	if _, err := s.GC(ctx, Links); err != nil {
		t.Fatal(err)
	}
	want = blockstore.Stat{}
	check("after GC")
}
