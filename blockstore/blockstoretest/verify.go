package blockstoretest

import (
	"bytes"
	"errors"
	"fmt"
	"sync"
	"testing"

	"github.com/ipfs/go-cid"

	"github.com/casd/casd/blockstore"
)

// Verify checks that the stores newStore returns behave as a
// [blockstore.Store] does for blocks: read-after-write, idempotent puts,
// ErrNotFound for what is missing, ErrTooLarge for what is too big,
// buffer ownership, listing, deleting, and safety under concurrent use.
// newStore is called once per subtest and must return an empty store that
// it cleans up with tb.Cleanup.
func Verify(t *testing.T, newStore func(tb testing.TB) Blockstore) {
	t.Run("PutGet", func(t *testing.T) {
		s := newStore(t)
		rng := NewRand(1)
		for _, size := range []int{0, 1, 4 << 10, 1 << 20, blockstore.MaxBlockSize} {
			t.Run(fmt.Sprint(size), func(t *testing.T) {
				b := RandomBlock(rng, size)
				if err := s.Put(t.Context(), b); err != nil {
					t.Fatalf("Put: %v", err)
				}
				requireBlock(t, s, b)
			})
		}
	})

	t.Run("Missing", func(t *testing.T) {
		s := newStore(t)
		requireAbsent(t, s, NewBlock([]byte("never put")).Cid)
	})

	t.Run("TooLarge", func(t *testing.T) {
		s := newStore(t)
		big := RandomBlock(NewRand(2), blockstore.MaxBlockSize+1)
		if err := s.Put(t.Context(), big); !errors.Is(err, blockstore.ErrTooLarge) {
			t.Fatalf("Put of %d bytes: error = %v; want ErrTooLarge", len(big.Data), err)
		}
		small := NewBlock([]byte("small"))
		if err := s.PutMany(t.Context(), []blockstore.Block{small, big}); !errors.Is(err, blockstore.ErrTooLarge) {
			t.Fatalf("PutMany with a block too large: error = %v; want ErrTooLarge", err)
		}
		requireAbsent(t, s, big.Cid)
		requireAbsent(t, s, small.Cid)
	})

	t.Run("PutTwice", func(t *testing.T) {
		s := newStore(t)
		b := NewBlock([]byte("twice"))
		for range 2 {
			if err := s.Put(t.Context(), b); err != nil {
				t.Fatalf("Put: %v", err)
			}
		}
		MustPut(t, s, b, b)
		requireBlock(t, s, b)
		if keys := Keys(t, s); len(keys) != 1 || !keys[b.Cid] {
			t.Fatalf("AllKeys = %v; want just %s", keys, b.Cid)
		}
	})

	t.Run("BufferOwnership", func(t *testing.T) {
		s := newStore(t)
		data := []byte("the caller may reuse this buffer")
		b := NewBlock(bytes.Clone(data))
		if err := s.Put(t.Context(), b); err != nil {
			t.Fatalf("Put: %v", err)
		}
		b.Data[0] ^= 0xff // the store must not have kept it
		got, err := s.Get(t.Context(), b.Cid)
		if err != nil {
			t.Fatalf("Get: %v", err)
		}
		if !bytes.Equal(got, data) {
			t.Fatalf("Get after the caller changed its buffer = %q; want %q", got, data)
		}
		got[0] ^= 0xff // the caller owns what Get returns
		requireBlock(t, s, NewBlock(data))
	})

	t.Run("PutMany", func(t *testing.T) {
		s := newStore(t)
		rng := NewRand(3)
		var bs []blockstore.Block
		for i := range 40 {
			bs = append(bs, RandomBlock(rng, 1+i*1000))
		}
		MustPut(t, s, bs[:10]...) // some already present
		MustPut(t, s, bs...)
		for _, b := range bs {
			requireBlock(t, s, b)
		}
		if got := len(Keys(t, s)); got != len(bs) {
			t.Fatalf("AllKeys has %d blocks; want %d", got, len(bs))
		}
		if err := s.PutMany(t.Context(), nil); err != nil {
			t.Fatalf("PutMany(nil): %v", err)
		}
	})

	t.Run("Delete", func(t *testing.T) {
		s := newStore(t)
		a, b := NewBlock([]byte("a")), NewBlock([]byte("b"))
		MustPut(t, s, a, b)
		if err := s.Delete(t.Context(), a.Cid); err != nil {
			t.Fatalf("Delete: %v", err)
		}
		requireAbsent(t, s, a.Cid)
		requireBlock(t, s, b)
		if err := s.Delete(t.Context(), a.Cid); err != nil {
			t.Fatalf("Delete of a missing block: %v; want nil", err)
		}
		if err := s.Put(t.Context(), a); err != nil {
			t.Fatalf("Put after Delete: %v", err)
		}
		requireBlock(t, s, a)
	})

	t.Run("AllKeys", func(t *testing.T) {
		s := newStore(t)
		if keys := Keys(t, s); len(keys) != 0 {
			t.Fatalf("AllKeys of an empty store = %v", keys)
		}
		rng := NewRand(4)
		want := make(map[cid.Cid]bool)
		var bs []blockstore.Block
		for range 300 { // enough to share shards
			b := RandomBlock(rng, 16)
			bs = append(bs, b)
			want[b.Cid] = true
		}
		MustPut(t, s, bs...)
		got := Keys(t, s)
		if len(got) != len(want) {
			t.Fatalf("AllKeys has %d keys; want %d", len(got), len(want))
		}
		for c := range want {
			if !got[c] {
				t.Fatalf("AllKeys lacks %s", c)
			}
		}
		// Stopping early must be allowed.
		n := 0
		for _, err := range s.AllKeys(t.Context()) {
			if err != nil {
				t.Fatal(err)
			}
			if n++; n == 3 {
				break
			}
		}
	})

	t.Run("Concurrent", func(t *testing.T) {
		s := newStore(t)
		rng := NewRand(5)
		shared := RandomBlock(rng, 64<<10)
		const workers = 8
		own := make([]blockstore.Block, workers)
		for i := range own {
			own[i] = RandomBlock(rng, 32<<10)
		}
		var wg sync.WaitGroup
		errs := make(chan error, workers)
		for i := range workers {
			wg.Go(func() {
				ctx := t.Context()
				for range 20 {
					for _, b := range []blockstore.Block{shared, own[i]} {
						if err := s.Put(ctx, b); err != nil {
							errs <- err
							return
						}
						got, err := s.Get(ctx, b.Cid)
						if err != nil {
							errs <- err
							return
						}
						if !bytes.Equal(got, b.Data) {
							errs <- fmt.Errorf("Get(%s) returned other bytes", b.Cid)
							return
						}
					}
					if err := s.Delete(ctx, own[i].Cid); err != nil {
						errs <- err
						return
					}
				}
				errs <- s.Put(ctx, own[i])
			})
		}
		wg.Wait()
		close(errs)
		for err := range errs {
			if err != nil {
				t.Fatal(err)
			}
		}
		requireBlock(t, s, shared)
		for _, b := range own {
			requireBlock(t, s, b)
		}
		if got := len(Keys(t, s)); got != workers+1 {
			t.Fatalf("AllKeys has %d blocks; want %d", got, workers+1)
		}
	})
}
