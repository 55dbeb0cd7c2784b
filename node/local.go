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

// localBlocks is an offline node's block source: the local store, each
// block checked against its CID as it is read, so that a block damaged on
// disk is reported by name, as corrupt, rather than as a chunk that fails
// to open or a file that will not authenticate.
type localBlocks struct{ store *blockstore.Store }

var _ dag.BlockGetter = localBlocks{}

// Get returns the verified local block c. A damaged block is an error
// wrapping [blockstore.ErrCorrupt] that names it and says what to do.
func (l localBlocks) Get(ctx context.Context, c cid.Cid) ([]byte, error) {
	data, err := l.store.Get(ctx, c)
	if err != nil {
		return nil, err
	}
	if err := blockstore.VerifyBlock(c, data); err != nil {
		return nil, fmt.Errorf("local block %s is corrupt; run 'casd repo verify', and read the file with 'casd daemon' running to fetch a good copy from peers: %w",
			c, err)
	}
	return data, nil
}
