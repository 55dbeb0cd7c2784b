package node

import (
	"context"
	"fmt"

	"github.com/ipfs/go-cid"

	"github.com/casd/casd/blockstore"
	"github.com/casd/casd/dag"
	"github.com/casd/casd/node/internal/fetch"
)

// An online node's reads repair damaged local blocks from peers.
var _ fetch.Rewriter = (*blockstore.Store)(nil)

// localBlocks is an offline node's block source: the local store. A block
// is returned as it is on disk; one that then fails to open or to match
// its CID is checked by Repair, so that a block damaged on disk is
// reported by name, as corrupt, rather than as a chunk that fails to open
// or a file that will not authenticate.
type localBlocks struct{ store *blockstore.Store }

var (
	_ dag.BlockGetter = localBlocks{}
	_ dag.Repairer    = localBlocks{}
)

// Get returns the local block c, unchecked (see Repair).
func (l localBlocks) Get(ctx context.Context, c cid.Cid) ([]byte, error) {
	return l.store.Get(ctx, c)
}

// Repair cannot repair offline: a damaged block is an error wrapping
// [blockstore.ErrCorrupt] that names it and says what to do; an intact one
// is no repair (ok false).
func (l localBlocks) Repair(ctx context.Context, c cid.Cid) ([]byte, bool, error) {
	data, err := l.store.Get(ctx, c)
	if err != nil {
		return nil, false, err
	}
	if err := blockstore.VerifyBlock(c, data); err != nil {
		return nil, false, fmt.Errorf("local block %s is corrupt; run 'casd repo verify', and read the file with 'casd daemon' running to fetch a good copy from peers: %w",
			c, err)
	}
	return nil, false, nil
}
