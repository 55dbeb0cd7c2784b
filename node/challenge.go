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

// watchedBackend is the getBackend that /cas/get serves from: it tells
// served (replicate.Auditor.Served) about every block it hands out, so
// that a peer cannot pass a challenge by fetching the challenged block
// from this node while it answers.
type watchedBackend struct {
	getBackend
	served func(cid.Cid)
}

var (
	_ protocol.GetBackend       = watchedBackend{}
	_ protocol.ChallengeBackend = watchedBackend{}
	_ protocol.BlockSizer       = watchedBackend{}
)

// Get returns a verified local block, and reports it served.
func (b watchedBackend) Get(ctx context.Context, c cid.Cid) ([]byte, error) {
	data, err := b.getBackend.Get(ctx, c)
	if err == nil {
		b.served(c)
	}
	return data, err
}
