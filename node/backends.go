package node

import (
	"cmp"
	"context"
	"crypto/ed25519"
	"encoding/hex"
	"errors"
	"fmt"
	"slices"
	"sync"
	"time"

	"github.com/ipfs/go-cid"

	"github.com/casd/casd/blockstore"
	"github.com/casd/casd/config"
	"github.com/casd/casd/dag"
	"github.com/casd/casd/protocol"
)

// The protocol's backends bind /cas/store and /cas/get to the block store.

var (
	_ protocol.StoreBackend = (*storeBackend)(nil)
	_ protocol.GetBackend   = getBackend{}
)

// storeBackend is what /cas/store writes into: the local block store.
type storeBackend struct {
	store *blockstore.Store
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

// Reserve refuses a file that would take the store past its quota,
// counting what the store holds and what the transfers in flight were
// promised, and sets bytes aside until the returned release is called. So
// concurrent offers cannot share the same room: the first takes it, the
// others are refused (the quota covers the whole store, the node's own
// files included). It also refuses a new root of an owner that holds
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
	b.mu.Lock()
	newPin, err := b.admitLocked(ctx, reason, root, bytes)
	if err != nil {
		b.mu.Unlock()
		return nil, err
	}
	key := b.beginLocked(root, reason, bytes, newPin)
	b.mu.Unlock()
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

// admitLocked checks an offer against the quota and the owner's pin cap,
// and reports whether pinning it would add a pin of reason.
func (b *storeBackend) admitLocked(ctx context.Context, reason string, root cid.Cid, bytes int64) (newPin bool, err error) {
	st, err := b.store.Stat(ctx)
	if err != nil {
		return false, err
	}
	if free := b.quota - st.Bytes - b.reserved; bytes > free {
		return false, fmt.Errorf("over quota: %d bytes held, %d promised to transfers in flight, %d offered, quota %d",
			st.Bytes, b.reserved, bytes, b.quota)
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

// Pin pins a replica of owner, records it for the transfer in flight, and
// queues its announcement. The lease is not recorded yet: the block store
// keeps no expiry until pins carry one (blockstore.PinUntil), so the
// replica is held until removed.
func (b *storeBackend) Pin(ctx context.Context, root cid.Cid, owner ed25519.PublicKey, _ time.Time) error {
	reason := replicaReason(owner)
	if err := b.store.Pin(ctx, root, reason); err != nil {
		return err
	}
	b.mu.Lock()
	if op := b.open[openKey(root, reason)]; op != nil && op.pinned < op.transfers {
		op.pinned++
	}
	b.mu.Unlock()
	b.announce(root)
	return nil
}

// Renew accepts a renewal of a replica held for owner; one not held is
// refused with protocol.ErrNotHeld. Like Pin, it records no lease yet.
func (b *storeBackend) Renew(ctx context.Context, owner ed25519.PublicKey, root cid.Cid, _ time.Time) error {
	reason := replicaReason(owner)
	pins, err := b.store.PinsOf(ctx, root)
	if err != nil {
		return fmt.Errorf("renew %s: %w", root, err)
	}
	if !slices.ContainsFunc(pins, func(p blockstore.Pin) bool { return p.Reason == reason }) {
		return fmt.Errorf("renew %s: %w", root, protocol.ErrNotHeld)
	}
	return nil
}

// Remove unpins owner's replica of root and asks for a GC, which frees
// its blocks unless another pin holds them.
func (b *storeBackend) Remove(ctx context.Context, owner ed25519.PublicKey, root cid.Cid) error {
	if err := b.store.Unpin(ctx, root, replicaReason(owner)); err != nil {
		return fmt.Errorf("remove replica: %w", err)
	}
	b.collect()
	return nil
}

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
