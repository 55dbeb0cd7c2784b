package node

import (
	"bytes"
	"crypto/ed25519"
	"crypto/rand"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"slices"
	"sync"
	"testing"
	"time"

	"github.com/ipfs/go-cid"
	"github.com/libp2p/go-libp2p/core/peer"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/casd/casd/blockstore"
	"github.com/casd/casd/blockstore/blockstoretest"
	"github.com/casd/casd/config"
	"github.com/casd/casd/core"
	"github.com/casd/casd/dag"
	"github.com/casd/casd/protocol"
)

// corruptBlock flips one byte of block c in n's store, on disk.
func corruptBlock(t *testing.T, n *Node, c cid.Cid) {
	t.Helper()
	var path string
	require.NoError(t, filepath.WalkDir(n.repo.BlocksDir(), func(p string, d os.DirEntry, err error) error {
		if err == nil && d.Name() == c.String() {
			path = p
		}
		return err
	}))
	require.NotEmpty(t, path, "block %s not on disk", c)
	data, err := os.ReadFile(path)
	require.NoError(t, err)
	data[len(data)/2] ^= 0x01
	require.NoError(t, os.WriteFile(path, data, 0o600))
}

// TestCorruptHolderReportsMissing: a holder whose disk rotted a block says
// it lacks the block instead of sending it, so the reader neither receives
// garbage nor strikes an honest peer with a bad disk.
func TestCorruptHolderReportsMissing(t *testing.T) {
	holder := startTestNode(t, 0)
	reader := startTestNode(t, 0)
	res, err := holder.Add(t.Context(), bytes.NewReader(bytes.Repeat([]byte("rot"), 100_000)), core.AddOptions{Name: "x"})
	require.NoError(t, err)
	root, err := cid.Decode(res.Cid)
	require.NoError(t, err)
	var chunk cid.Cid
	require.NoError(t, dag.Walk(t.Context(), holder.store, root, func(c cid.Cid, _ byte) error { chunk = c; return nil }))
	corruptBlock(t, holder, chunk)
	connect(t, reader, holder)

	var got []blockstore.Block
	missing, err := protocol.Fetch(t.Context(), reader.net.stack.Host, holder.net.stack.Host.ID(), root, []cid.Cid{chunk},
		func(b blockstore.Block) error { got = append(got, b); return nil })
	require.NoError(t, err, "the holder must not send a block that fails its CID")
	require.Empty(t, got)
	require.Equal(t, []cid.Cid{chunk}, missing)
	require.Zero(t, reader.net.strikes.Count(holder.net.stack.Host.ID()))
}

// TestReplicaPinAnnounces: a replica that pins a root it received queues
// its provider record, so that readers find it through the DHT.
func TestReplicaPinAnnounces(t *testing.T) {
	dir := t.TempDir()
	store, err := blockstore.Open(filepath.Join(dir, "blocks"), filepath.Join(dir, "meta.db"))
	require.NoError(t, err)
	t.Cleanup(func() { require.NoError(t, store.Close()) })
	var announced []cid.Cid
	b := &storeBackend{store: store, quota: 1 << 30, announce: func(c cid.Cid) { announced = append(announced, c) }}
	blk := blockstoretest.NewBlock([]byte("a replica"))
	require.NoError(t, store.Put(t.Context(), blk))
	require.NoError(t, b.Pin(t.Context(), blk.Cid, ownerKey(t), time.Now().Add(time.Hour)))
	require.Equal(t, []cid.Cid{blk.Cid}, announced)
	pins, err := store.PinsOf(t.Context(), blk.Cid)
	require.NoError(t, err)
	require.Len(t, pins, 1)
}

// TestReplicasAreProviders: after an add, the replica (not only the owner)
// is a provider of the root in the DHT.
func TestReplicasAreProviders(t *testing.T) {
	owner := startTestNode(t, 1)
	replica := startTestNode(t, 0)
	connect(t, owner, replica)
	connect(t, replica, owner)
	res, err := owner.Add(t.Context(), bytes.NewReader([]byte("find me at the replica")), core.AddOptions{Name: "x"})
	require.NoError(t, err)
	require.Equal(t, []string{replica.net.stack.Host.ID().String()}, res.Replicas)
	root, err := cid.Decode(res.Cid)
	require.NoError(t, err)
	replicaID := replica.net.stack.Host.ID()
	require.Eventually(t, func() bool {
		provs, err := owner.net.stack.DHT.ProviderStore().GetProviders(t.Context(), root.Hash())
		return err == nil && slices.ContainsFunc(provs, func(ai peer.AddrInfo) bool { return ai.ID == replicaID })
	}, 30*time.Second, 20*time.Millisecond, "the replica never announced %s", root)
}

// TestReserveIsReal: eight concurrent offers of 48 MiB against a 64 MiB
// quota: exactly one is accepted, and the room comes back when it ends.
func TestReserveIsReal(t *testing.T) {
	dir := t.TempDir()
	store, err := blockstore.Open(filepath.Join(dir, "blocks"), filepath.Join(dir, "meta.db"))
	require.NoError(t, err)
	t.Cleanup(func() { require.NoError(t, store.Close()) })
	b := &storeBackend{store: store, quota: 64 << 20, announce: func(cid.Cid) {}}
	root := blockstoretest.NewBlock([]byte("root")).Cid

	var (
		mu       sync.Mutex
		releases []func()
		refused  int
		wg       sync.WaitGroup
	)
	for range 8 {
		wg.Go(func() {
			release, err := b.Reserve(t.Context(), nil, root, 48<<20)
			mu.Lock()
			defer mu.Unlock()
			if err != nil {
				assert.ErrorContains(t, err, "over quota")
				refused++
				return
			}
			releases = append(releases, release)
		})
	}
	wg.Wait()
	require.Len(t, releases, 1, "offers accepted against one quota")
	require.Equal(t, 7, refused)

	_, err = b.Reserve(t.Context(), nil, root, 17<<20)
	require.Error(t, err, "the accepted offer's room was not set aside")
	releases[0]()
	releases[0]() // once only
	release, err := b.Reserve(t.Context(), nil, root, 64<<20)
	require.NoError(t, err, "the room did not come back")
	release()
	_, err = b.Reserve(t.Context(), nil, root, -1)
	require.Error(t, err)
}

// openStore opens a block store in a temp dir, closed when the test ends.
func openStore(t *testing.T) *blockstore.Store {
	t.Helper()
	dir := t.TempDir()
	store, err := blockstore.Open(filepath.Join(dir, "blocks"), filepath.Join(dir, "meta.db"))
	require.NoError(t, err)
	t.Cleanup(func() { require.NoError(t, store.Close()) })
	return store
}

// ownerKey returns a fresh owner public key.
func ownerKey(t *testing.T) ed25519.PublicKey {
	t.Helper()
	pub, _, err := ed25519.GenerateKey(nil)
	require.NoError(t, err)
	return pub
}

// storeReplica runs one successful transfer of a one-block root through b,
// as /cas/store does: reserve, put, pin, release.
func storeReplica(t *testing.T, b *storeBackend, owner ed25519.PublicKey, blk blockstore.Block) error {
	t.Helper()
	release, err := b.Reserve(t.Context(), owner, blk.Cid, int64(len(blk.Data)))
	if err != nil {
		return err
	}
	defer release()
	require.NoError(t, b.PutMany(t.Context(), []blockstore.Block{blk}))
	return b.Pin(t.Context(), blk.Cid, owner, time.Now().Add(time.Hour))
}

// TestReservePinCap (hostile peers, point 8): an owner holds at most
// maxPins replica pins. Offers of new roots beyond the cap are refused
// with a reason naming the cap, concurrent offers included; the roots it
// already holds may be offered again; other owners are not affected; an
// unpin makes room.
func TestReservePinCap(t *testing.T) {
	const limit = 3
	store := openStore(t)
	b := &storeBackend{store: store, quota: 1 << 30, maxPins: limit, announce: func(cid.Cid) {}}
	owner, other := ownerKey(t), ownerKey(t)
	var roots []blockstore.Block
	for i := range limit {
		blk := blockstoretest.NewBlock(fmt.Appendf(nil, "tiny root %d", i))
		roots = append(roots, blk)
		require.NoError(t, storeReplica(t, b, owner, blk))
	}
	err := storeReplica(t, b, owner, blockstoretest.NewBlock([]byte("one too many")))
	require.ErrorContains(t, err, "over the pin cap")
	require.ErrorContains(t, err, "cap 3 per owner (Storage.MaxPinsPerOwner)")
	require.NoError(t, storeReplica(t, b, owner, roots[0]), "a root the owner holds is refused again")
	require.NoError(t, storeReplica(t, b, other, blockstoretest.NewBlock([]byte("another owner"))))
	n, err := store.PinCount(t.Context(), replicaReason(owner))
	require.NoError(t, err)
	require.Equal(t, limit, n)

	// Offers in flight count: with one pin of room, one of eight
	// concurrent offers is accepted.
	require.NoError(t, store.Unpin(t.Context(), roots[0].Cid, replicaReason(owner)))
	var (
		mu       sync.Mutex
		releases []func()
		wg       sync.WaitGroup
	)
	for i := range 8 {
		wg.Go(func() {
			root := blockstoretest.NewBlock(fmt.Appendf(nil, "concurrent %d", i)).Cid
			release, err := b.Reserve(t.Context(), owner, root, 1)
			mu.Lock()
			defer mu.Unlock()
			if err == nil {
				releases = append(releases, release)
			} else {
				assert.ErrorContains(t, err, "over the pin cap")
			}
		})
	}
	wg.Wait()
	require.Len(t, releases, 1, "concurrent offers accepted past the pin cap")
	releases[0]()
	require.Empty(t, b.owners, "a released offer still counts against its owner")
}

// TestAbortedStoreRequestsCollection (hostile peers, point 4): a
// transfer that ends without pinning its root (it failed, or ended
// without the whole tree) asks for a collection, once; one that pinned
// does not.
func TestAbortedStoreRequestsCollection(t *testing.T) {
	store := openStore(t)
	var requests int
	b := &storeBackend{store: store, quota: 1 << 30, announce: func(cid.Cid) {}, collect: func() { requests++ }}
	owner := ownerKey(t)
	require.NoError(t, storeReplica(t, b, owner, blockstoretest.NewBlock([]byte("pinned"))))
	require.Zero(t, requests, "a transfer that pinned its root asked for a collection")

	junk := blockstoretest.NewBlock([]byte("aborted"))
	release, err := b.Reserve(t.Context(), owner, junk.Cid, int64(len(junk.Data)))
	require.NoError(t, err)
	require.NoError(t, b.PutMany(t.Context(), []blockstore.Block{junk}))
	release()
	release()
	require.Equal(t, 1, requests, "an aborted transfer's release")

	// Two transfers of one root, one pins and one aborts: one request.
	root := blockstoretest.NewBlock([]byte("twice"))
	r1, err := b.Reserve(t.Context(), owner, root.Cid, 1)
	require.NoError(t, err)
	r2, err := b.Reserve(t.Context(), owner, root.Cid, 1)
	require.NoError(t, err)
	require.NoError(t, b.PutMany(t.Context(), []blockstore.Block{root}))
	require.NoError(t, b.Pin(t.Context(), root.Cid, owner, time.Now().Add(time.Hour)))
	r1()
	r2()
	require.Equal(t, 2, requests)
	require.Empty(t, b.open)
}

// openOffline opens an offline node on a fresh repo.
func openOffline(t *testing.T) *Node {
	t.Helper()
	repo, err := config.Init(filepath.Join(t.TempDir(), "repo"), config.InitOptions{Profile: config.ProfileLocal})
	require.NoError(t, err)
	n, err := Open(t.Context(), repo, Options{})
	require.NoError(t, err)
	t.Cleanup(func() { require.NoError(t, n.Close()) })
	return n
}

// waitUntil polls cond every millisecond for at most 30 s.
func waitUntil(t *testing.T, cond func() bool, msg string) {
	t.Helper()
	deadline := time.Now().Add(30 * time.Second)
	for !cond() {
		if time.Now().After(deadline) {
			t.Fatal(msg)
		}
		time.Sleep(time.Millisecond)
	}
}

// sweepRecorder starts a collector on n's store with a 1 ms interval and
// records its sweeps.
type sweepRecorder struct {
	coll  *blockstore.Collector
	mu    sync.Mutex // guards swept
	swept []blockstore.GCResult
}

func newSweepRecorder(t *testing.T, n *Node) *sweepRecorder {
	r := &sweepRecorder{}
	r.coll = blockstore.NewCollector(n.store, blockstore.CollectorConfig{
		Links: dag.Links, Options: []blockstore.GCOption{blockstore.WithLeaves(dag.LinksAreLeaves)},
		Interval: time.Millisecond,
		Swept: func(res blockstore.GCResult, err error) {
			assert.NoError(t, err)
			r.mu.Lock()
			defer r.mu.Unlock()
			r.swept = append(r.swept, res)
		},
	})
	r.coll.Start()
	t.Cleanup(func() { require.NoError(t, r.coll.Close()) })
	return r
}

func (r *sweepRecorder) sweeps() []blockstore.GCResult {
	r.mu.Lock()
	defer r.mu.Unlock()
	return slices.Clone(r.swept)
}

// abortStore mounts the attack: a store that writes two junk blocks and
// fails. It returns once the collection it requested runs or waits for
// guards, and requires that it did not run.
func abortStore(t *testing.T, n *Node, b *storeBackend, r *sweepRecorder) {
	t.Helper()
	junk := []blockstore.Block{blockstoretest.NewBlock([]byte("junk 1")), blockstoretest.NewBlock([]byte("junk 2"))}
	release, err := b.Reserve(t.Context(), ownerKey(t), junk[0].Cid, 100)
	require.NoError(t, err)
	require.NoError(t, b.PutMany(t.Context(), junk))
	release()
	waitUntil(t, func() bool { return n.store.GCWaiting() == 1 || len(r.sweeps()) > 0 },
		"the aborted store requested no collection")
	require.Empty(t, r.sweeps(), "a collection ran while a transfer was in flight")
}

// requireSweptJunkOnly waits for the sweep and requires that it removed
// exactly abortStore's two blocks, and that verify is clean.
func requireSweptJunkOnly(t *testing.T, n *Node, r *sweepRecorder) {
	t.Helper()
	waitUntil(t, func() bool { return len(r.sweeps()) > 0 }, "no sweep ran")
	require.Equal(t, []blockstore.GCResult{{Removed: 2, Freed: 12}}, r.sweeps(),
		"the sweep removed other blocks than the aborted store's")
	rep, err := n.RepoVerify(t.Context())
	require.NoError(t, err)
	require.Empty(t, rep.Missing)
	require.Empty(t, rep.Corrupt)
}

// TestCollectionSparesTransfersInFlight (hostile peers, point 4): the
// collection that an aborted store asks for never removes a block of an
// add in progress or of another store in flight, though neither has
// pinned its root yet. The sweep is requested while the transfer holds
// blocks on disk, waits for it to finish, then removes exactly the
// aborted store's blocks: the file reads back whole and verify is clean.
func TestCollectionSparesTransfersInFlight(t *testing.T) {
	t.Run("store in flight", func(t *testing.T) {
		ctx := t.Context()
		n, src := openOffline(t), openOffline(t)
		r := newSweepRecorder(t, n)
		b := &storeBackend{store: n.store, quota: 1 << 40, announce: func(cid.Cid) {}, collect: r.coll.Request}
		data := make([]byte, 3<<20)
		_, _ = rand.Read(data)
		res, err := src.Add(ctx, bytes.NewReader(data), core.AddOptions{Name: "replica"})
		require.NoError(t, err)
		root, err := cid.Decode(res.Cid)
		require.NoError(t, err)
		var blocks []blockstore.Block
		for blk, err := range treeBlocks(t, src, root) {
			require.NoError(t, err)
			blocks = append(blocks, blk)
		}
		owner := ownerKey(t)
		release, err := b.Reserve(ctx, owner, root, int64(len(data))+1<<20)
		require.NoError(t, err)
		half := len(blocks) / 2
		require.NoError(t, b.PutMany(ctx, blocks[:half]))

		abortStore(t, n, b, r)
		require.NoError(t, b.PutMany(ctx, blocks[half:]))
		ok, err := b.Complete(ctx, root)
		require.NoError(t, err)
		require.True(t, ok, "blocks of the store in flight were swept")
		require.NoError(t, b.Pin(ctx, root, owner, time.Now().Add(time.Hour)))
		release()
		requireSweptJunkOnly(t, n, r)
	})

	t.Run("add in progress", func(t *testing.T) {
		ctx := t.Context()
		n := openOffline(t)
		r := newSweepRecorder(t, n)
		b := &storeBackend{store: n.store, quota: 1 << 40, announce: func(cid.Cid) {}, collect: r.coll.Request}
		data := make([]byte, 40<<20+12345)
		_, _ = rand.Read(data)
		pr, pw := io.Pipe()
		added := make(chan *core.AddResult, 1)
		var wg sync.WaitGroup
		wg.Go(func() {
			res, err := n.Add(ctx, pr, core.AddOptions{Name: "own"})
			assert.NoError(t, err)
			_ = pr.CloseWithError(err)
			added <- res
		})
		defer wg.Wait()
		defer pw.Close()
		_, err := pw.Write(data[:36<<20])
		require.NoError(t, err)
		waitUntil(t, func() bool {
			st, err := n.store.Stat(ctx)
			return err == nil && st.Blocks >= 32
		}, "the add never committed its first batch")

		abortStore(t, n, b, r)
		_, err = pw.Write(data[36<<20:])
		require.NoError(t, err)
		require.NoError(t, pw.Close())
		res := <-added
		require.NotNil(t, res)
		requireSweptJunkOnly(t, n, r)
		var got bytes.Buffer
		require.NoError(t, n.Cat(ctx, res.Cid, func(core.FileInfo) (io.Writer, error) { return &got, nil }))
		require.True(t, bytes.Equal(data, got.Bytes()), "the added file does not read back")
	})
}
