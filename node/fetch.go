package node

import (
	"context"
	"errors"
	"fmt"
	"slices"
	"sync"
	"time"

	"github.com/ipfs/go-cid"
	"github.com/libp2p/go-libp2p/core/peer"

	"github.com/casd/casd/blockstore"
	"github.com/casd/casd/dag"
	"github.com/casd/casd/protocol"
)

// Retrieval limits.
const (
	maxProviders    = 20
	findTimeout     = 15 * time.Second
	connectTimeout  = 10 * time.Second
	maxFetchRetries = 8
)

// fetcher gets the blocks of one file: from the local store, else from the
// peers that provide its root, spreading requests over them. A peer that
// sends a wrong block is dropped for this file and struck. It is safe for
// concurrent use, as dag.File.WriteTo requires.
type fetcher struct {
	nw   *online
	root cid.Cid

	once sync.Once // finds the sources on the first network fetch

	mu sync.Mutex // guards the fields below
	// peers are the sources, in the order they were found.
	peers []peer.ID
	// dropped peers sent a wrong block.
	dropped map[peer.ID]bool
	next    int // round-robin cursor
}

var _ dag.BlockGetter = (*fetcher)(nil)

// getter returns the block source for reading root.
func (nw *online) getter(root cid.Cid) dag.BlockGetter {
	return &fetcher{nw: nw, root: root, dropped: make(map[peer.ID]bool)}
}

// Get returns the block c, verified against its CID.
func (f *fetcher) Get(ctx context.Context, c cid.Cid) ([]byte, error) {
	data, err := f.nw.node.store.Get(ctx, c)
	if err == nil || !errors.Is(err, blockstore.ErrNotFound) {
		return data, err
	}
	f.once.Do(func() { f.findSources(ctx) })
	var errs []error
	tried := make(map[peer.ID]bool)
	for range maxFetchRetries {
		p, ok := f.pick(tried)
		if !ok {
			break
		}
		tried[p] = true
		data, err := f.fetchFrom(ctx, p, c)
		if err == nil {
			return data, nil
		}
		if ctx.Err() != nil {
			return nil, ctx.Err()
		}
		errs = append(errs, fmt.Errorf("peer %s: %w", p, err))
	}
	if len(errs) == 0 {
		return nil, fmt.Errorf("block %s: no peer provides %s: %w", c, f.root, blockstore.ErrNotFound)
	}
	return nil, fmt.Errorf("block %s: %w: %w", c, blockstore.ErrNotFound, errors.Join(errs...))
}

// fetchFrom asks p for c; a wrong block drops p.
func (f *fetcher) fetchFrom(ctx context.Context, p peer.ID, c cid.Cid) ([]byte, error) {
	var data []byte
	missing, err := protocol.Fetch(ctx, f.nw.host, p, f.root, []cid.Cid{c}, func(b blockstore.Block) error {
		data = b.Data
		return nil
	})
	if errors.Is(err, protocol.ErrBadBlock) {
		f.drop(p)
		f.nw.strike(p, "served a wrong block")
		return nil, err
	}
	if err != nil {
		return nil, err
	}
	if len(missing) > 0 || data == nil {
		return nil, blockstore.ErrNotFound
	}
	return data, nil
}

// pick returns the next source, round robin, that has not been dropped
// nor tried yet for this block.
func (f *fetcher) pick(tried map[peer.ID]bool) (peer.ID, bool) {
	f.mu.Lock()
	defer f.mu.Unlock()
	for i := range f.peers {
		p := f.peers[(f.next+i)%len(f.peers)]
		if !f.dropped[p] && !tried[p] {
			f.next = (f.next + i + 1) % len(f.peers)
			return p, true
		}
	}
	return "", false
}

func (f *fetcher) drop(p peer.ID) {
	f.mu.Lock()
	defer f.mu.Unlock()
	f.dropped[p] = true
}

// findSources collects the root's providers from the DHT, connecting to
// each, and adds connected peers as a last resort.
func (f *fetcher) findSources(ctx context.Context) {
	fctx, cancel := context.WithTimeout(ctx, findTimeout)
	defer cancel()
	self := f.nw.host.ID()
	var found []peer.ID
	for ai := range f.nw.dht.FindProvidersAsync(fctx, f.root, maxProviders) {
		if ai.ID == self {
			continue
		}
		if len(ai.Addrs) > 0 {
			f.nw.host.Peerstore().AddAddrs(ai.ID, ai.Addrs, time.Hour)
		}
		found = append(found, ai.ID)
	}
	for _, p := range f.nw.host.Network().Peers() {
		if !slices.Contains(found, p) {
			found = append(found, p)
		}
	}
	log.Debugw("sources", "cid", f.root, "peers", len(found))
	f.mu.Lock()
	f.peers = found
	f.mu.Unlock()
}
