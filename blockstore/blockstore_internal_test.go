package blockstore

import (
	"bytes"
	"path/filepath"
	"runtime"
	"sync"
	"testing"
	"time"

	"github.com/ipfs/go-cid"
	"github.com/multiformats/go-multihash"
)

func rawBlock(data []byte) Block {
	h, err := multihash.Sum(data, multihash.SHA2_256, -1)
	if err != nil {
		panic(err)
	}
	return Block{Cid: cid.NewCidV1(cid.Raw, h), Data: data}
}

// TestGCWaitsForGuard: while a guard is held, GC neither marks nor sweeps;
// once it is released GC runs and keeps what was pinned under the guard.
//
// GC is first seen to reach its lock (a writer waiting on, or holding, gcMu
// makes TryRLock fail). From then on a GC that ignored the guard would be
// running, and would call the LinkFunc on the pinned root within
// microseconds; the test gives it guardWait to show before it goes on.
// The guard itself never lets a correct GC through, so the test cannot
// fail spuriously: the wait only bounds how long a broken guard has to be
// caught.
func TestGCWaitsForGuard(t *testing.T) {
	const guardWait = 300 * time.Millisecond
	dir := t.TempDir()
	s, err := Open(filepath.Join(dir, "blocks"), filepath.Join(dir, "meta.db"))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = s.Close() })
	ctx := t.Context()
	garbage, kept, added := rawBlock([]byte("garbage")), rawBlock([]byte("kept")), rawBlock([]byte("added"))
	for _, b := range []Block{garbage, kept} {
		if err := s.Put(ctx, b); err != nil {
			t.Fatal(err)
		}
	}
	if err := s.Pin(ctx, kept.Cid, "owner"); err != nil {
		t.Fatal(err)
	}

	release := s.GCGuard()
	defer release()
	// A writer adding a tree: its first block is stored under the guard,
	// its root pinned later.
	if err := s.Put(ctx, added); err != nil {
		t.Fatal(err)
	}
	marking := make(chan struct{})
	var markOnce sync.Once
	links := func(cid.Cid, []byte) ([]cid.Cid, error) {
		markOnce.Do(func() { close(marking) })
		return nil, nil
	}
	type result struct {
		res GCResult
		err error
	}
	done := make(chan result, 1)
	go func() {
		res, err := s.GC(ctx, links)
		done <- result{res, err}
	}()
	ranEarly := func() {
		t.Helper()
		select {
		case <-marking:
			t.Fatal("GC marked while a guard was held")
		case r := <-done:
			t.Fatalf("GC returned (%+v, %v) while a guard was held", r.res, r.err)
		default:
		}
	}
	deadline := time.Now().Add(30 * time.Second)
	for s.gcMu.TryRLock() {
		s.gcMu.RUnlock()
		ranEarly()
		if time.Now().After(deadline) {
			t.Fatal("GC never reached its lock")
		}
		runtime.Gosched()
	}
	select {
	case <-marking:
	case <-done:
	case <-time.After(guardWait):
	}
	ranEarly()
	if ok, err := s.Has(ctx, added.Cid); err != nil || !ok {
		t.Fatalf("block put under the guard is gone before its pin (%v)", err)
	}
	if err := s.Pin(ctx, added.Cid, "owner"); err != nil {
		t.Fatal(err)
	}
	release()

	var r result
	select {
	case r = <-done:
	case <-time.After(30 * time.Second):
		t.Fatal("GC still waiting 30s after the guard was released")
	}
	select {
	case <-marking:
	default:
		t.Fatal("GC returned without marking the pinned roots")
	}
	if r.err != nil || r.res.Removed != 1 || r.res.Freed != int64(len(garbage.Data)) {
		t.Fatalf("GC = %+v, %v; want the garbage block removed", r.res, r.err)
	}
	for _, b := range []Block{kept, added} {
		if ok, err := s.Has(ctx, b.Cid); err != nil || !ok {
			t.Fatalf("GC removed pinned block %q (%v)", b.Data, err)
		}
	}
}

func FuzzDecodePin(f *testing.F) {
	b := rawBlock([]byte("root"))
	f.Add(pinKey(b.Cid, "owner"), []byte{0, 0, 0, 0, 0, 0, 0, 1})
	f.Add([]byte{0x01}, []byte{})
	f.Add([]byte{}, []byte{1, 2, 3, 4, 5, 6, 7, 8})
	f.Fuzz(func(t *testing.T, k, v []byte) {
		p, err := decodePin(k, v)
		if err != nil {
			return
		}
		// What decodes re-encodes to the same bytes.
		if got := pinKey(p.Root, p.Reason); !bytes.Equal(got, k) {
			t.Fatalf("pinKey(decodePin(%x)) = %x", k, got)
		}
	})
}

func FuzzParseName(f *testing.F) {
	b := rawBlock([]byte("name"))
	name := b.Cid.String()
	f.Add(shardOf(name), name)
	f.Add("aa", "not-a-cid")
	f.Add("mi", "QmYwAPJzv5CZsnA625s3Xf2nemtYgPpHdWEz79ojWnPbdG")
	f.Fuzz(func(t *testing.T, shard, name string) {
		c, err := parseName(shard, name)
		if err != nil {
			return
		}
		if c.String() != name || shardOf(name) != shard {
			t.Fatalf("parseName(%q, %q) = %s", shard, name, c)
		}
	})
}
