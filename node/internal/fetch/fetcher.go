package fetch

import (
	"context"
	"errors"
	"fmt"
	"sync"
	"time"

	"github.com/ipfs/go-cid"
	"github.com/libp2p/go-libp2p/core/peer"
	"github.com/libp2p/go-libp2p/p2p/protocol/ping"

	"github.com/casd/casd/blockstore"
	"github.com/casd/casd/dag"
	"github.com/casd/casd/protocol"
)

// Limits of one block's fetch.
const (
	probeAfter   = 2 * time.Second
	probeTimeout = 3 * time.Second
	// maxFetchTries bounds the peers asked for one block. Each is asked at
	// most once, and a peer that lies is dropped for the whole file, so
	// the bound only matters with many honest-but-failing sources.
	maxFetchTries = 64
	// maxSilentTries bounds how often one block is asked of a peer that
	// stopped answering pings while it was on its way: it is asked again
	// once every other source has failed, since under load a live peer
	// can miss a ping, and it may be the only one that holds the file.
	maxSilentTries = 3
)

// Fetcher gets the blocks of one file: from the local store, else from the
// holders of its root, round robin over them as the lookup finds them. A
// peer that sends a wrong block is dropped for this file and struck; one
// that cannot be reached is dropped. It is safe for concurrent use, as
// dag.File.WriteTo requires.
type Fetcher struct {
	r       *Retriever
	root    cid.Cid
	sources *Sources
	cancel  context.CancelFunc
	wg      sync.WaitGroup // the lookup goroutine
}

var _ dag.BlockGetter = (*Fetcher)(nil)

// Open returns the block source for reading root and starts looking up its
// holders, until ctx ends. The caller must call [Fetcher.Close].
func (r *Retriever) Open(ctx context.Context, root cid.Cid) *Fetcher {
	ctx, cancel := context.WithCancel(ctx)
	f := &Fetcher{r: r, root: root, sources: NewSources(), cancel: cancel}
	f.wg.Go(func() {
		defer f.sources.Seal()
		r.FindHolders(ctx, root, f.sources.Add)
	})
	return f
}

// OpenSources returns a Fetcher for root that takes its blocks from the
// local store and then from sources only: it starts no lookup. The caller
// adds to sources and seals it, and must call [Fetcher.Close].
func (r *Retriever) OpenSources(root cid.Cid, sources *Sources) *Fetcher {
	return &Fetcher{r: r, root: root, sources: sources, cancel: func() {}}
}

// Close stops the lookup and waits for it.
func (f *Fetcher) Close() {
	f.cancel()
	f.wg.Wait()
}

// Rewriter is the optional ability of a [Config.Local] store to replace a
// damaged block with a good copy ([blockstore.Store.Rewrite] has it). A
// Fetcher whose local store has it repairs what it finds damaged.
type Rewriter interface {
	Rewrite(ctx context.Context, b blockstore.Block) error
}

// Get returns the block c: a local one as it is on disk (the reader
// authenticates it, and hands it to [Fetcher.Repair] if it is damaged:
// hashing every local block here too would cost a third of a local read),
// or one from the sources, verified against its CID.
func (f *Fetcher) Get(ctx context.Context, c cid.Cid) ([]byte, error) {
	data, err := f.r.cfg.Local.Get(ctx, c)
	if err == nil || !errors.Is(err, blockstore.ErrNotFound) {
		return data, err
	}
	return f.fetch(ctx, c)
}

// Repair implements dag.Repairer: if the local copy of c fails its CID (a
// flipped bit on disk), Repair fetches c from the sources like a missing
// block and, if the local store is a [Rewriter], writes it back over the
// damaged copy before returning it. A block that is not local came from a
// peer, verified, and an intact local one needs no repair: ok is false.
func (f *Fetcher) Repair(ctx context.Context, c cid.Cid) (data []byte, ok bool, err error) {
	local, err := f.r.cfg.Local.Get(ctx, c)
	if errors.Is(err, blockstore.ErrNotFound) {
		return nil, false, nil
	}
	if err != nil {
		return nil, false, err
	}
	verr := blockstore.VerifyBlock(c, local)
	if verr == nil {
		return nil, false, nil
	}
	data, err = f.repair(ctx, c, verr)
	return data, err == nil, err
}

// repair fetches a good copy of the local block c, which failed its CID
// with verr, and rewrites it locally. A failed rewrite is logged: the read
// goes on with the good copy.
func (f *Fetcher) repair(ctx context.Context, c cid.Cid, verr error) ([]byte, error) {
	log.Errorw("corrupt block in the local store; fetching a good copy from peers", "cid", c, "err", verr)
	data, err := f.fetch(ctx, c)
	if err != nil {
		if ctx.Err() != nil {
			return nil, ctx.Err()
		}
		return nil, fmt.Errorf("local block %s is corrupt and no peer sent a good copy (run 'casd repo verify'): %w; %v",
			c, verr, err)
	}
	rw, ok := f.r.cfg.Local.(Rewriter)
	if !ok {
		return data, nil
	}
	// Rewrite before returning: the caller may open data in place.
	if err := rw.Rewrite(ctx, blockstore.Block{Cid: c, Data: data}); err != nil {
		log.Errorw("rewrite corrupt local block", "cid", c, "err", err)
	} else {
		log.Warnw("repaired corrupt local block from a peer", "cid", c)
	}
	return data, nil
}

// fetch gets c from the sources, each at most once, except a peer that
// stopped answering pings, asked up to maxSilentTries times, each time
// after the other sources.
func (f *Fetcher) fetch(ctx context.Context, c cid.Cid) ([]byte, error) {
	var errs []error
	tried := make(map[peer.ID]bool)
	silent := make(map[peer.ID]int)
	for range maxFetchTries {
		p, ok := f.sources.Next(ctx, tried)
		if !ok {
			break
		}
		tried[p] = true
		data, err := f.fetchFrom(ctx, p, c)
		if err == nil {
			return data, nil
		}
		log.Debugw("fetch failed", "cid", c, "peer", p, "err", err)
		if ctx.Err() != nil {
			return nil, ctx.Err()
		}
		errs = append(errs, fmt.Errorf("peer %s: %w", p, err))
		if errors.Is(err, errPeerSilent) {
			// Parked: Next hands it out again only after every other source.
			if silent[p]++; silent[p] < maxSilentTries {
				delete(tried, p)
			}
		}
	}
	if len(errs) == 0 {
		return nil, fmt.Errorf("block %s: no peer provides %s: %w", c, f.root, blockstore.ErrNotFound)
	}
	return nil, fmt.Errorf("block %s: %w: %w", c, blockstore.ErrNotFound, errors.Join(errs...))
}

// fetchFrom asks p for c. A wrong block drops and strikes p; a peer that
// cannot be reached is dropped; one that stops answering pings while the
// block is on its way is parked (asked again only when no other source is
// left: under load a live peer can miss a ping).
func (f *Fetcher) fetchFrom(ctx context.Context, p peer.ID, c cid.Cid) ([]byte, error) {
	actx, cancel := context.WithCancelCause(ctx)
	stopWatch := f.watch(actx, p, cancel)
	var data []byte
	missing, err := protocol.Fetch(actx, f.r.cfg.Host, p, f.root, []cid.Cid{c}, func(b blockstore.Block) error {
		data = b.Data
		return nil
	})
	stopWatch()
	cancel(nil)
	if cause := context.Cause(actx); errors.Is(cause, errPeerSilent) && ctx.Err() == nil {
		err = cause
	}
	switch {
	case errors.Is(err, protocol.ErrBadBlock):
		f.sources.Drop(p)
		f.r.cfg.Strike(p, "served a wrong block")
		return nil, err
	case errors.Is(err, errPeerSilent):
		// Dead, or only slow: tried again when no other source is left.
		f.sources.Park(p)
		return nil, err
	case err != nil:
		if ctx.Err() == nil {
			f.sources.Drop(p)
		}
		return nil, err
	case len(missing) > 0 || data == nil:
		// A peer that confirmed holding the root whole and then lacks one
		// of its blocks lied (or lost it): either way it is no source for
		// this file. Only a peer that never claimed the root, a connected
		// one asked as a last resort, goes unpunished.
		f.sources.Drop(p)
		if f.sources.Confirmed(p) {
			f.r.cfg.Strike(p, "claimed a root it does not hold")
		}
		return nil, fmt.Errorf("peer lacks block %s: %w", c, blockstore.ErrNotFound)
	}
	f.sources.Unpark(p)
	f.r.cfg.Hints.Add(f.root, p)
	return data, nil
}

// errPeerSilent is the cause of a fetch abandoned because its peer stopped
// answering pings.
var errPeerSilent = errors.New("peer stopped answering")

// watch checks, once a fetch from p has taken probeAfter, that p still
// answers a ping within probeTimeout, and cancels the fetch if not. A dead
// peer whose QUIC connection still looks open would otherwise hold the
// fetch until the protocol's idle timeout (30 s); a live but slow one is
// left alone. The returned function stops the watch and waits for it.
func (f *Fetcher) watch(ctx context.Context, p peer.ID, cancel context.CancelCauseFunc) (stop func()) {
	done := make(chan struct{})
	var wg sync.WaitGroup
	wg.Go(func() {
		t := time.NewTimer(probeAfter)
		defer t.Stop()
		for {
			select {
			case <-done:
				return
			case <-ctx.Done():
				return
			case <-t.C:
			}
			if !f.alive(ctx, p) {
				cancel(errPeerSilent)
				return
			}
			t.Reset(probeAfter)
		}
	})
	return func() {
		close(done)
		wg.Wait()
	}
}

// alive reports whether p answers a ping within probeTimeout.
func (f *Fetcher) alive(ctx context.Context, p peer.ID) bool {
	ctx, cancel := context.WithTimeout(ctx, probeTimeout)
	defer cancel()
	res := <-ping.Ping(ctx, f.r.cfg.Host, p)
	return res.Error == nil
}
