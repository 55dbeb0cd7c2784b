package replicate

import (
	"context"
	"maps"
	"slices"
	"sync"
	"time"

	"github.com/ipfs/go-cid"
	"github.com/libp2p/go-libp2p/core/peer"

	"github.com/casd/casd/protocol"
)

// removeTimeout bounds the signed removal sent to one replica.
const removeTimeout = 10 * time.Second

// maxRemoveTargets bounds the peers one removal asks.
const maxRemoveTargets = 32

// Remove asks every peer known or found to hold root (the state, the
// hints, the provider lookup) to drop it, at most checkParallel at once,
// then forgets root. It returns the peers that acknowledged. The caller
// has unpinned root already, so that no check places it again; a check in
// progress is waited for, and the replicas it placed are asked too. A
// peer that cannot be reached frees root when its lease ends.
func (r *Replicator) Remove(ctx context.Context, root cid.Cid) []peer.ID {
	st, unlock, err := r.lockRoot(ctx, root)
	if err != nil {
		return nil
	}
	defer unlock()
	defer r.Forget(root)
	defer r.markPending(context.WithoutCancel(ctx), root, false)
	var (
		mu      sync.Mutex // guards targets and removed
		targets = slices.Collect(maps.Keys(r.known(st)))
		removed []peer.ID
	)
	add := func(p peer.ID) {
		mu.Lock()
		defer mu.Unlock()
		if !slices.Contains(targets, p) && len(targets) < maxRemoveTargets {
			targets = append(targets, p)
		}
	}
	for _, p := range r.cfg.Hints.Of(root) {
		add(p)
	}
	if r.cfg.Lookup != nil {
		r.cfg.Lookup(ctx, root, func(p peer.ID, confirmed bool) {
			if confirmed {
				add(p)
			}
		})
	}
	each(ctx, targets, func(p peer.ID) {
		rctx, cancel := context.WithTimeout(ctx, removeTimeout)
		defer cancel()
		if err := protocol.Remove(rctx, r.cfg.Host, p, r.cfg.Owner, root); err != nil {
			log.Debugw("remove replica", "peer", p, "cid", root, "err", err)
			return
		}
		r.cfg.Hints.Drop(root, p)
		mu.Lock()
		removed = append(removed, p)
		mu.Unlock()
	})
	return removed
}
