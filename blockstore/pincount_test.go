package blockstore_test

import (
	"fmt"
	"testing"

	"github.com/casd/casd/blockstore"
	"github.com/casd/casd/blockstore/blockstoretest"
)

// TestPinCount: PinCount follows Pin and Unpin per reason (a pin made
// twice counts once, an absent one unpinned changes nothing) and comes
// back the same when the store is reopened.
func TestPinCount(t *testing.T) {
	r := newRepo(t)
	s := r.open(t)
	ctx := t.Context()
	count := func(s *blockstore.Store, reason string) int {
		t.Helper()
		n, err := s.PinCount(ctx, reason)
		if err != nil {
			t.Fatal(err)
		}
		return n
	}
	for i := range 5 {
		b := blockstoretest.NewBlock(fmt.Appendf(nil, "root %d", i))
		for _, reason := range []string{"replica:a", "replica:a", "owner"} {
			if err := s.Pin(ctx, b.Cid, reason); err != nil {
				t.Fatal(err)
			}
		}
		if i < 2 {
			if err := s.Pin(ctx, b.Cid, "replica:b"); err != nil {
				t.Fatal(err)
			}
		}
	}
	gone := blockstoretest.NewBlock([]byte("root 0")).Cid
	for range 2 {
		if err := s.Unpin(ctx, gone, "replica:a"); err != nil {
			t.Fatal(err)
		}
	}
	if err := s.Unpin(ctx, gone, "replica:nobody"); err != nil {
		t.Fatal(err)
	}
	want := map[string]int{"replica:a": 4, "replica:b": 2, "owner": 5, "replica:nobody": 0}
	for reason, n := range want {
		if got := count(s, reason); got != n {
			t.Errorf("PinCount(%q) = %d, want %d", reason, got, n)
		}
	}
	if err := s.Close(); err != nil {
		t.Fatal(err)
	}
	s = r.open(t)
	for reason, n := range want {
		if got := count(s, reason); got != n {
			t.Errorf("after reopening: PinCount(%q) = %d, want %d", reason, got, n)
		}
	}
}
