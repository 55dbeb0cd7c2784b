package blockstore

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"maps"
	"path/filepath"
	"runtime"
	"slices"
	"sync"
	"testing"
	"time"

	"github.com/ipfs/go-cid"
	"github.com/multiformats/go-multihash"

	"github.com/casd/casd/internal/fsutil"
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
// GC is first seen to wait at its lock (gcWaiting). From then on a GC that ignored the guard would be
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
	for s.gc.gcWaiting() == 0 {
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

// TestPendingSyncsBalanced: each writer that registers a pending shard
// fsync (its own rename, or a present block it reports durable) releases
// exactly that registration once the shard directory is synced. A leak
// would make every later put into the shard pay a directory fsync; a
// release of someone else's registration would let a writer report a block
// durable whose rename may not survive a crash.
func TestPendingSyncsBalanced(t *testing.T) {
	dir := t.TempDir()
	s, err := Open(filepath.Join(dir, "blocks"), filepath.Join(dir, "meta.db"))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = s.Close() })
	ctx := t.Context()
	pending := func() map[string]int {
		s.pendingMu.Lock()
		defer s.pendingMu.Unlock()
		return maps.Clone(s.pending)
	}

	// Blocks that all land in one shard, and one elsewhere.
	var same []Block
	var shard string
	for i := 0; len(same) < 6; i++ {
		b := rawBlock(fmt.Appendf(nil, "block %d", i))
		p, err := s.pathOf(b.Cid)
		if err != nil {
			t.Fatal(err)
		}
		if shard == "" {
			shard = p.shard
		}
		if p.shard == shard {
			same = append(same, b)
		}
	}
	var elsewhere Block
	for i := 0; ; i++ {
		elsewhere = rawBlock(fmt.Appendf(nil, "elsewhere %d", i))
		if p, _ := s.pathOf(elsewhere.Cid); p.shard != shard {
			break
		}
	}
	writes := func() {
		t.Helper()
		if err := s.Put(ctx, same[0]); err != nil { // new
			t.Fatal(err)
		}
		if err := s.Put(ctx, same[0]); err != nil { // present
			t.Fatal(err)
		}
		if err := s.PutMany(ctx, []Block{same[1], same[2], same[0], elsewhere}); err != nil {
			t.Fatal(err)
		}
		b := s.NewBatch()
		for _, blk := range []Block{same[3], same[1], same[4]} {
			if err := b.Stage(ctx, blk); err != nil {
				t.Fatal(err)
			}
		}
		if err := b.Commit(ctx); err != nil {
			t.Fatal(err)
		}
		if err := s.Delete(ctx, same[4].Cid); err != nil {
			t.Fatal(err)
		}
		if err := s.PutMany(ctx, []Block{same[4], same[5]}); err != nil {
			t.Fatal(err)
		}
	}

	writes()
	if p := pending(); len(p) != 0 {
		t.Fatalf("pending shard syncs after every write returned: %v; want none", p)
	}

	// Another writer has renamed a block into the shard and not yet synced
	// it: every write above must leave its registration as it found it.
	for _, b := range same {
		if err := s.Delete(ctx, b.Cid); err != nil {
			t.Fatal(err)
		}
	}
	s.pendingMu.Lock()
	s.pending[shard] = 1
	s.pendingMu.Unlock()
	writes()
	if p := pending(); len(p) != 1 || p[shard] != 1 {
		t.Fatalf("pending shard syncs = %v; want only the other writer's {%s: 1}", p, shard)
	}
	s.donePending(shard)
	if p := pending(); len(p) != 0 {
		t.Fatalf("pending shard syncs after the other writer's release = %v; want none", p)
	}
}

// TestHasSyncsPendingShard: a block that another writer renamed into place
// without fsyncing its shard directory yet may vanish in a crash; Has
// fsyncs that directory before it reports the block, since what Has
// reports gets pinned (a store's completeness check pins and acknowledges
// a root whose blocks are all present). The other writer's registration
// stays, and a shard with nothing pending costs Has no fsync.
func TestHasSyncsPendingShard(t *testing.T) {
	dir := t.TempDir()
	s, err := Open(filepath.Join(dir, "blocks"), filepath.Join(dir, "meta.db"))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = s.Close() })
	ctx := t.Context()
	b := rawBlock([]byte("renamed, not yet durable"))
	if err := s.Put(ctx, b); err != nil {
		t.Fatal(err)
	}
	p, err := s.pathOf(b.Cid)
	if err != nil {
		t.Fatal(err)
	}
	var synced []string
	s.syncDir = func(d string) error {
		synced = append(synced, d)
		return fsutil.SyncDir(d)
	}

	s.pendingMu.Lock()
	s.pending[p.shard] = 1 // another writer's rename, its fsync to come
	s.pendingMu.Unlock()
	ok, err := s.Has(ctx, b.Cid)
	if err != nil || !ok {
		t.Fatalf("Has = %v, %v; want true", ok, err)
	}
	shardDir := filepath.Join(s.dir, p.shard)
	if !slices.Equal(synced, []string{shardDir}) {
		t.Fatalf("Has of a block whose rename is pending fsynced %q, want %q", synced, shardDir)
	}
	s.pendingMu.Lock()
	left := s.pending[p.shard]
	s.pendingMu.Unlock()
	if left != 1 {
		t.Fatalf("pending syncs of the shard after Has = %d, want the other writer's 1", left)
	}

	s.donePending(p.shard)
	synced = nil
	if ok, err := s.Has(ctx, b.Cid); err != nil || !ok {
		t.Fatalf("Has = %v, %v; want true", ok, err)
	}
	if len(synced) != 0 {
		t.Fatalf("Has with nothing pending fsynced %q, want nothing", synced)
	}
}

func FuzzDecodePin(f *testing.F) {
	b := rawBlock([]byte("root"))
	f.Add(pinKey(b.Cid, "owner"), []byte{0, 0, 0, 0, 0, 0, 0, 1})
	f.Add([]byte{0x01}, []byte{})
	f.Add([]byte{}, []byte{1, 2, 3, 4, 5, 6, 7, 8})
	f.Add(pinKey(b.Cid, "replica:k"), []byte{0, 0, 0, 0, 0, 0, 0, 1, 0, 0, 0, 0, 0, 0, 0, 2})
	f.Fuzz(func(t *testing.T, k, v []byte) {
		p, err := decodePin(k, v)
		if err != nil {
			return
		}
		// What decodes re-encodes to the same bytes (an old 8-byte value
		// to its 16-byte form).
		if got := pinKey(p.Root, p.Reason); !bytes.Equal(got, k) {
			t.Fatalf("pinKey(decodePin(%x)) = %x", k, got)
		}
		want := v
		if len(v) == 8 {
			want = append(bytes.Clone(v), 0, 0, 0, 0, 0, 0, 0, 0)
		}
		if got := pinValue(p.Created, p.Expires); !bytes.Equal(got, want) {
			t.Fatalf("pinValue(decodePin(%x)) = %x", v, got)
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

// TestWaitingGCHoldsNoGuardOff: a GC waiting on a guard (a slow transfer)
// neither blocks new guards (adds) nor ignores its context; a GC that runs
// holds new guards off until it is done.
func TestWaitingGCHoldsNoGuardOff(t *testing.T) {
	dir := t.TempDir()
	s, err := Open(filepath.Join(dir, "blocks"), filepath.Join(dir, "meta.db"))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = s.Close() })
	none := func(cid.Cid, []byte) ([]cid.Cid, error) { return nil, nil }

	slow := s.GCGuard() // a trickling transfer
	ctx, cancel := context.WithCancel(t.Context())
	gcDone := make(chan error, 1)
	go func() {
		_, err := s.GC(ctx, none)
		gcDone <- err
	}()
	waitUntil(t, func() bool { return s.gc.gcWaiting() == 1 }, "GC never waited")
	added := make(chan struct{})
	go func() {
		release := s.GCGuard() // an add while GC waits
		release()
		close(added)
	}()
	select {
	case <-added:
	case <-time.After(30 * time.Second):
		t.Fatal("an add waited behind a GC that waits for a transfer")
	}
	cancel()
	select {
	case err := <-gcDone:
		if !errors.Is(err, context.Canceled) {
			t.Fatalf("GC = %v, want its context's error", err)
		}
	case <-time.After(30 * time.Second):
		t.Fatal("GC ignored its context while waiting")
	}
	slow()

	// A GC that runs holds a new guard off until it is done.
	marking, proceed := make(chan struct{}), make(chan struct{})
	pin := rawBlock([]byte("pinned"))
	if err := s.Put(t.Context(), pin); err != nil {
		t.Fatal(err)
	}
	if err := s.Pin(t.Context(), pin.Cid, "owner"); err != nil {
		t.Fatal(err)
	}
	go func() {
		_, err := s.GC(t.Context(), func(cid.Cid, []byte) ([]cid.Cid, error) {
			close(marking)
			<-proceed
			return nil, nil
		})
		gcDone <- err
	}()
	<-marking
	got := make(chan struct{})
	go func() {
		release := s.GCGuard()
		close(got)
		release()
	}()
	waitUntil(t, func() bool {
		s.gc.mu.Lock()
		defer s.gc.mu.Unlock()
		return s.gc.guardWaiting == 1
	}, "a guard taken while GC marked did not wait")
	select {
	case <-got:
		t.Fatal("a guard was taken while GC marked")
	default:
	}
	close(proceed)
	<-got
	if err := <-gcDone; err != nil {
		t.Fatal(err)
	}
}

func waitUntil(t *testing.T, cond func() bool, msg string) {
	t.Helper()
	deadline := time.Now().Add(30 * time.Second)
	for !cond() {
		if time.Now().After(deadline) {
			t.Fatal(msg)
		}
		runtime.Gosched()
	}
}
