package node

import (
	"context"
	"crypto/ed25519"
	"errors"
	"fmt"
	"sync"

	"github.com/ipfs/go-cid"

	"github.com/casd/casd/blockstore"
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
	// announce queues a provider record for a replica; it must not block.
	announce func(cid.Cid)

	mu sync.Mutex // guards reserved, and orders reservations
	// reserved is the room promised to the transfers in flight.
	reserved int64
}

// Reserve refuses a file that would take the store past its quota,
// counting what the store holds and what the transfers in flight were
// promised, and sets bytes aside until the returned release is called. So
// concurrent offers cannot share the same room: the first takes it, the
// others are refused (the quota covers the whole store, the node's own
// files included). While the transfer runs it also holds the store's GC
// guard, so that a concurrent `casd repo gc` cannot sweep blocks received
// but not pinned yet. Blocks written during the transfer count twice until
// release, which errs on the side of refusing.
func (b *storeBackend) Reserve(ctx context.Context, _ ed25519.PublicKey, root cid.Cid, bytes int64) (func(), error) {
	if bytes < 0 {
		return nil, fmt.Errorf("offer of %d bytes", bytes)
	}
	b.mu.Lock()
	st, err := b.store.Stat(ctx)
	if err != nil {
		b.mu.Unlock()
		return nil, err
	}
	if free := b.quota - st.Bytes - b.reserved; bytes > free {
		b.mu.Unlock()
		return nil, fmt.Errorf("over quota: %d bytes held, %d promised to transfers in flight, %d offered, quota %d",
			st.Bytes, b.reserved, bytes, b.quota)
	}
	b.reserved += bytes
	b.mu.Unlock()
	guard := b.store.GCGuard()
	var once sync.Once
	return func() {
		once.Do(func() {
			guard()
			b.mu.Lock()
			b.reserved -= bytes
			b.mu.Unlock()
		})
	}, nil
}

func (b *storeBackend) PutMany(ctx context.Context, bs []blockstore.Block) error {
	return b.store.PutMany(ctx, bs)
}

func (b *storeBackend) Complete(ctx context.Context, root cid.Cid) (bool, error) {
	return complete(ctx, b.store, root)
}

// Pin pins a replica and queues its announcement.
func (b *storeBackend) Pin(ctx context.Context, root cid.Cid, reason string) error {
	if err := b.store.Pin(ctx, root, reason); err != nil {
		return err
	}
	b.announce(root)
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

// Complete reports whether this node holds root whole and pinned: blocks
// that GC may remove do not make a replica.
func (b getBackend) Complete(ctx context.Context, root cid.Cid) (bool, error) {
	pins, err := b.store.PinsOf(ctx, root)
	if err != nil || len(pins) == 0 {
		return false, err
	}
	return complete(ctx, b.store, root)
}
