package node

import (
	"bytes"
	"context"
	"crypto/ed25519"
	"crypto/rand"
	"sync"
	"testing"
	"time"

	"github.com/ipfs/go-cid"
	"github.com/stretchr/testify/require"

	"github.com/casd/casd/blockstore"
	"github.com/casd/casd/core"
	"github.com/casd/casd/crypt"
	"github.com/casd/casd/protocol"
	"github.com/casd/casd/protocol/pb"
)

// addFile adds size random bytes to n as its own file and returns the
// root and the tree's bytes.
func addFile(t *testing.T, n *Node, size int) (cid.Cid, int64) {
	t.Helper()
	data := make([]byte, size)
	_, err := rand.Read(data)
	require.NoError(t, err)
	res, err := n.Add(t.Context(), bytes.NewReader(data), core.AddOptions{Name: "f"})
	require.NoError(t, err)
	root, err := cid.Decode(res.Cid)
	require.NoError(t, err)
	total, err := treeBytes(t.Context(), n.store, root)
	require.NoError(t, err)
	return root, total
}

// receive stores src's tree of root through b as /cas/store does:
// reserve its charge, put its blocks, check it complete, pin it until
// lease, release.
func receive(t *testing.T, b *storeBackend, src *Node, root cid.Cid, owner ed25519.PublicKey, lease time.Time) error {
	t.Helper()
	var blocks []blockstore.Block
	var charge int64
	for blk, err := range treeBlocks(t, src, root) {
		require.NoError(t, err)
		blocks = append(blocks, blk)
		charge += int64(len(blk.Data)) + protocol.BlockCharge
	}
	release, err := b.Reserve(t.Context(), owner, root, charge)
	if err != nil {
		return err
	}
	defer release()
	require.NoError(t, b.PutMany(t.Context(), blocks))
	ok, err := b.Complete(t.Context(), root)
	require.NoError(t, err)
	require.True(t, ok)
	return b.Pin(t.Context(), root, owner, lease)
}

// offeredNow returns the backend's figure of the bytes held for others.
func offeredNow(t *testing.T, b *storeBackend) int64 {
	t.Helper()
	n, err := b.space.lock(t.Context(), b.store)
	require.NoError(t, err)
	b.space.unlock()
	return n
}

// holds reports whether store has every block of src's tree of root.
func holds(t *testing.T, store *blockstore.Store, src *Node, root cid.Cid) bool {
	t.Helper()
	for blk, err := range treeBlocks(t, src, root) {
		require.NoError(t, err)
		if ok, err := store.Has(t.Context(), blk.Cid); err != nil || !ok {
			return false
		}
	}
	return true
}

// sweptSome reports whether a finished sweep of rec removed blocks.
func sweptSome(rec *sweepRecorder) bool {
	for _, res := range rec.sweeps() {
		if res.Removed > 0 {
			return true
		}
	}
	return false
}

// pinned reports whether root has a pin of reason in store.
func pinned(t *testing.T, store *blockstore.Store, root cid.Cid, reason string) bool {
	t.Helper()
	pins, err := store.PinsOf(t.Context(), root)
	require.NoError(t, err)
	for _, p := range pins {
		if p.Reason == reason {
			return true
		}
	}
	return false
}

// TestLeaseExpiryDropsAndCollects: a replica whose lease ends is unpinned
// by the lease sweep, which asks for a collection that removes its
// blocks, and the space held for others goes back down; a replica whose
// lease was renewed in time stays, blocks and pin.
func TestLeaseExpiryDropsAndCollects(t *testing.T) {
	src, holder := openOffline(t), openOffline(t)
	rec := newSweepRecorder(t, holder)
	b := &storeBackend{store: holder.store, quota: 1 << 30, announce: func(cid.Cid) {}, collect: rec.coll.Request}
	sweep := newLeaseSweep(leaseSweepConfig{Next: holder.store.NextExpiry, Expire: b.expire})
	b.leased = sweep.notify
	sweep.Start()
	t.Cleanup(func() { require.NoError(t, sweep.Close()) })

	owner := ownerKey(t)
	lapsing, lapsingBytes := addFile(t, src, 3<<20)
	renewed, renewedBytes := addFile(t, src, 2<<20)
	now := time.Now()
	require.NoError(t, receive(t, b, src, renewed, owner, now.Add(3*time.Second)))
	require.NoError(t, b.Renew(t.Context(), owner, renewed, now.Add(time.Hour)))
	require.NoError(t, receive(t, b, src, lapsing, owner, now.Add(1500*time.Millisecond)))
	require.Equal(t, lapsingBytes+renewedBytes, offeredNow(t, b))

	waitUntil(t, func() bool { return sweptSome(rec) }, "no collection removed anything")
	require.False(t, holds(t, holder.store, src, lapsing), "the blocks of a replica whose lease ended were not collected")
	require.False(t, pinned(t, holder.store, lapsing, replicaReason(owner)))
	require.GreaterOrEqual(t, time.Since(now), 1500*time.Millisecond, "dropped before its lease ended")
	require.True(t, holds(t, holder.store, src, renewed), "a renewed replica lost blocks")
	require.True(t, pinned(t, holder.store, renewed, replicaReason(owner)), "a renewed replica was unpinned")
	require.Equal(t, renewedBytes, offeredNow(t, b))
}

// TestRemoveFreesAtOnce: a signed Remove unpins the owner's replica and
// its blocks are collected without waiting for the lease; another
// owner's pin of the same root keeps the tree (and its space) until it
// goes too; removing again is no error, and renewing what was removed is
// refused as not held.
func TestRemoveFreesAtOnce(t *testing.T) {
	src, holder := openOffline(t), openOffline(t)
	rec := newSweepRecorder(t, holder)
	b := &storeBackend{store: holder.store, quota: 1 << 30, announce: func(cid.Cid) {}, collect: rec.coll.Request}
	root, size := addFile(t, src, 3<<20)
	alice, bob := ownerKey(t), ownerKey(t)
	lease := time.Now().Add(time.Hour)
	require.NoError(t, receive(t, b, src, root, alice, lease))
	require.NoError(t, receive(t, b, src, root, bob, lease))
	require.Equal(t, size, offeredNow(t, b), "one tree held for two owners counts once")

	require.NoError(t, b.Remove(t.Context(), alice, root))
	require.False(t, pinned(t, holder.store, root, replicaReason(alice)))
	require.Equal(t, size, offeredNow(t, b), "bob's replica still holds the tree")
	waitUntil(t, func() bool { return len(rec.sweeps()) > 0 }, "Remove asked for no collection")
	require.True(t, holds(t, holder.store, src, root), "a collection took blocks that bob's pin keeps")

	require.NoError(t, b.Remove(t.Context(), bob, root))
	waitUntil(t, func() bool { return sweptSome(rec) }, "no collection removed anything")
	require.False(t, holds(t, holder.store, src, root), "the removed replica's blocks were not collected")
	require.Zero(t, offeredNow(t, b))
	require.NoError(t, b.Remove(t.Context(), bob, root), "removing what is not held")
	err := b.Renew(t.Context(), bob, root, lease.Add(time.Hour))
	require.ErrorIs(t, err, protocol.ErrNotHeld)
	require.ErrorContains(t, err, "not held here")
	require.False(t, pinned(t, holder.store, root, replicaReason(bob)), "a refused renewal pinned the root")
}

// TestHeldFor: a tree challenge is answered only for the owner whose
// replica pin holds the root, not for another owner nor for an own file.
func TestHeldFor(t *testing.T) {
	src, holder := openOffline(t), openOffline(t)
	b := &storeBackend{store: holder.store, quota: 1 << 30, announce: func(cid.Cid) {}}
	root, _ := addFile(t, src, 1<<20)
	own, _ := addFile(t, holder, 1<<20)
	alice := ownerKey(t)
	require.NoError(t, receive(t, b, src, root, alice, time.Now().Add(time.Hour)))
	g := getBackend{holder.store}
	for _, tt := range []struct {
		name  string
		owner ed25519.PublicKey
		root  cid.Cid
		want  bool
	}{{"owner's replica", alice, root, true}, {"another owner", ownerKey(t), root, false}, {"own file", alice, own, false}} {
		got, err := g.HeldFor(t.Context(), tt.owner, tt.root)
		require.NoError(t, err)
		require.Equal(t, tt.want, got, tt.name)
	}
}

// sweepProbe fakes the pins of a leaseSweep: a settable next expiry, and
// the times Expire was called.
type sweepProbe struct {
	mu    sync.Mutex // guards the fields below
	next  time.Time
	calls []time.Time
}

func (p *sweepProbe) Next(context.Context) (time.Time, bool, error) {
	p.mu.Lock()
	defer p.mu.Unlock()
	return p.next, !p.next.IsZero(), nil
}

func (p *sweepProbe) Expire(_ context.Context, now time.Time) (int, error) {
	p.mu.Lock()
	defer p.mu.Unlock()
	p.calls = append(p.calls, now)
	return 0, nil
}

func (p *sweepProbe) set(next time.Time) {
	p.mu.Lock()
	defer p.mu.Unlock()
	p.next = next
}

func (p *sweepProbe) sweeps() []time.Time {
	p.mu.Lock()
	defer p.mu.Unlock()
	return append([]time.Time(nil), p.calls...)
}

// TestLeaseSweepRearms: with no lease the sweep sleeps its hour; a lease
// granted meanwhile (notify) re-arms its timer, and it sweeps at that
// lease's end, not before.
func TestLeaseSweepRearms(t *testing.T) {
	p := &sweepProbe{}
	sweep := newLeaseSweep(leaseSweepConfig{Next: p.Next, Expire: p.Expire, MinGap: time.Millisecond})
	sweep.Start()
	t.Cleanup(func() { require.NoError(t, sweep.Close()) })
	end := time.Now().Add(200 * time.Millisecond)
	p.set(end)
	sweep.notify()
	waitUntil(t, func() bool { return len(p.sweeps()) > 0 }, "a notified lease end was never swept")
	require.False(t, p.sweeps()[0].Before(end), "swept at %v, before the lease ended at %v", p.sweeps()[0], end)
}

// TestLeaseSweepGap: leases that end all the time (a past expiry that
// never goes) cost one sweep per MinGap, not a busy loop, however often
// the sweep is notified.
func TestLeaseSweepGap(t *testing.T) {
	const gap = 100 * time.Millisecond
	p := &sweepProbe{next: time.Now().Add(-time.Hour)}
	sweep := newLeaseSweep(leaseSweepConfig{Next: p.Next, Expire: p.Expire, MinGap: gap})
	sweep.Start()
	t.Cleanup(func() { require.NoError(t, sweep.Close()) })
	waitUntil(t, func() bool { sweep.notify(); return len(p.sweeps()) >= 4 }, "the sweep stopped sweeping")
	calls := p.sweeps()
	for i := 1; i < len(calls); i++ {
		require.GreaterOrEqual(t, calls[i].Sub(calls[i-1]), gap, "sweeps %d and %d", i-1, i)
	}
}

// TestHolderOverTheWire: the holder side as the network wires it. An
// owner's add places a replica on the holder under the default lease;
// the owner's tree challenge gets the proof the owner computes itself; a
// signed renewal extends the lease; a signed Remove unpins the replica
// and its blocks are collected at once, after which a renewal and a tree
// challenge are answered "not held".
func TestHolderOverTheWire(t *testing.T) {
	owner, holder := startTestNode(t, 1), startTestNode(t, 0)
	connect(t, owner, holder)
	connect(t, holder, owner)
	ctx := t.Context()
	res, err := owner.Add(ctx, bytes.NewReader(make([]byte, 3<<20)), core.AddOptions{Name: "x"})
	require.NoError(t, err)
	holderID := holder.net.stack.Host.ID()
	require.Equal(t, []string{holderID.String()}, res.Replicas)
	root, err := cid.Decode(res.Cid)
	require.NoError(t, err)
	key := crypt.OwnerKey(&owner.secrets.Master)
	reason := replicaReason(key.Public().(ed25519.PublicKey))
	expires := func() time.Time {
		pins, err := holder.store.PinsOf(ctx, root)
		require.NoError(t, err)
		for _, p := range pins {
			if p.Reason == reason {
				return p.Expires
			}
		}
		return time.Time{}
	}
	require.WithinDuration(t, time.Now().Add(protocol.DefaultLease), expires(), time.Minute)

	var nonce [pb.NonceSize]byte
	_, _ = rand.Read(nonce[:])
	h := owner.net.stack.Host
	proof, err := protocol.TreeChallenge(ctx, h, holderID, key, root, nonce)
	require.NoError(t, err)
	want, err := protocol.TreeProofs(ctx, owner.store, root, []protocol.TreeProver{{Peer: holderID, Nonce: nonce}})
	require.NoError(t, err)
	require.Equal(t, want[0], proof)

	renewed := time.Now().Add(2 * protocol.DefaultLease).Truncate(time.Second)
	require.NoError(t, protocol.Renew(ctx, h, holderID, key, root, renewed))
	require.True(t, expires().Equal(renewed), "lease %v after renewal to %v", expires(), renewed)

	require.NoError(t, protocol.Remove(ctx, h, holderID, key, root))
	require.False(t, pinned(t, holder.store, root, reason), "Remove left the replica pinned")
	waitUntil(t, func() bool {
		st, err := holder.store.Stat(ctx)
		require.NoError(t, err)
		return st.Blocks == 0
	}, "the removed replica's blocks were never collected")
	require.ErrorIs(t, protocol.Renew(ctx, h, holderID, key, root, renewed), protocol.ErrRejected)
	_, err = protocol.TreeChallenge(ctx, h, holderID, key, root, nonce)
	require.ErrorIs(t, err, protocol.ErrNotHeld)
}

// TestShortLeaseOverTheWire: a store whose offer grants a 2 s lease is
// pinned until then; the holder's lease sweep, as the network wires it,
// drops the replica when the lease ends and its blocks are collected.
func TestShortLeaseOverTheWire(t *testing.T) {
	owner, holder := startTestNode(t, 0), startTestNode(t, 0)
	connect(t, owner, holder)
	ctx := t.Context()
	res, err := owner.Add(ctx, bytes.NewReader(make([]byte, 2<<20)), core.AddOptions{Name: "x"})
	require.NoError(t, err)
	root, err := cid.Decode(res.Cid)
	require.NoError(t, err)
	var blocks, size uint64
	for b, err := range treeBlocks(t, owner, root) {
		require.NoError(t, err)
		blocks, size = blocks+1, size+uint64(len(b.Data))
	}
	key := crypt.OwnerKey(&owner.secrets.Master)
	lease := time.Now().Add(2 * time.Second).Truncate(time.Second)
	sr, err := protocol.Store(ctx, owner.net.stack.Host, holder.net.stack.Host.ID(), key, root,
		treeBlocks(t, owner, root), blocks, size, protocol.WithLease(lease))
	require.NoError(t, err)
	require.True(t, sr.Complete)
	reason := replicaReason(key.Public().(ed25519.PublicKey))
	require.True(t, pinned(t, holder.store, root, reason))

	waitUntil(t, func() bool {
		st, err := holder.store.Stat(ctx)
		require.NoError(t, err)
		return st.Blocks == 0
	}, "the replica's blocks were never collected after its lease ended")
	require.False(t, time.Now().Before(lease), "collected before the lease ended")
	require.False(t, pinned(t, holder.store, root, reason))
}
