package node

import (
	"context"
	"fmt"

	"github.com/ipfs/go-cid"

	"github.com/casd/casd/protocol"
)

var _ protocol.ChallengeBackend = getBackend{}

// Pinned reports whether root is pinned here, for any reason: a storage
// challenge is answered only under a pinned root, so a block kept by
// chance (a cache, unpinned junk awaiting GC) proves no replica.
func (b getBackend) Pinned(ctx context.Context, root cid.Cid) (bool, error) {
	pins, err := b.store.PinsOf(ctx, root)
	if err != nil {
		return false, fmt.Errorf("pins of %s: %w", root, err)
	}
	return len(pins) > 0, nil
}
