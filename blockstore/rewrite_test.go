package blockstore_test

import (
	"bytes"
	"errors"
	"os"
	"path/filepath"
	"testing"

	"github.com/casd/casd/blockstore"
	"github.com/casd/casd/blockstore/blockstoretest"
)

// TestRewriteRepairsFlippedByte: a block whose file has one byte flipped
// (same length, so Put leaves it alone) is replaced by Rewrite with a good
// copy; the counters do not move, Verify is clean, and no temporary file
// is left. Put alone does not repair it, which is why Rewrite exists.
func TestRewriteRepairsFlippedByte(t *testing.T) {
	r := newRepo(t)
	s := r.open(t)
	ctx := t.Context()
	b := blockstoretest.RandomBlock(blockstoretest.NewRand(50), 9000)
	other := blockstoretest.RandomBlock(blockstoretest.NewRand(51), 300)
	blockstoretest.MustPut(t, s, b, other)
	before, err := s.Stat(ctx)
	if err != nil {
		t.Fatal(err)
	}
	flip(t, r.path(b.Cid))

	if err := s.Put(ctx, b); err != nil {
		t.Fatal(err)
	}
	if rep, err := s.Verify(ctx, blockstoretest.Links); err != nil || len(rep.Corrupt) != 1 {
		t.Fatalf("Verify after Put over a flipped byte = %+v, %v; want the block still corrupt", rep, err)
	}

	if err := s.Rewrite(ctx, b); err != nil {
		t.Fatalf("Rewrite: %v", err)
	}
	got, err := s.Get(ctx, b.Cid)
	if err != nil || !bytes.Equal(got, b.Data) {
		t.Fatalf("Get after Rewrite: %d bytes (%v), want the block's %d", len(got), err, len(b.Data))
	}
	if st, err := s.Stat(ctx); err != nil || st != before {
		t.Fatalf("Stat after Rewrite = %+v, %v; want %+v as before the damage", st, err, before)
	}
	if rep, err := s.Verify(ctx, blockstoretest.Links); err != nil || rep.Checked != 2 || len(rep.Corrupt)+len(rep.Missing) != 0 {
		t.Fatalf("Verify after Rewrite = %+v, %v; want 2 good blocks", rep, err)
	}
	if tmp := tempFiles(t, filepath.Dir(r.path(b.Cid))); len(tmp) != 0 {
		t.Fatalf("Rewrite left temporary files %q", tmp)
	}
}

// TestRewriteRefusesBadData: Rewrite never replaces a block with bytes that
// do not hash to its CID, and a missing block is stored and counted.
func TestRewriteRefusesBadData(t *testing.T) {
	r := newRepo(t)
	s := r.open(t)
	ctx := t.Context()
	b := blockstoretest.RandomBlock(blockstoretest.NewRand(52), 4000)
	blockstoretest.MustPut(t, s, b)

	bad := blockstore.Block{Cid: b.Cid, Data: bytes.Clone(b.Data)}
	bad.Data[7] ^= 1
	if err := s.Rewrite(ctx, bad); !errors.Is(err, blockstore.ErrCorrupt) {
		t.Fatalf("Rewrite with wrong bytes = %v, want ErrCorrupt", err)
	}
	if got, err := s.Get(ctx, b.Cid); err != nil || !bytes.Equal(got, b.Data) {
		t.Fatalf("the good block changed after a refused Rewrite (%v)", err)
	}

	fresh := blockstoretest.RandomBlock(blockstoretest.NewRand(53), 1234)
	if err := s.Rewrite(ctx, fresh); err != nil {
		t.Fatalf("Rewrite of a missing block: %v", err)
	}
	st, err := s.Stat(ctx)
	if err != nil {
		t.Fatal(err)
	}
	if want := (blockstore.Stat{Blocks: 2, Bytes: int64(len(b.Data) + len(fresh.Data))}); st != want {
		t.Fatalf("Stat = %+v; want %+v", st, want)
	}
}

// flip inverts one bit in the middle of the file at p.
func flip(t *testing.T, p string) {
	t.Helper()
	data, err := os.ReadFile(p)
	if err != nil {
		t.Fatal(err)
	}
	data[len(data)/2] ^= 0x01
	if err := os.WriteFile(p, data, 0o600); err != nil {
		t.Fatal(err)
	}
}

// TestRewriteCountsSizeChange: a block file cut short while the store was
// closed is counted at its damaged size by Open, and at its true size
// once Rewrite has replaced it.
func TestRewriteCountsSizeChange(t *testing.T) {
	r := newRepo(t)
	s, err := blockstore.Open(r.blocks, r.meta)
	if err != nil {
		t.Fatal(err)
	}
	ctx := t.Context()
	b := blockstoretest.RandomBlock(blockstoretest.NewRand(54), 6000)
	blockstoretest.MustPut(t, s, b)
	if err := s.Close(); err != nil {
		t.Fatal(err)
	}
	if err := os.Truncate(r.path(b.Cid), 1000); err != nil {
		t.Fatal(err)
	}
	s = r.open(t)
	if err := s.Rewrite(ctx, b); err != nil {
		t.Fatal(err)
	}
	st, err := s.Stat(ctx)
	if err != nil {
		t.Fatal(err)
	}
	if want := (blockstore.Stat{Blocks: 1, Bytes: int64(len(b.Data))}); st != want {
		t.Fatalf("Stat after rewriting a truncated block = %+v; want %+v", st, want)
	}
}
