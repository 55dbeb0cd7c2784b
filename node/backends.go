package node

import (
	"cmp"
	"context"
	"crypto/ed25519"
	"encoding/hex"
	"errors"
	"fmt"
	"slices"
	"strings"
	"sync"
	"time"

	"github.com/ipfs/go-cid"

	"github.com/casd/casd/blockstore"
	"github.com/casd/casd/config"
	"github.com/casd/casd/dag"
	"github.com/casd/casd/node/internal/replicate"
	"github.com/casd/casd/protocol"
)

// The protocol's backends bind /cas/store and /cas/get to the block store.

var (
	_ protocol.StoreBackend = (*storeBackend)(nil)
	_ protocol.GetBackend   = getBackend{}
	_ protocol.TreeBackend  = getBackend{}
	_ protocol.TreeBackend  = watchedBackend{}
)

// storeBackend is what /cas/store writes into: the local block store.
type storeBackend struct {
	store *blockstore.Store
	// quota caps the bytes held for other owners (replica pins) plus
	// those promised to transfers in flight; the node's own files never
	// count against it.
	quota int64
	// maxPins caps the replica pins of one owner (0:
	// config.DefaultMaxPinsPerOwner).
	maxPins int
	// announce queues a provider record for a replica; it must not block.
	announce func(cid.Cid)
	// collect asks for a background GC; it must not block. It is called
	// when a transfer ends without pinning its root (aborted, or ended
	// incomplete), whose blocks would otherwise count against the quota
	// until someone runs GC by hand.
	collect func()
	// leased, if set, is told (without blocking) that a lease was granted
	// or extended, so that the lease sweep re-arms its timer.
	leased func()

	// space is the bytes held for others; see offeredSpace.
	space offeredSpace

	mu sync.Mutex // guards the fields below, and orders reservations
	// reserved is the room promised to the transfers in flight.
	reserved int64
	// owners counts, per replica pin reason, the transfers in flight
	// that may add a pin of that reason.
	owners map[string]int
	// open tracks the transfers in flight per (root, reason) pin.
	open map[string]*openPin
}

// openPin counts the transfers in flight for one (root, reason) pin, and
// how many of them pinned it: a release that finds no pin to match it
// belongs to a transfer that stored blocks and pinned nothing.
type openPin struct{ transfers, pinned int }

// Reserve refuses a file that would take the bytes held for others past
// the quota, counting the replicas held (offeredSpace) and what the
// transfers in flight were promised, and sets bytes aside until the
// returned release is called. So concurrent offers cannot share the same
// room: the first takes it, the others are refused. The node's own files
// and its cache never count. It also refuses a new root of an owner that holds
// maxPins replica pins here, counting the offers of that owner in flight.
// While the transfer runs it holds the store's GC guard, so that a
// concurrent GC cannot sweep blocks received but not pinned yet. Blocks
// written during the transfer count twice until release, which errs on
// the side of refusing. A release without a matching Pin (the transfer
// failed, or ended without the whole tree) asks for a background GC.
func (b *storeBackend) Reserve(ctx context.Context, owner ed25519.PublicKey, root cid.Cid, bytes int64) (func(), error) {
	if bytes < 0 {
		return nil, fmt.Errorf("offer of %d bytes", bytes)
	}
	reason := replicaReason(owner)
	offered, err := b.space.lock(ctx, b.store)
	if err != nil {
		return nil, err
	}
	b.mu.Lock()
	newPin, err := b.admitLocked(ctx, reason, root, bytes, offered)
	if err != nil {
		b.mu.Unlock()
		b.space.unlock()
		return nil, err
	}
	key := b.beginLocked(root, reason, bytes, newPin)
	b.mu.Unlock()
	b.space.unlock()
	guard := b.store.GCGuard()
	var once sync.Once
	return func() {
		once.Do(func() {
			guard()
			if !b.end(key, reason, bytes, newPin) && b.collect != nil {
				b.collect()
			}
		})
	}, nil
}

// admitLocked checks an offer against the quota, given the bytes held
// for others, and the owner's pin cap, and reports whether pinning it
// would add a pin of reason.
func (b *storeBackend) admitLocked(ctx context.Context, reason string, root cid.Cid, bytes, offered int64) (newPin bool, err error) {
	if free := b.quota - offered - b.reserved; bytes > free {
		return false, fmt.Errorf("over quota: %d bytes held for others, %d promised to transfers in flight, %d offered, quota %d (Storage.Quota)",
			offered, b.reserved, bytes, b.quota)
	}
	pins, err := b.store.PinsOf(ctx, root)
	if err != nil {
		return false, err
	}
	if slices.ContainsFunc(pins, func(p blockstore.Pin) bool { return p.Reason == reason }) {
		return false, nil // a pin again: no new pin
	}
	held, err := b.store.PinCount(ctx, reason)
	if err != nil {
		return false, err
	}
	if limit := cmp.Or(b.maxPins, config.DefaultMaxPinsPerOwner); held+b.owners[reason] >= limit {
		return false, fmt.Errorf("over the pin cap: this owner holds %d replica pins here and has %d offers in flight, cap %d per owner (Storage.MaxPinsPerOwner)",
			held, b.owners[reason], limit)
	}
	return true, nil
}

// beginLocked records a transfer admitted by admitLocked and returns its
// (root, reason) pin key.
func (b *storeBackend) beginLocked(root cid.Cid, reason string, bytes int64, newPin bool) string {
	b.reserved += bytes
	if b.owners == nil {
		b.owners, b.open = make(map[string]int), make(map[string]*openPin)
	}
	if newPin {
		b.owners[reason]++
	}
	key := openKey(root, reason)
	op := b.open[key]
	if op == nil {
		op = &openPin{}
		b.open[key] = op
	}
	op.transfers++
	return key
}

// end forgets a transfer of the (root, reason) pin key, and reports
// whether a Pin matched it.
func (b *storeBackend) end(key, reason string, bytes int64, newPin bool) (pinned bool) {
	b.mu.Lock()
	defer b.mu.Unlock()
	b.reserved -= bytes
	if newPin {
		if b.owners[reason]--; b.owners[reason] == 0 {
			delete(b.owners, reason)
		}
	}
	op := b.open[key]
	op.transfers--
	if op.pinned > 0 {
		op.pinned--
		pinned = true
	}
	if op.transfers == 0 {
		delete(b.open, key)
	}
	return pinned
}

// replicaReason is the pin reason of owner's replicas.
func replicaReason(owner ed25519.PublicKey) string {
	return protocol.ReplicaPinPrefix + hex.EncodeToString(owner)
}

func openKey(root cid.Cid, reason string) string { return root.KeyString() + reason }

func (b *storeBackend) PutMany(ctx context.Context, bs []blockstore.Block) error {
	return b.store.PutMany(ctx, bs)
}

func (b *storeBackend) Complete(ctx context.Context, root cid.Cid) (bool, error) {
	return complete(ctx, b.store, root)
}

// Pin pins a replica of owner until lease (or extends its lease), counts
// its tree as held for others if no other owner's replica pin held it,
// records it for the transfer in flight, and queues its announcement.
func (b *storeBackend) Pin(ctx context.Context, root cid.Cid, owner ed25519.PublicKey, lease time.Time) error {
	reason := replicaReason(owner)
	if _, err := b.space.lock(ctx, b.store); err != nil {
		return fmt.Errorf("pin replica %s: %w", root, err)
	}
	err := b.pinLocked(ctx, root, reason, lease)
	b.space.unlock()
	if err != nil {
		return fmt.Errorf("pin replica %s: %w", root, err)
	}
	b.mu.Lock()
	if op := b.open[openKey(root, reason)]; op != nil && op.pinned < op.transfers {
		op.pinned++
	}
	b.mu.Unlock()
	b.notifyLeased()
	b.announce(root)
	return nil
}

// pinLocked pins (root, reason) until lease and adds root's tree to the
// space held for others if it is root's first replica pin. The caller
// holds b.space.
func (b *storeBackend) pinLocked(ctx context.Context, root cid.Cid, reason string, lease time.Time) error {
	first, err := noReplicaPin(ctx, b.store, root)
	if err != nil {
		return err
	}
	if err := b.store.PinUntil(ctx, root, reason, lease); err != nil {
		return err
	}
	if !first {
		return nil
	}
	n, err := treeBytes(ctx, b.store, root)
	if err != nil {
		return fmt.Errorf("size the tree: %w", err)
	}
	b.space.add(n)
	return nil
}

// Renew extends owner's replica of root to lease, never shortening it. A
// root not pinned here for owner is refused with an error wrapping
// protocol.ErrNotHeld; the check and the extension are one transaction,
// so a renewal never revives a pin that the lease sweep or a removal just
// dropped.
func (b *storeBackend) Renew(ctx context.Context, owner ed25519.PublicKey, root cid.Cid, lease time.Time) error {
	held, err := b.store.RenewPin(ctx, root, replicaReason(owner), lease)
	if err != nil {
		return fmt.Errorf("renew %s: %w", root, err)
	}
	if !held {
		return fmt.Errorf("renew %s: not held here for this owner: %w", root, protocol.ErrNotHeld)
	}
	b.notifyLeased()
	return nil
}

// Remove drops owner's replica of root, uncounts its tree if no other
// owner's replica pin holds it, and asks for a GC, which frees its blocks
// unless another pin keeps them. Removing what is not held is not an
// error.
func (b *storeBackend) Remove(ctx context.Context, owner ed25519.PublicKey, root cid.Cid) error {
	reason := replicaReason(owner)
	if err := b.dropPins(ctx, func(ctx context.Context) ([]blockstore.Pin, error) {
		pins, err := b.store.PinsOf(ctx, root)
		if err != nil || !slices.ContainsFunc(pins, func(p blockstore.Pin) bool { return p.Reason == reason }) {
			return nil, err
		}
		return []blockstore.Pin{{Root: root, Reason: reason}}, b.store.Unpin(ctx, root, reason)
	}); err != nil {
		return fmt.Errorf("remove replica %s: %w", root, err)
	}
	return nil
}

// expire drops every replica pin whose lease ended at now, like Remove,
// and returns how many it dropped.
func (b *storeBackend) expire(ctx context.Context, now time.Time) (int, error) {
	var n int
	err := b.dropPins(ctx, func(ctx context.Context) ([]blockstore.Pin, error) {
		gone, err := b.store.UnpinExpired(ctx, now)
		n = len(gone)
		return gone, err
	})
	if err != nil {
		return n, fmt.Errorf("drop expired replicas: %w", err)
	}
	return n, nil
}

// dropPins runs unpin, which removes pins and returns them, then
// uncounts the tree of each root left without a replica pin, and asks for
// a GC if any pin went. It holds a GC guard throughout, so that the trees
// are still there to size after their pins went.
func (b *storeBackend) dropPins(ctx context.Context, unpin func(context.Context) ([]blockstore.Pin, error)) error {
	if _, err := b.space.lock(ctx, b.store); err != nil {
		return err
	}
	defer b.space.unlock()
	release := b.store.GCGuard()
	defer release()
	gone, err := unpin(ctx)
	if err != nil {
		return err
	}
	if len(gone) > 0 && b.collect != nil {
		defer b.collect() // the sweep waits for the guard held here
	}
	seen := make(map[cid.Cid]bool, len(gone))
	for _, p := range gone {
		if seen[p.Root] || !isReplicaReason(p.Reason) {
			continue
		}
		seen[p.Root] = true
		last, err := noReplicaPin(ctx, b.store, p.Root)
		if err != nil {
			return err
		}
		if !last {
			continue
		}
		n, err := treeBytes(ctx, b.store, p.Root)
		if err != nil {
			return fmt.Errorf("size the tree of %s: %w", p.Root, err)
		}
		b.space.add(-n)
	}
	return nil
}

func (b *storeBackend) notifyLeased() {
	if b.leased != nil {
		b.leased()
	}
}

// isReplicaReason reports whether a pin reason is a replica's.
func isReplicaReason(reason string) bool {
	return strings.HasPrefix(reason, protocol.ReplicaPinPrefix)
}

// noReplicaPin reports whether root has no replica pin in store.
func noReplicaPin(ctx context.Context, store *blockstore.Store, root cid.Cid) (bool, error) {
	pins, err := store.PinsOf(ctx, root)
	if err != nil {
		return false, err
	}
	return !slices.ContainsFunc(pins, func(p blockstore.Pin) bool { return isReplicaReason(p.Reason) }), nil
}

// treeBytes returns the bytes of the blocks of root's tree that store
// holds, each distinct block once (a walk is bounded: dag.Walk).
func treeBytes(ctx context.Context, store *blockstore.Store, root cid.Cid) (int64, error) {
	var total int64
	err := dag.Walk(ctx, store, root, func(c cid.Cid, _ byte) error {
		n, err := store.GetSize(ctx, c)
		if errors.Is(err, blockstore.ErrNotFound) {
			return nil
		}
		total += int64(n)
		return err
	})
	if errors.Is(err, blockstore.ErrNotFound) || errors.Is(err, dag.ErrTooManyBlocks) || dag.IsAuthError(err) {
		err = nil // what the walk reached is what is held
	}
	return total, err
}

// Usage classes of pins: the node's own files, and what it holds for
// others; the rest of the store is cache.
const (
	classOwn = iota
	classOffered
	numClasses
)

// usageClass sorts a pin reason into a usage class.
func usageClass(reason string) int {
	switch {
	case reason == PinOwner || reason == replicate.PinPending:
		return classOwn
	case isReplicaReason(reason):
		return classOffered
	}
	return -1
}

// usage returns the bytes of the node's own files and of those it holds
// for others, each block counted once, own first.
func usage(ctx context.Context, store *blockstore.Store) (own, offered int64, err error) {
	sums, err := store.Usage(ctx, dag.Links, usageClass, numClasses, blockstore.WithLeaves(dag.LinksAreLeaves))
	if err != nil {
		return 0, 0, err
	}
	return sums[classOwn], sums[classOffered], nil
}

// offeredSpace is the bytes of the trees held for other owners, which
// the quota caps. It is computed by one usage walk when first needed (the
// first offer or removal after start: a node that is never offered
// anything never pays the walk, and start-up stays as fast as before;
// the first offer waits for it, bounded by its context), then kept by
// adding a tree when its first replica pin is made and taking it off when
// its last replica pin goes. So a block that a tree held for others shares
// with another such tree, or with an own file, counts again (the walk
// counts it once, and own first) until the next start, which errs on the
// side of refusing. The zero value is ready to use.
type offeredSpace struct {
	once  sync.Once
	sem   chan struct{} // holds one token while bytes is read or changed
	known bool
	bytes int64
}

// lock waits for the space (or ctx), computes it from store if it is not
// known, and returns it; the caller calls unlock.
func (o *offeredSpace) lock(ctx context.Context, store *blockstore.Store) (int64, error) {
	o.once.Do(func() { o.sem = make(chan struct{}, 1) })
	select {
	case o.sem <- struct{}{}:
	case <-ctx.Done():
		return 0, fmt.Errorf("wait for the space held for others: %w", ctx.Err())
	}
	if !o.known {
		_, offered, err := usage(ctx, store)
		if err != nil {
			<-o.sem
			return 0, fmt.Errorf("measure the space held for others: %w", err)
		}
		o.bytes, o.known = offered, true
	}
	return o.bytes, nil
}

func (o *offeredSpace) unlock() { <-o.sem }

// add changes the space by n bytes; the caller holds the lock.
func (o *offeredSpace) add(n int64) { o.bytes = max(o.bytes+n, 0) }

// complete reports whether every block of root is in store. A root with
// more blocks than a walk visits (dag.ErrTooManyBlocks: a hostile root, as
// any peer may store one) is never complete, so it is never pinned as a
// replica.
func complete(ctx context.Context, store *blockstore.Store, root cid.Cid) (bool, error) {
	err := dag.Walk(ctx, store, root, func(c cid.Cid, _ byte) error {
		ok, err := store.Has(ctx, c)
		if err != nil {
			return err
		}
		if !ok {
			return blockstore.ErrNotFound
		}
		return nil
	})
	if errors.Is(err, blockstore.ErrNotFound) || errors.Is(err, dag.ErrTooManyBlocks) || dag.IsAuthError(err) {
		return false, nil
	}
	return err == nil, err
}

// getBackend is what /cas/get serves from: verified local blocks.
type getBackend struct{ store *blockstore.Store }

// HeldFor reports whether root is pinned here as a replica of owner: a
// tree challenge signed by owner is answered only then.
func (b getBackend) HeldFor(ctx context.Context, owner ed25519.PublicKey, root cid.Cid) (bool, error) {
	pins, err := b.store.PinsOf(ctx, root)
	if err != nil {
		return false, fmt.Errorf("pins of %s: %w", root, err)
	}
	reason := replicaReason(owner)
	return slices.ContainsFunc(pins, func(p blockstore.Pin) bool { return p.Reason == reason }), nil
}

// Get returns a local block after checking it against its CID, so that a
// node with a rotting disk reports the block missing instead of sending
// garbage (and being struck for it).
func (b getBackend) Get(ctx context.Context, c cid.Cid) ([]byte, error) {
	data, err := b.store.Get(ctx, c)
	if err != nil {
		return nil, err
	}
	if err := blockstore.VerifyBlock(c, data); err != nil {
		log.Errorw("corrupt block in store; run 'casd repo verify'", "cid", c)
		return nil, fmt.Errorf("%w (corrupt locally)", blockstore.ErrNotFound)
	}
	return data, nil
}

// GetSize returns the size of a local block, so that /cas/get reserves
// exactly what it sends (protocol.BlockSizer). A block whose size is wrong
// on disk is found corrupt by Get, after the reservation.
func (b getBackend) GetSize(ctx context.Context, c cid.Cid) (int, error) {
	return b.store.GetSize(ctx, c)
}

// Complete reports whether this node holds root whole and pinned: blocks
// that GC may remove do not make a replica.
func (b getBackend) Complete(ctx context.Context, root cid.Cid) (bool, error) {
	pins, err := b.store.PinsOf(ctx, root)
	if err != nil || len(pins) == 0 {
		return false, err
	}
	return complete(ctx, b.store, root)
}
