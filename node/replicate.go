package node

import (
	"context"
	"crypto/ed25519"
	"errors"
	"fmt"
	"iter"
	"slices"
	"sync"
	"time"

	"github.com/ipfs/go-cid"
	kb "github.com/libp2p/go-libp2p-kbucket"
	"github.com/libp2p/go-libp2p/core/peer"

	"github.com/casd/casd/blockstore"
	"github.com/casd/casd/dag"
	"github.com/casd/casd/protocol"
)

// replicate pushes root to the peers closest to it that accept it, until
// the replication goal is met, and announces it. It returns the peers that
// acknowledged the whole file; fewer than the goal is not an error, but
// leaves root pending for the retry loop.
func (nw *online) replicate(ctx context.Context, root cid.Cid) ([]string, error) {
	goal := nw.node.repo.Config.Replication.Factor
	nw.wg.Add(1)
	go func() { // owned by nw.wg; announcing need not delay the add
		defer nw.wg.Done()
		nw.provide(root)
	}()
	if goal == 0 {
		return []string{}, nil
	}
	got, err := nw.pushToClosest(ctx, root, goal)
	if err != nil {
		return got, err
	}
	if len(got) < goal {
		log.Warnw("under-replicated; will retry", "cid", root, "replicas", len(got), "goal", goal)
	}
	nw.markPending(ctx, root, len(got) < goal)
	return got, nil
}

// provide announces root as a provider record, logging a failure: a
// network without other peers cannot take the record yet.
func (nw *online) provide(root cid.Cid) {
	ctx, cancel := context.WithTimeout(nw.ctx, time.Minute)
	defer cancel()
	if err := nw.dht.Provide(ctx, root, true); err != nil {
		log.Debugw("provide", "cid", root, "err", err)
	}
}

// candidates returns the peers to place root on, closest first by XOR
// distance: the DHT's closest peers, then any other connected peer.
func (nw *online) candidates(ctx context.Context, root cid.Cid) []peer.ID {
	key := string(root.Hash())
	ps, err := nw.dht.GetClosestPeers(ctx, key)
	if err != nil {
		log.Debugw("closest peers", "cid", root, "err", err)
	}
	ps = append(ps, nw.host.Network().Peers()...)
	self := nw.host.ID()
	ps = slices.DeleteFunc(ps, func(p peer.ID) bool { return p == self })
	slices.Sort(ps)
	ps = slices.Compact(ps)
	return kb.SortClosestPeers(ps, kb.ConvertKey(key))
}

// pushToClosest stores root on up to goal peers, trying candidates in
// order of closeness, goal at a time.
func (nw *online) pushToClosest(ctx context.Context, root cid.Cid, goal int) ([]string, error) {
	blocks, bytes, err := nw.node.treeSize(ctx, root)
	if err != nil {
		return nil, err
	}
	var (
		mu  sync.Mutex // guards got
		got []string
	)
	cands := nw.candidates(ctx, root)
	for len(cands) > 0 && len(got) < goal {
		batch := cands[:min(goal-len(got), len(cands))]
		cands = cands[len(batch):]
		var wg sync.WaitGroup
		for _, p := range batch {
			wg.Add(1)
			go func() {
				defer wg.Done()
				if nw.pushTo(ctx, p, root, blocks, bytes) {
					mu.Lock()
					got = append(got, p.String())
					nw.addHint(root, p)
					mu.Unlock()
				}
			}()
		}
		wg.Wait()
		if err := ctx.Err(); err != nil {
			return got, err
		}
	}
	return got, nil
}

// pushTo stores root on p and reports whether p acknowledged all of it. A
// peer that already holds the whole file (a re-add, a retry) counts
// without a transfer.
func (nw *online) pushTo(ctx context.Context, p peer.ID, root cid.Cid, blocks, bytes uint64) bool {
	if nw.holds(ctx, p, root, holdsTimeout) {
		log.Debugw("peer already holds the file", "peer", p, "cid", root)
		return true
	}
	res, err := protocol.Store(ctx, nw.host, p, nw.owner, root, nw.node.treeBlocks(ctx, root), blocks, bytes)
	if err != nil {
		log.Debugw("store on peer", "peer", p, "cid", root, "err", err)
		return false
	}
	log.Debugw("stored on peer", "peer", p, "cid", root, "blocks", res.Stored, "complete", res.Complete)
	return res.Complete
}

// treeSize counts the blocks and bytes of a local file.
func (n *Node) treeSize(ctx context.Context, root cid.Cid) (blocks, bytes uint64, err error) {
	err = dag.Walk(ctx, n.store, root, func(c cid.Cid, _ byte) error {
		size, err := n.store.GetSize(ctx, c)
		if err != nil {
			return err
		}
		blocks++
		bytes += uint64(size)
		return nil
	})
	if err != nil {
		return 0, 0, fmt.Errorf("size of %s: %w", root, err)
	}
	return blocks, bytes, nil
}

// errStop ends a walk early without error.
var errStop = errors.New("stop")

// treeBlocks yields every block of a local file, root first.
func (n *Node) treeBlocks(ctx context.Context, root cid.Cid) iter.Seq2[blockstore.Block, error] {
	return func(yield func(blockstore.Block, error) bool) {
		err := dag.Walk(ctx, n.store, root, func(c cid.Cid, _ byte) error {
			data, err := n.store.Get(ctx, c)
			if err != nil {
				return err
			}
			if !yield(blockstore.Block{Cid: c, Data: data}, nil) {
				return errStop
			}
			return nil
		})
		if err != nil && !errors.Is(err, errStop) {
			yield(blockstore.Block{}, err)
		}
	}
}

// markPending records whether root still needs more replicas, in memory
// and as a pin of reason PinPending, so that a restarted daemon goes on
// retrying (the pin keeps nothing alive that the owner pin does not).
func (nw *online) markPending(ctx context.Context, root cid.Cid, pending bool) {
	nw.mu.Lock()
	if pending {
		nw.pending[root.KeyString()] = struct{}{}
	} else {
		delete(nw.pending, root.KeyString())
	}
	nw.mu.Unlock()
	var err error
	if pending {
		err = nw.node.store.Pin(ctx, root, PinPending)
	} else {
		err = nw.node.store.Unpin(ctx, root, PinPending)
	}
	if err != nil {
		log.Warnw("record pending replication", "cid", root, "pending", pending, "err", err)
	}
}

// loadPending fills the pending set from the PinPending pins of the store.
func (nw *online) loadPending(ctx context.Context) error {
	pins, err := nw.node.store.Pins(ctx)
	if err != nil {
		return fmt.Errorf("load pending replications: %w", err)
	}
	nw.mu.Lock()
	defer nw.mu.Unlock()
	for _, p := range pins {
		if p.Reason == PinPending {
			nw.pending[p.Root.KeyString()] = struct{}{}
		}
	}
	return nil
}

// retryLoop retries under-replicated files until the network closes.
func (nw *online) retryLoop() {
	defer nw.wg.Done()
	t := time.NewTicker(retryInterval)
	defer t.Stop()
	for {
		select {
		case <-nw.ctx.Done():
			return
		case <-t.C:
			nw.retryPending()
		}
	}
}

func (nw *online) retryPending() {
	nw.mu.Lock()
	roots := make([]cid.Cid, 0, len(nw.pending))
	for k := range nw.pending {
		c, err := cid.Cast([]byte(k))
		if err == nil {
			roots = append(roots, c)
		}
	}
	nw.mu.Unlock()
	for _, root := range roots {
		got, err := nw.replicate(nw.ctx, root)
		log.Infow("retried replication", "cid", root, "replicas", len(got), "err", err)
	}
}

// storeBackend is what /cas/store writes into: the local block store.
type storeBackend struct{ nw *online }

// Reserve refuses a file that would take the store past its quota. The
// quota covers the whole store, the node's own files included. While the
// transfer runs it holds the store's GC guard, so that a concurrent
// `casd repo gc` cannot sweep blocks received but not pinned yet.
func (b *storeBackend) Reserve(ctx context.Context, _ ed25519.PublicKey, root cid.Cid, bytes int64) (func(), error) {
	st, err := b.nw.node.store.Stat(ctx)
	if err != nil {
		return nil, err
	}
	quota := b.nw.node.repo.Config.Storage.Quota
	if st.Bytes+bytes > quota {
		return nil, fmt.Errorf("over quota: %d bytes held, %d offered, quota %d", st.Bytes, bytes, quota)
	}
	return b.nw.node.store.GCGuard(), nil
}

func (b *storeBackend) PutMany(ctx context.Context, bs []blockstore.Block) error {
	return b.nw.node.store.PutMany(ctx, bs)
}

func (b *storeBackend) Complete(ctx context.Context, root cid.Cid) (bool, error) {
	return complete(ctx, b.nw.node.store, root)
}

// Pin pins a replica and announces it.
func (b *storeBackend) Pin(ctx context.Context, root cid.Cid, reason string) error {
	if err := b.nw.node.store.Pin(ctx, root, reason); err != nil {
		return err
	}
	b.nw.wg.Add(1)
	go func() {
		defer b.nw.wg.Done()
		b.nw.provide(root)
	}()
	return nil
}

// complete reports whether every block of root is in store.
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
	if errors.Is(err, blockstore.ErrNotFound) || dag.IsAuthError(err) {
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
