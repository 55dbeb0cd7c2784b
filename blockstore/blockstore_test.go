package blockstore_test

import (
	"bytes"
	"context"
	"errors"
	"os"
	"path/filepath"
	"sync"
	"testing"
	"time"

	"github.com/ipfs/go-cid"

	"github.com/casd/casd/blockstore"
	"github.com/casd/casd/blockstore/blockstoretest"
)

type repo struct {
	blocks, meta string
}

func newRepo(tb testing.TB) repo {
	tb.Helper()
	dir := tb.TempDir()
	return repo{blocks: filepath.Join(dir, "blocks"), meta: filepath.Join(dir, "meta.db")}
}

func (r repo) open(tb testing.TB) *blockstore.Store {
	tb.Helper()
	s, err := blockstore.Open(r.blocks, r.meta)
	if err != nil {
		tb.Fatalf("Open: %v", err)
	}
	tb.Cleanup(func() {
		if err := s.Close(); err != nil {
			tb.Errorf("Close: %v", err)
		}
	})
	return s
}

// path is where the package documentation says block c lives.
func (r repo) path(c cid.Cid) string {
	name := cid.NewCidV1(c.Type(), c.Hash()).String()
	return filepath.Join(r.blocks, name[len(name)-3:len(name)-1], name)
}

func newStore(tb testing.TB) *blockstore.Store {
	return newRepo(tb).open(tb)
}

func TestSuite(t *testing.T) {
	blockstoretest.RunSuite(t, newStore)
}

func TestLayout(t *testing.T) {
	r := newRepo(t)
	s := r.open(t)
	b := blockstoretest.NewBlock([]byte("where am I"))
	if err := s.Put(t.Context(), b); err != nil {
		t.Fatal(err)
	}
	got, err := os.ReadFile(r.path(b.Cid))
	if err != nil {
		t.Fatalf("block file: %v", err)
	}
	if !bytes.Equal(got, b.Data) {
		t.Fatalf("block file holds %q; want %q", got, b.Data)
	}
	want := "bafkreih" // CIDv1 raw sha2-256 in base32
	if name := filepath.Base(r.path(b.Cid)); name[:len(want)] != want {
		t.Fatalf("file name %s is not a CIDv1 base32 string", name)
	}
}

func TestOpenRemovesTempFiles(t *testing.T) {
	r := newRepo(t)
	s, err := blockstore.Open(r.blocks, r.meta)
	if err != nil {
		t.Fatal(err)
	}
	b := blockstoretest.NewBlock([]byte("survivor"))
	if err := s.Put(t.Context(), b); err != nil {
		t.Fatal(err)
	}
	if err := s.Close(); err != nil {
		t.Fatal(err)
	}
	// What a crash between create and rename leaves.
	shard := filepath.Dir(r.path(b.Cid))
	stale := []string{filepath.Join(shard, ".tmp-123456"), filepath.Join(shard, ".tmp-"), filepath.Join(r.blocks, "zz", ".tmp-abc")}
	if err := os.MkdirAll(filepath.Join(r.blocks, "zz"), 0o700); err != nil {
		t.Fatal(err)
	}
	for _, p := range stale {
		if err := os.WriteFile(p, []byte("half a block"), 0o600); err != nil {
			t.Fatal(err)
		}
	}
	s = r.open(t)
	for _, p := range stale {
		if _, err := os.Stat(p); !errors.Is(err, os.ErrNotExist) {
			t.Errorf("stale temp file %s still there after Open (stat error %v)", p, err)
		}
	}
	st, err := s.Stat(t.Context())
	if err != nil {
		t.Fatal(err)
	}
	if st.Blocks != 1 || st.Bytes != int64(len(b.Data)) {
		t.Fatalf("Stat after Open = %+v; want 1 block of %d bytes", st, len(b.Data))
	}
	if keys := blockstoretest.Keys(t, s); len(keys) != 1 || !keys[b.Cid] {
		t.Fatalf("AllKeys = %v; want only %s", keys, b.Cid)
	}
}

func TestAllKeysStrayFile(t *testing.T) {
	r := newRepo(t)
	s := r.open(t)
	b := blockstoretest.NewBlock([]byte("real"))
	if err := s.Put(t.Context(), b); err != nil {
		t.Fatal(err)
	}
	// Another real block's name in the wrong shard, and a non-CID name.
	other := blockstoretest.NewBlock([]byte("misplaced"))
	otherName := filepath.Base(r.path(other.Cid))
	dir := filepath.Join(r.blocks, "zz")
	if filepath.Base(filepath.Dir(r.path(other.Cid))) == "zz" {
		dir = filepath.Join(r.blocks, "yy")
	}
	if err := os.MkdirAll(dir, 0o700); err != nil {
		t.Fatal(err)
	}
	for _, name := range []string{otherName, "not-a-cid"} {
		if err := os.WriteFile(filepath.Join(dir, name), []byte("x"), 0o600); err != nil {
			t.Fatal(err)
		}
	}
	var keys []cid.Cid
	var errs int
	for c, err := range s.AllKeys(t.Context()) {
		if err != nil {
			errs++
			continue
		}
		keys = append(keys, c)
	}
	if errs != 2 || len(keys) != 1 || !keys[0].Equals(b.Cid) {
		t.Fatalf("AllKeys yielded keys %v and %d errors; want [%s] and 2 errors", keys, errs, b.Cid)
	}
	// GC and Verify leave stray files alone and still work.
	if res, err := s.GC(t.Context(), blockstoretest.Links); err != nil || res.Removed != 1 {
		t.Fatalf("GC = %+v, %v; want the one unpinned block removed", res, err)
	}
	if _, err := os.Stat(filepath.Join(dir, "not-a-cid")); err != nil {
		t.Fatalf("GC touched a stray file: %v", err)
	}
}

// TestVerifyFindsDamage breaks a pinned block the way a disk or an
// operator might and checks that Verify reports it.
func TestVerifyFindsDamage(t *testing.T) {
	tests := []struct {
		name        string
		damage      func(path string) error
		wantCorrupt bool
		wantMissing bool
	}{
		{"none", func(string) error { return nil }, false, false},
		{"flipped byte", func(p string) error {
			data, err := os.ReadFile(p)
			if err != nil {
				return err
			}
			data[len(data)/2] ^= 0x01
			return os.WriteFile(p, data, 0o600)
		}, true, false},
		{"truncated", func(p string) error { return os.Truncate(p, 100) }, true, false},
		{"emptied", func(p string) error { return os.Truncate(p, 0) }, true, false},
		{"unreadable", func(p string) error {
			if err := os.Remove(p); err != nil {
				return err
			}
			return os.Mkdir(p, 0o700) // a directory where a block should be
		}, true, false},
		{"deleted", os.Remove, false, true},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			r := newRepo(t)
			s := r.open(t)
			ctx := t.Context()
			tree := blockstoretest.MakeTree(blockstoretest.NewRand(20), 2, 3, 4096)
			blockstoretest.MustPut(t, s, tree.Blocks...)
			if err := s.Pin(ctx, tree.Root, "owner"); err != nil {
				t.Fatal(err)
			}
			victim := tree.Blocks[1].Cid // a leaf
			if err := tt.damage(r.path(victim)); err != nil {
				t.Fatal(err)
			}
			rep, err := s.Verify(ctx, blockstoretest.Links)
			if err != nil {
				t.Fatalf("Verify: %v", err)
			}
			if got := len(rep.Corrupt) == 1 && rep.Corrupt[0].Equals(victim); got != tt.wantCorrupt || (!tt.wantCorrupt && len(rep.Corrupt) > 0) {
				t.Errorf("Corrupt = %v; want victim listed: %v", rep.Corrupt, tt.wantCorrupt)
			}
			if got := len(rep.Missing) == 1 && rep.Missing[0].Equals(victim); got != tt.wantMissing || (!tt.wantMissing && len(rep.Missing) > 0) {
				t.Errorf("Missing = %v; want victim listed: %v", rep.Missing, tt.wantMissing)
			}
		})
	}
}

func TestVerifyUnpinnedCorrupt(t *testing.T) {
	r := newRepo(t)
	s := r.open(t)
	b := blockstoretest.RandomBlock(blockstoretest.NewRand(21), 10000)
	if err := s.Put(t.Context(), b); err != nil {
		t.Fatal(err)
	}
	if err := os.Truncate(r.path(b.Cid), 10); err != nil {
		t.Fatal(err)
	}
	rep, err := s.Verify(t.Context(), blockstoretest.Links)
	if err != nil {
		t.Fatal(err)
	}
	if rep.Checked != 1 || len(rep.Corrupt) != 1 || !rep.Corrupt[0].Equals(b.Cid) || len(rep.Missing) != 0 {
		t.Fatalf("Verify = %+v; want the unpinned block checked and corrupt", rep)
	}
}

func TestPutManyDurable(t *testing.T) {
	r := newRepo(t)
	s, err := blockstore.Open(r.blocks, r.meta)
	if err != nil {
		t.Fatal(err)
	}
	rng := blockstoretest.NewRand(22)
	var bs []blockstore.Block
	var size int64
	for i := range 50 {
		b := blockstoretest.RandomBlock(rng, 1000+i*997)
		bs = append(bs, b)
		size += int64(len(b.Data))
	}
	blockstoretest.MustPut(t, s, bs...)
	if err := s.Pin(t.Context(), bs[0].Cid, "owner"); err != nil {
		t.Fatal(err)
	}
	if err := s.Close(); err != nil {
		t.Fatal(err)
	}
	for _, b := range bs {
		got, err := os.ReadFile(r.path(b.Cid))
		if err != nil || !bytes.Equal(got, b.Data) {
			t.Fatalf("block file of %s after Close: %d bytes, %v; want its %d bytes", b.Cid, len(got), err, len(b.Data))
		}
	}
	s = r.open(t)
	st, err := s.Stat(t.Context())
	if err != nil {
		t.Fatal(err)
	}
	if want := (blockstore.Stat{Blocks: len(bs), Bytes: size, Pins: 1}); st != want {
		t.Fatalf("Stat after reopening = %+v; want %+v", st, want)
	}
	for _, b := range bs {
		got, err := s.Get(t.Context(), b.Cid)
		if err != nil || !bytes.Equal(got, b.Data) {
			t.Fatalf("Get(%s) after reopening: %v", b.Cid, err)
		}
	}
}

func TestSecondOpenFailsFast(t *testing.T) {
	r := newRepo(t)
	r.open(t)
	done := make(chan error, 1)
	start := time.Now()
	go func() {
		s, err := blockstore.Open(r.blocks, r.meta)
		if err == nil {
			err = errors.Join(errors.New("second Open succeeded"), s.Close())
		}
		done <- err
	}()
	select {
	case err := <-done:
		if !errors.Is(err, blockstore.ErrLocked) {
			t.Fatalf("second Open: error = %v; want ErrLocked", err)
		}
		if d := time.Since(start); d > 5*time.Second {
			t.Fatalf("second Open took %v to fail", d)
		}
	case <-time.After(30 * time.Second):
		t.Fatal("second Open hangs") // the goroutine leaks, but the test binary is failing anyway
	}
}

func TestClosed(t *testing.T) {
	r := newRepo(t)
	s, err := blockstore.Open(r.blocks, r.meta)
	if err != nil {
		t.Fatal(err)
	}
	if err := s.Close(); err != nil {
		t.Fatal(err)
	}
	if err := s.Close(); err != nil {
		t.Fatalf("second Close: %v", err)
	}
	ctx := t.Context()
	b := blockstoretest.NewBlock([]byte("late"))
	checks := map[string]error{}
	checks["Put"] = s.Put(ctx, b)
	_, checks["Get"] = s.Get(ctx, b.Cid)
	_, checks["Has"] = s.Has(ctx, b.Cid)
	checks["Pin"] = s.Pin(ctx, b.Cid, "owner")
	_, checks["Pins"] = s.Pins(ctx)
	_, checks["Stat"] = s.Stat(ctx)
	_, checks["GC"] = s.GC(ctx, blockstoretest.Links)
	for name, err := range checks {
		if !errors.Is(err, blockstore.ErrClosed) {
			t.Errorf("%s after Close: error = %v; want ErrClosed", name, err)
		}
	}
}

func TestCanceledContext(t *testing.T) {
	s := newStore(t)
	blockstoretest.MustPut(t, s, blockstoretest.NewBlock([]byte("x")))
	ctx, cancel := context.WithCancel(t.Context())
	cancel()
	b := blockstoretest.NewBlock([]byte("y"))
	if err := s.PutMany(ctx, []blockstore.Block{b}); !errors.Is(err, context.Canceled) {
		t.Fatalf("PutMany: error = %v; want context.Canceled", err)
	}
	if _, err := s.Verify(ctx, blockstoretest.Links); !errors.Is(err, context.Canceled) {
		t.Fatalf("Verify: error = %v; want context.Canceled", err)
	}
	for _, err := range s.AllKeys(ctx) {
		if !errors.Is(err, context.Canceled) {
			t.Fatalf("AllKeys: error = %v; want context.Canceled", err)
		}
	}
}

// TestConcurrentSameBlock races many writers of one new block and checks it
// is counted once.
func TestConcurrentSameBlock(t *testing.T) {
	s := newStore(t)
	b := blockstoretest.RandomBlock(blockstoretest.NewRand(23), 100<<10)
	var wg sync.WaitGroup
	errs := make([]error, 16)
	for i := range errs {
		wg.Go(func() {
			if i%2 == 0 {
				errs[i] = s.Put(t.Context(), b)
			} else {
				errs[i] = s.PutMany(t.Context(), []blockstore.Block{b})
			}
		})
	}
	wg.Wait()
	if err := errors.Join(errs...); err != nil {
		t.Fatal(err)
	}
	st, err := s.Stat(t.Context())
	if err != nil {
		t.Fatal(err)
	}
	if st.Blocks != 1 || st.Bytes != int64(len(b.Data)) {
		t.Fatalf("Stat = %+v; want one block of %d bytes", st, len(b.Data))
	}
}

func TestVerifyBlock(t *testing.T) {
	b := blockstoretest.NewBlock([]byte("hello"))
	tests := []struct {
		name    string
		c       cid.Cid
		data    []byte
		wantErr error
	}{
		{"match", b.Cid, b.Data, nil},
		{"mismatch", b.Cid, []byte("hellO"), blockstore.ErrCorrupt},
		{"empty", b.Cid, nil, blockstore.ErrCorrupt},
		{"v0 of the same digest", cid.NewCidV0(b.Cid.Hash()), b.Data, blockstore.ErrBadCid},
	}
	for _, bad := range blockstoretest.BadCids(b.Data) {
		tests = append(tests, struct {
			name    string
			c       cid.Cid
			data    []byte
			wantErr error
		}{"matching " + bad.Name, bad.Cid, b.Data, blockstore.ErrBadCid})
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			err := blockstore.VerifyBlock(tt.c, tt.data)
			if !errors.Is(err, tt.wantErr) || (tt.wantErr == nil && err != nil) {
				t.Fatalf("VerifyBlock = %v; want %v", err, tt.wantErr)
			}
		})
	}
	if err := blockstore.VerifyBlock(cid.Undef, nil); err == nil {
		t.Fatal("VerifyBlock(Undef) succeeded")
	}
}
