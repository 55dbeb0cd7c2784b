package blockstore_test

import (
	"bytes"
	"context"
	"encoding/binary"
	"errors"
	"os"
	"path/filepath"
	"runtime"
	"testing"
	"time"

	"github.com/ipfs/go-cid"
	bolt "go.etcd.io/bbolt"

	"github.com/casd/casd/blockstore"
	"github.com/casd/casd/blockstore/blockstoretest"
)

// writers are the three ways to store a block.
var writers = []struct {
	name  string
	write func(context.Context, *blockstore.Store, blockstore.Block) error
}{
	{"Put", func(ctx context.Context, s *blockstore.Store, b blockstore.Block) error { return s.Put(ctx, b) }},
	{"PutMany", func(ctx context.Context, s *blockstore.Store, b blockstore.Block) error {
		return s.PutMany(ctx, []blockstore.Block{b})
	}},
	{"Batch", func(ctx context.Context, s *blockstore.Store, b blockstore.Block) error {
		bt := s.NewBatch()
		if err := bt.Stage(ctx, b); err != nil {
			return errors.Join(err, bt.Discard())
		}
		return bt.Commit(ctx)
	}},
}

// TestWriteRepairsWrongLengthFile: a block file cut short or grown (a full
// disk, a crash on a file system without ordered writes, a stray append)
// is replaced when the block is stored again, as re-adding a file does,
// and the byte count follows.
func TestWriteRepairsWrongLengthFile(t *testing.T) {
	damages := map[string]func(path string) error{
		"truncated": func(p string) error { return os.Truncate(p, 100) },
		"emptied":   func(p string) error { return os.Truncate(p, 0) },
		"grown": func(p string) error {
			f, err := os.OpenFile(p, os.O_APPEND|os.O_WRONLY, 0)
			if err != nil {
				return err
			}
			_, err = f.Write([]byte("trailing junk"))
			return errors.Join(err, f.Close())
		},
	}
	for _, w := range writers {
		for name, damage := range damages {
			t.Run(w.name+"/"+name, func(t *testing.T) {
				r := newRepo(t)
				s, err := blockstore.Open(r.blocks, r.meta)
				if err != nil {
					t.Fatal(err)
				}
				ctx := t.Context()
				b := blockstoretest.RandomBlock(blockstoretest.NewRand(40), 5000)
				other := blockstoretest.RandomBlock(blockstoretest.NewRand(41), 700)
				blockstoretest.MustPut(t, s, b, other)
				if err := s.Close(); err != nil {
					t.Fatal(err)
				}
				// The damage happens while casd is down; the next Open
				// counts the file as it finds it.
				if err := damage(r.path(b.Cid)); err != nil {
					t.Fatal(err)
				}
				s = r.open(t)
				if err := w.write(ctx, s, b); err != nil {
					t.Fatalf("%s over a damaged file: %v", w.name, err)
				}
				got, err := os.ReadFile(r.path(b.Cid))
				if err != nil || !bytes.Equal(got, b.Data) {
					t.Fatalf("block file after %s: %d bytes (%v); want the block's %d", w.name, len(got), err, len(b.Data))
				}
				st, err := s.Stat(ctx)
				if err != nil {
					t.Fatal(err)
				}
				if want := (blockstore.Stat{Blocks: 2, Bytes: int64(len(b.Data) + len(other.Data))}); st != want {
					t.Fatalf("Stat = %+v; want %+v", st, want)
				}
				rep, err := s.Verify(ctx, blockstoretest.Links)
				if err != nil || rep.Checked != 2 || len(rep.Corrupt)+len(rep.Missing) != 0 {
					t.Fatalf("Verify = %+v, %v; want 2 good blocks", rep, err)
				}
			})
		}
	}
}

// TestWriteReportsFailure: when a block cannot be written (here a file
// sits where its shard directory belongs), every writer says so and
// nothing is counted.
func TestWriteReportsFailure(t *testing.T) {
	for _, w := range writers {
		t.Run(w.name, func(t *testing.T) {
			r := newRepo(t)
			s := r.open(t)
			b := blockstoretest.RandomBlock(blockstoretest.NewRand(42), 3000)
			if err := os.WriteFile(filepath.Dir(r.path(b.Cid)), []byte("not a directory"), 0o600); err != nil {
				t.Fatal(err)
			}
			if err := w.write(t.Context(), s, b); err == nil {
				t.Fatalf("%s into a shard that is a file succeeded", w.name)
			}
			if _, err := s.Get(t.Context(), b.Cid); err == nil {
				t.Fatal("Get of a block that could not be written succeeded")
			}
			if st, err := s.Stat(t.Context()); err != nil || st != (blockstore.Stat{}) {
				t.Fatalf("Stat = %+v, %v; want nothing stored", st, err)
			}
		})
	}
}

// TestOpenRefusesNewerMetadata: a metadata database written by a newer
// casd (or damaged) is refused rather than misread; one this version
// wrote opens again.
func TestOpenRefusesNewerMetadata(t *testing.T) {
	for _, tt := range []struct {
		name    string
		version []byte
		ok      bool
	}{
		{"same version", binary.BigEndian.AppendUint32(nil, 2), true},
		{"version 1 (8-byte pins)", binary.BigEndian.AppendUint32(nil, 1), true},
		{"older version", binary.BigEndian.AppendUint32(nil, 0), true},
		{"newer version", binary.BigEndian.AppendUint32(nil, 3), false},
		{"garbled version", []byte{1}, false},
	} {
		t.Run(tt.name, func(t *testing.T) {
			r := newRepo(t)
			s, err := blockstore.Open(r.blocks, r.meta)
			if err != nil {
				t.Fatal(err)
			}
			if err := s.Pin(t.Context(), blockstoretest.NewBlock([]byte("x")).Cid, "owner"); err != nil {
				t.Fatal(err)
			}
			if err := s.Close(); err != nil {
				t.Fatal(err)
			}
			db, err := bolt.Open(r.meta, 0o600, &bolt.Options{Timeout: time.Second})
			if err != nil {
				t.Fatal(err)
			}
			err = db.Update(func(tx *bolt.Tx) error { return tx.Bucket([]byte("meta")).Put([]byte("version"), tt.version) })
			if err := errors.Join(err, db.Close()); err != nil {
				t.Fatal(err)
			}
			s, err = blockstore.Open(r.blocks, r.meta)
			if !tt.ok {
				if err == nil {
					_ = s.Close()
					t.Fatal("Open of a database of another schema succeeded")
				}
				if errors.Is(err, blockstore.ErrLocked) {
					t.Fatalf("Open: %v; want a schema error, not ErrLocked", err)
				}
				return
			}
			if err != nil {
				t.Fatalf("Open: %v", err)
			}
			defer s.Close()
			if pins, err := s.Pins(t.Context()); err != nil || len(pins) != 1 {
				t.Fatalf("Pins after reopening = %v, %v; want the one pin", pins, err)
			}
		})
	}
}

// TestOversizeBlockFile: a block file longer than MaxBlockSize (nothing
// the store writes) is corrupt to Verify, pinned or not, and stops GC,
// which cannot read what such a block links to.
func TestOversizeBlockFile(t *testing.T) {
	r := newRepo(t)
	s := r.open(t)
	ctx := t.Context()
	tree := blockstoretest.MakeTree(blockstoretest.NewRand(43), 2, 2, 100)
	loose := blockstoretest.NewBlock([]byte("loose"))
	garbage := blockstoretest.NewBlock([]byte("garbage"))
	blockstoretest.MustPut(t, s, tree.Blocks...)
	blockstoretest.MustPut(t, s, loose, garbage)
	if err := s.Pin(ctx, tree.Root, "owner"); err != nil {
		t.Fatal(err)
	}
	big := bytes.Repeat([]byte{'x'}, blockstore.MaxBlockSize+1)
	for _, c := range []cid.Cid{tree.Root, loose.Cid} {
		if err := os.WriteFile(r.path(c), big, 0o600); err != nil {
			t.Fatal(err)
		}
	}
	rep, err := within(t, func() (blockstore.VerifyReport, error) { return s.Verify(ctx, blockstoretest.Links) })
	if err != nil {
		t.Fatalf("Verify: %v", err)
	}
	if len(rep.Corrupt) != 2 || len(rep.Missing) != 0 {
		t.Fatalf("Verify = %+v; want the pinned root and the loose block corrupt", rep)
	}
	_, err = within(t, func() (blockstore.GCResult, error) { return s.GC(ctx, blockstoretest.Links) })
	if !errors.Is(err, blockstore.ErrTooLarge) {
		t.Fatalf("GC over an oversize pinned root: error %v; want ErrTooLarge", err)
	}
	if ok, _ := s.Has(ctx, garbage.Cid); !ok {
		t.Fatal("GC removed blocks though it could not read a pinned root")
	}
}

// TestVerifyChecksEveryBlock: Verify rehashes every block, however many
// there are beside the pinned ones, and finds a bad one wherever it is.
func TestVerifyChecksEveryBlock(t *testing.T) {
	r := newRepo(t)
	s := r.open(t)
	ctx := t.Context()
	rng := blockstoretest.NewRand(44)
	tree := blockstoretest.MakeTree(rng, 3, 3, 50)
	blockstoretest.MustPut(t, s, tree.Blocks...)
	if err := s.Pin(ctx, tree.Root, "owner"); err != nil {
		t.Fatal(err)
	}
	var loose []blockstore.Block
	for range 4*runtime.GOMAXPROCS(0) + 20 { // more than Verify has workers
		loose = append(loose, blockstoretest.RandomBlock(rng, 64))
	}
	blockstoretest.MustPut(t, s, loose...)
	bad := loose[len(loose)/2]
	if err := os.WriteFile(r.path(bad.Cid), []byte("bit rot"), 0o600); err != nil {
		t.Fatal(err)
	}
	rep, err := within(t, func() (blockstore.VerifyReport, error) { return s.Verify(ctx, blockstoretest.Links) })
	if err != nil {
		t.Fatalf("Verify: %v", err)
	}
	if want := len(tree.Blocks) + len(loose); rep.Checked != want {
		t.Fatalf("Verify checked %d blocks; want %d", rep.Checked, want)
	}
	if len(rep.Corrupt) != 1 || !rep.Corrupt[0].Equals(bad.Cid) || len(rep.Missing) != 0 {
		t.Fatalf("Verify = %+v; want only %s corrupt", rep, bad.Cid)
	}
}

// TestVerifySkipsStrayFiles: a file that is not a block, even one listed
// before every block, is skipped and the blocks are all checked.
func TestVerifySkipsStrayFiles(t *testing.T) {
	r := newRepo(t)
	s := r.open(t)
	var bs []blockstore.Block
	rng := blockstoretest.NewRand(45)
	for range 20 {
		bs = append(bs, blockstoretest.RandomBlock(rng, 32))
	}
	blockstoretest.MustPut(t, s, bs...)
	// "22" sorts before every other shard name of the base32 alphabet.
	if err := os.MkdirAll(filepath.Join(r.blocks, "22"), 0o700); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(filepath.Join(r.blocks, "22", "not-a-cid"), []byte("x"), 0o600); err != nil {
		t.Fatal(err)
	}
	rep, err := s.Verify(t.Context(), blockstoretest.Links)
	if err != nil {
		t.Fatalf("Verify: %v", err)
	}
	if rep.Checked != len(bs) || len(rep.Corrupt)+len(rep.Missing) != 0 {
		t.Fatalf("Verify = %+v; want %d blocks checked, all good", rep, len(bs))
	}
}

// within runs f and returns what it returns, failing t if f takes more than
// a few seconds (what these tests run takes milliseconds): a store that
// hangs fails the test rather than the whole test binary. f then runs on,
// leaked, until the binary exits.
func within[T any](t *testing.T, f func() (T, error)) (T, error) {
	t.Helper()
	type result struct {
		v   T
		err error
	}
	done := make(chan result, 1)
	go func() {
		v, err := f()
		done <- result{v, err}
	}()
	select {
	case r := <-done:
		return r.v, r.err
	case <-time.After(5 * time.Second):
		t.Fatal("still running after 5s")
		panic("unreachable")
	}
}

// TestMaxSizeBlockIsWalked: a block of exactly MaxBlockSize bytes is a
// good block to Verify and GC, as it is to Put and Get.
func TestMaxSizeBlockIsWalked(t *testing.T) {
	s := newStore(t)
	ctx := t.Context()
	big := blockstoretest.RandomBlock(blockstoretest.NewRand(46), blockstore.MaxBlockSize)
	root := blockstoretest.Node(big.Cid)
	blockstoretest.MustPut(t, s, big, root)
	if err := s.Pin(ctx, root.Cid, "owner"); err != nil {
		t.Fatal(err)
	}
	rep, err := within(t, func() (blockstore.VerifyReport, error) { return s.Verify(ctx, blockstoretest.Links) })
	if err != nil || rep.Checked != 2 || len(rep.Corrupt)+len(rep.Missing) != 0 {
		t.Fatalf("Verify = %+v, %v; want both blocks good", rep, err)
	}
	res, err := within(t, func() (blockstore.GCResult, error) { return s.GC(ctx, blockstoretest.Links) })
	if err != nil || res != (blockstore.GCResult{}) {
		t.Fatalf("GC = %+v, %v; want nothing removed", res, err)
	}
}
