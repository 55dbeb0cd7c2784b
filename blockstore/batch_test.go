package blockstore_test

import (
	"context"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/casd/casd/blockstore"
	"github.com/casd/casd/blockstore/blockstoretest"
)

func tempFiles(t *testing.T, dir string) []string {
	t.Helper()
	var tmps []string
	err := filepath.WalkDir(dir, func(p string, d os.DirEntry, err error) error {
		if err == nil && strings.HasPrefix(d.Name(), ".tmp-") {
			tmps = append(tmps, p)
		}
		return err
	})
	if err != nil {
		t.Fatal(err)
	}
	return tmps
}

func TestBatchCommit(t *testing.T) {
	s, dir := newStoreDir(t)
	rng := blockstoretest.NewRand(1)
	blocks := []blockstore.Block{blockstoretest.RandomBlock(rng, 1000), blockstoretest.RandomBlock(rng, 5000), blockstoretest.RandomBlock(rng, 70000)}
	blockstoretest.MustPut(t, s, blocks[0]) // already present: staged as such

	b := s.NewBatch()
	for _, blk := range blocks {
		data := append([]byte(nil), blk.Data...)
		if err := b.Stage(t.Context(), blockstore.Block{Cid: blk.Cid, Data: data}); err != nil {
			t.Fatal(err)
		}
		clear(data) // the caller may reuse its buffer once staged
	}
	if b.Len() != 3 {
		t.Fatalf("Len = %d, want 3", b.Len())
	}
	for _, blk := range blocks[1:] {
		if ok, _ := s.Has(t.Context(), blk.Cid); ok {
			t.Fatalf("block %s visible before Commit", blk.Cid)
		}
	}
	if err := b.Commit(t.Context()); err != nil {
		t.Fatal(err)
	}
	for _, blk := range blocks {
		got, err := s.Get(t.Context(), blk.Cid)
		if err != nil || string(got) != string(blk.Data) {
			t.Fatalf("block %s after commit: %v", blk.Cid, err)
		}
	}
	st, err := s.Stat(t.Context())
	if err != nil || st.Blocks != 3 || st.Bytes != 76000 {
		t.Fatalf("Stat = %+v, %v; want 3 blocks, 76000 bytes", st, err)
	}
	if tmps := tempFiles(t, dir); len(tmps) != 0 {
		t.Fatalf("temp files left: %v", tmps)
	}
}

func TestBatchDiscardAndCancel(t *testing.T) {
	cases := map[string]func(*blockstore.Batch) error{
		"discard": func(b *blockstore.Batch) error { return b.Discard() },
		"cancelled commit": func(b *blockstore.Batch) error {
			ctx, cancel := context.WithCancel(context.Background())
			cancel()
			if err := b.Commit(ctx); err == nil {
				t.Error("Commit with a cancelled context succeeded")
			}
			return nil
		},
	}
	for name, end := range cases {
		t.Run(name, func(t *testing.T) {
			s, dir := newStoreDir(t)
			blk := blockstoretest.RandomBlock(blockstoretest.NewRand(2), 4096)
			b := s.NewBatch()
			if err := b.Stage(t.Context(), blk); err != nil {
				t.Fatal(err)
			}
			if err := end(b); err != nil {
				t.Fatal(err)
			}
			if ok, _ := s.Has(t.Context(), blk.Cid); ok {
				t.Fatal("block stored")
			}
			if tmps := tempFiles(t, dir); len(tmps) != 0 {
				t.Fatalf("temp files left: %v", tmps)
			}
		})
	}
}

func newStoreDir(t *testing.T) (*blockstore.Store, string) {
	r := newRepo(t)
	return r.open(t), r.blocks
}

// TestOpenRemovesBatchLeftovers: a process that dies after staging blocks
// and before committing them leaves their temporary files; the next Open
// removes them, and none of those blocks shows.
func TestOpenRemovesBatchLeftovers(t *testing.T) {
	r := newRepo(t)
	s, err := blockstore.Open(r.blocks, r.meta)
	if err != nil {
		t.Fatal(err)
	}
	rng := blockstoretest.NewRand(3)
	kept := blockstoretest.RandomBlock(rng, 3000)
	blockstoretest.MustPut(t, s, kept)
	b := s.NewBatch()
	t.Cleanup(func() { _ = b.Discard() }) // closes the files; they are gone by then
	var staged []blockstore.Block
	for range 20 {
		blk := blockstoretest.RandomBlock(rng, 2000)
		if err := b.Stage(t.Context(), blk); err != nil {
			t.Fatal(err)
		}
		staged = append(staged, blk)
	}
	if n := len(tempFiles(t, r.blocks)); n != len(staged) {
		t.Fatalf("%d temporary files after staging %d blocks", n, len(staged))
	}
	// The crash: no Commit, no Discard.
	if err := s.Close(); err != nil {
		t.Fatal(err)
	}

	s = r.open(t)
	if tmps := tempFiles(t, r.blocks); len(tmps) != 0 {
		t.Fatalf("temporary files left after Open: %v", tmps)
	}
	for _, blk := range staged {
		if ok, err := s.Has(t.Context(), blk.Cid); err != nil || ok {
			t.Fatalf("Has(staged %s) = %v, %v; want false", blk.Cid, ok, err)
		}
	}
	st, err := s.Stat(t.Context())
	if err != nil {
		t.Fatal(err)
	}
	if st.Blocks != 1 || st.Bytes != int64(len(kept.Data)) {
		t.Fatalf("Stat = %+v; want only the one committed block", st)
	}
}
