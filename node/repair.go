package node

import (
	"context"
	"errors"
	"fmt"

	"github.com/ipfs/go-cid"

	"github.com/casd/casd/blockstore"
	"github.com/casd/casd/core"
	"github.com/casd/casd/dag"
)

// Repair runs a check of the replicas of root c now (of every owned root
// when c is empty) and waits for it; see replicate.Replicator.Check. A
// root that this node does not pin but can open with its keys (a node
// restored from the owner's key file) is first taken over: fetched whole
// from peers and pinned as the node's own, so the repair loop keeps it
// from then on.
func (n *Node) Repair(ctx context.Context, c string) ([]core.RepairReport, error) {
	if n.net == nil {
		return nil, core.ErrOffline
	}
	if c == "" {
		return n.net.repl.CheckAll(ctx)
	}
	root, err := parseCID(c)
	if err != nil {
		return nil, err
	}
	switch err := n.mustOwn(ctx, root); {
	case errors.Is(err, core.ErrNotMine):
		if err := n.takeOver(ctx, root); err != nil {
			return nil, fmt.Errorf("repair %s: %w", root, err)
		}
	case err != nil:
		return nil, fmt.Errorf("repair %s: %w", root, err)
	}
	rep, err := n.net.repl.Check(ctx, root)
	if err != nil {
		return nil, fmt.Errorf("repair %s: %w", root, err)
	}
	return []core.RepairReport{rep}, nil
}

// takeOver makes root, a file this node can open with its keys but does
// not pin, one of its own: it fetches every block it lacks from the peers
// that hold root (each verified against its CID), proves the file the
// owner's (dag.File.VerifyOwned, over the local copy), and pins it as
// the owner's, all under the GC guard. A file it cannot open with its
// keys is an error wrapping [core.ErrNotMine].
func (n *Node) takeOver(ctx context.Context, root cid.Cid) error {
	src := n.net.fetch.Open(ctx, root)
	defer src.Close()
	release := n.store.GCGuard()
	defer release()
	f, err := dag.OpenOwned(ctx, src, root, &n.secrets)
	if errors.Is(err, dag.ErrNeedCapability) {
		return core.ErrNotMine
	}
	if err != nil {
		return fmt.Errorf("open: %w", err)
	}
	fetched := 0
	err = dag.Walk(ctx, src, root, func(c cid.Cid, _ byte) error {
		if ok, err := n.store.Has(ctx, c); err != nil || ok {
			return err
		}
		data, err := src.Get(ctx, c)
		if err != nil {
			return err
		}
		fetched++
		return n.store.Put(ctx, blockstore.Block{Cid: c, Data: data})
	})
	if err != nil {
		return fmt.Errorf("fetch the file: %w", err)
	}
	if err := f.VerifyOwned(ctx, localBlocks{n.store}); err != nil {
		if errors.Is(err, dag.ErrNeedCapability) {
			return core.ErrNotMine
		}
		return fmt.Errorf("verify: %w", err)
	}
	if err := n.store.Pin(ctx, root, PinOwner); err != nil {
		return fmt.Errorf("pin: %w", err)
	}
	log.Infow("took over a file restored from the key file", "cid", root, "fetched blocks", fetched)
	return nil
}
