package blockstore_test

import (
	"testing"
	"time"

	"github.com/ipfs/go-cid"

	"github.com/casd/casd/blockstore"
	"github.com/casd/casd/blockstore/blockstoretest"
)

// expiresOf returns the expiry of the (root, reason) pin of s.
func expiresOf(t *testing.T, s *blockstore.Store, root cid.Cid, reason string) time.Time {
	t.Helper()
	pins, err := s.PinsOf(t.Context(), root)
	if err != nil {
		t.Fatal(err)
	}
	for _, p := range pins {
		if p.Reason == reason {
			return p.Expires
		}
	}
	t.Fatalf("no pin (%s, %q) in %v", root, reason, pins)
	return time.Time{}
}

// TestPinUntilNeverShortens: PinUntil creates a pin with its expiry, then
// only extends it; a never-expiring pin stays so, and the expiry survives
// a reopen.
func TestPinUntilNeverShortens(t *testing.T) {
	r := newRepo(t)
	s := r.open(t)
	ctx := t.Context()
	root := blockstoretest.NewBlock([]byte("leased")).Cid
	t1 := time.Now().Add(time.Hour).Truncate(time.Second)
	const reason = "replica:k1"
	steps := []struct {
		until, want time.Time
	}{
		{t1, t1},                   // created
		{t1.Add(-time.Minute), t1}, // earlier: kept
		{t1.Add(time.Minute), t1.Add(time.Minute)}, // later: extended
		{time.Time{}, time.Time{}},                 // never: the latest of all
		{t1.Add(time.Hour), time.Time{}},           // never stays never
	}
	var created time.Time
	for i, st := range steps {
		if err := s.PinUntil(ctx, root, reason, st.until); err != nil {
			t.Fatalf("step %d: PinUntil: %v", i, err)
		}
		if got := expiresOf(t, s, root, reason); !got.Equal(st.want) {
			t.Fatalf("step %d: PinUntil(%v): expires %v, want %v", i, st.until, got, st.want)
		}
		pins, _ := s.PinsOf(ctx, root)
		if i == 0 {
			created = pins[0].Created
		} else if !pins[0].Created.Equal(created) {
			t.Fatalf("step %d: Created moved from %v to %v", i, created, pins[0].Created)
		}
	}
	if n, _ := s.PinCount(ctx, reason); n != 1 {
		t.Fatalf("PinCount = %d after extending one pin, want 1", n)
	}

	// An owner pin (Pin, never expiring) is not shortened by PinUntil.
	if err := s.Pin(ctx, root, "owner"); err != nil {
		t.Fatal(err)
	}
	if err := s.PinUntil(ctx, root, "owner", t1); err != nil {
		t.Fatal(err)
	}
	if got := expiresOf(t, s, root, "owner"); !got.IsZero() {
		t.Fatalf("PinUntil shortened a never-expiring pin to %v", got)
	}

	other := blockstoretest.NewBlock([]byte("other")).Cid
	if err := s.PinUntil(ctx, other, reason, t1); err != nil {
		t.Fatal(err)
	}
	if err := s.Close(); err != nil {
		t.Fatal(err)
	}
	s = r.open(t)
	if got := expiresOf(t, s, other, reason); !got.Equal(t1) {
		t.Fatalf("after reopen: expires %v, want %v", got, t1)
	}
}

// TestRenewPinCreatesNothing: RenewPin extends an existing pin and
// reports it held; on a pin that does not exist (say, one a sweep just
// removed) it reports false and pins nothing.
func TestRenewPinCreatesNothing(t *testing.T) {
	s := newStore(t)
	ctx := t.Context()
	root := blockstoretest.NewBlock([]byte("renewed")).Cid
	t1 := time.Now().Add(time.Hour).Truncate(time.Second)
	held, err := s.RenewPin(ctx, root, "replica:k1", t1)
	if err != nil || held {
		t.Fatalf("RenewPin of no pin = %v, %v; want false, nil", held, err)
	}
	if pins, _ := s.PinsOf(ctx, root); len(pins) != 0 {
		t.Fatalf("RenewPin created %v", pins)
	}
	if err := s.PinUntil(ctx, root, "replica:k1", t1); err != nil {
		t.Fatal(err)
	}
	if held, err := s.RenewPin(ctx, root, "replica:k2", t1.Add(time.Hour)); err != nil || held {
		t.Fatalf("RenewPin of another owner's reason = %v, %v; want false", held, err)
	}
	t2 := t1.Add(24 * time.Hour)
	if held, err := s.RenewPin(ctx, root, "replica:k1", t2); err != nil || !held {
		t.Fatalf("RenewPin = %v, %v; want true", held, err)
	}
	if got := expiresOf(t, s, root, "replica:k1"); !got.Equal(t2) {
		t.Fatalf("renewed expiry %v, want %v", got, t2)
	}
}

// TestUnpinExpired: exactly the pins whose expiry has come are removed
// and returned, counts follow, and NextExpiry names the earliest left.
func TestUnpinExpired(t *testing.T) {
	s := newStore(t)
	ctx := t.Context()
	now := time.Now().Truncate(time.Second)
	a := blockstoretest.NewBlock([]byte("a")).Cid
	b := blockstoretest.NewBlock([]byte("b")).Cid
	c := blockstoretest.NewBlock([]byte("c")).Cid
	pins := []struct {
		root    cid.Cid
		reason  string
		expires time.Time
	}{
		{a, "replica:k1", now.Add(-time.Second)},
		{a, "replica:k2", now},
		{b, "replica:k1", now.Add(time.Minute)},
		{c, "replica:k1", now.Add(2 * time.Minute)},
		{c, "owner", time.Time{}},
	}
	for _, p := range pins {
		if err := s.PinUntil(ctx, p.root, p.reason, p.expires); err != nil {
			t.Fatal(err)
		}
	}
	next, ok, err := s.NextExpiry(ctx)
	if err != nil || !ok || !next.Equal(now.Add(-time.Second)) {
		t.Fatalf("NextExpiry = %v, %v, %v; want %v", next, ok, err, now.Add(-time.Second))
	}
	expired, err := s.ExpiredPins(ctx, now)
	if err != nil || len(expired) != 2 {
		t.Fatalf("ExpiredPins = %v, %v; want the two pins of a", expired, err)
	}
	gone, err := s.UnpinExpired(ctx, now)
	if err != nil {
		t.Fatal(err)
	}
	if len(gone) != 2 || !gone[0].Root.Equals(a) || !gone[1].Root.Equals(a) {
		t.Fatalf("UnpinExpired = %v; want the two pins of a", gone)
	}
	if left, _ := s.PinsOf(ctx, a); len(left) != 0 {
		t.Fatalf("pins of a left: %v", left)
	}
	if n, _ := s.PinCount(ctx, "replica:k1"); n != 2 {
		t.Fatalf("PinCount(replica:k1) = %d, want 2", n)
	}
	if n, _ := s.PinCount(ctx, "replica:k2"); n != 0 {
		t.Fatalf("PinCount(replica:k2) = %d, want 0", n)
	}
	next, ok, err = s.NextExpiry(ctx)
	if err != nil || !ok || !next.Equal(now.Add(time.Minute)) {
		t.Fatalf("NextExpiry after the sweep = %v, %v, %v; want %v", next, ok, err, now.Add(time.Minute))
	}
	if gone, err := s.UnpinExpired(ctx, now); err != nil || len(gone) != 0 {
		t.Fatalf("second UnpinExpired = %v, %v; want nothing", gone, err)
	}
	if gone, err := s.UnpinExpired(ctx, now.Add(time.Hour)); err != nil || len(gone) != 2 {
		t.Fatalf("UnpinExpired an hour on = %v, %v; want b's and c's replica pins", gone, err)
	}
	if _, ok, _ := s.NextExpiry(ctx); ok {
		t.Fatal("NextExpiry found an expiry with only a never-expiring pin left")
	}
	if left, _ := s.PinsOf(ctx, c); len(left) != 1 || left[0].Reason != "owner" {
		t.Fatalf("pins of c = %v; want the owner pin", left)
	}
}
