package blockstore

import (
	"bytes"
	"path/filepath"
	"runtime"
	"testing"

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

// TestGCWaitsForGuard checks that GC blocks while a guard is held and
// then keeps what was pinned under the guard.
func TestGCWaitsForGuard(t *testing.T) {
	dir := t.TempDir()
	s, err := Open(filepath.Join(dir, "blocks"), filepath.Join(dir, "meta.db"))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = s.Close() })
	ctx := t.Context()
	garbage, added := rawBlock([]byte("garbage")), rawBlock([]byte("added"))
	if err := s.Put(ctx, garbage); err != nil {
		t.Fatal(err)
	}

	release := s.GCGuard()
	type result struct {
		res GCResult
		err error
	}
	done := make(chan result, 1)
	go func() {
		res, err := s.GC(ctx, func(cid.Cid, []byte) ([]cid.Cid, error) { return nil, nil })
		done <- result{res, err}
	}()
	// Wait until GC is queued on the lock: a pending writer makes
	// TryRLock fail.
	for s.gcMu.TryRLock() {
		s.gcMu.RUnlock()
		runtime.Gosched()
	}
	select {
	case r := <-done:
		t.Fatalf("GC ran while a guard was held: %+v", r)
	default:
	}
	if err := s.Put(ctx, added); err != nil {
		t.Fatal(err)
	}
	if err := s.Pin(ctx, added.Cid, "owner"); err != nil {
		t.Fatal(err)
	}
	release()
	r := <-done
	if r.err != nil || r.res.Removed != 1 || r.res.Freed != int64(len(garbage.Data)) {
		t.Fatalf("GC = %+v, %v; want the garbage block removed", r.res, r.err)
	}
	if ok, _ := s.Has(ctx, added.Cid); !ok {
		t.Fatal("GC removed the block pinned under the guard")
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
