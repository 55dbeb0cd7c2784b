package node

import (
	"context"
	"errors"
	"fmt"
	"maps"
	"slices"
	"sync"
	"time"

	"github.com/ipfs/go-cid"
	"github.com/libp2p/go-libp2p/core/network"
	"github.com/libp2p/go-libp2p/core/peer"
	"github.com/libp2p/go-libp2p/p2p/protocol/ping"

	"github.com/casd/casd/blockstore"
	"github.com/casd/casd/dag"
	"github.com/casd/casd/protocol"
)

// Retrieval limits.
const (
	maxProviders    = 20
	findTimeout     = 15 * time.Second
	connectTimeout  = 5 * time.Second
	holdsTimeout    = 3 * time.Second
	probeAfter      = 2 * time.Second
	probeTimeout    = 3 * time.Second
	maxFetchRetries = 8
)

// fetcher gets the blocks of one file: from the local store, else from the
// peers that provide its root. It looks the providers up in the background
// and uses each as soon as it is found, spreading requests over them round
// robin; connected peers are added as a last resort when the lookup ends. A
// peer that sends a wrong block is dropped for this file and struck; one
// that cannot be reached is dropped. It is safe for concurrent use, as
// dag.File.WriteTo requires. close stops the lookup and waits for it.
type fetcher struct {
	nw     *online
	root   cid.Cid
	cancel context.CancelFunc
	wg     sync.WaitGroup // the lookup goroutine

	mu sync.Mutex // guards the fields below
	// peers are the sources, in the order they were found.
	peers []peer.ID
	// dropped peers sent a wrong block or could not be reached.
	dropped map[peer.ID]bool
	// confirmed peers said they hold the root whole (hints, providers);
	// the connected peers added last did not.
	confirmed map[peer.ID]bool
	next      int  // round-robin cursor
	looking   bool // the provider lookup is still running
	// changed is closed, and replaced, whenever peers grows or the lookup
	// ends, waking the fetches that wait for a source.
	changed chan struct{}
}

var _ dag.BlockGetter = (*fetcher)(nil)

// newFetcher returns the block source for reading root and starts looking
// up its providers. The caller must call close.
func (nw *online) newFetcher(ctx context.Context, root cid.Cid) *fetcher {
	ctx, cancel := context.WithTimeout(ctx, findTimeout)
	f := &fetcher{nw: nw, root: root, cancel: cancel, dropped: make(map[peer.ID]bool), confirmed: make(map[peer.ID]bool),
		looking: true, changed: make(chan struct{})}
	f.wg.Add(1)
	go f.lookup(ctx)
	return f
}

func (f *fetcher) close() {
	f.cancel()
	f.wg.Wait()
}

// lookup adds the peers known to hold the root (hints), then its providers
// as the DHT finds them, each once it confirms in one round trip that it
// holds the whole file; then, when the lookup ends, the connected peers.
// A provider that does not answer quickly (the owner that went away, whose
// QUIC connection looks alive until its idle timeout) is never used, so no
// fetch waits on it.
func (f *fetcher) lookup(ctx context.Context) {
	defer f.wg.Done()
	self := f.nw.host.ID()
	var dials sync.WaitGroup
	try := func(ai peer.AddrInfo) {
		dials.Add(1)
		go func() { // one per hint and per provider (at most maxProviders), waited for below
			defer dials.Done()
			if err := f.nw.connect(ctx, ai); err != nil {
				log.Debugw("source unreachable", "cid", f.root, "peer", ai.ID, "err", err)
				return
			}
			if !f.nw.holds(ctx, ai.ID, f.root, holdsTimeout) {
				return
			}
			f.mu.Lock()
			f.confirmed[ai.ID] = true
			f.mu.Unlock()
			f.addSources(ai.ID)
		}()
	}
	for _, p := range f.nw.hintsOf(f.root) {
		try(peer.AddrInfo{ID: p})
	}
	for ai := range f.nw.dht.FindProvidersAsync(ctx, f.root, maxProviders) {
		if ai.ID == self {
			continue
		}
		log.Debugw("provider found", "cid", f.root, "peer", ai.ID)
		try(ai)
	}
	dials.Wait()
	f.addSources(f.nw.host.Network().Peers()...)
	log.Debugw("provider lookup done", "cid", f.root)
	f.mu.Lock()
	f.looking = false
	f.signalLocked()
	f.mu.Unlock()
}

// connect makes sure there is a connection to ai, dialing it with a short
// timeout if there is none.
func (nw *online) connect(ctx context.Context, ai peer.AddrInfo) error {
	if nw.host.Network().Connectedness(ai.ID) == network.Connected {
		return nil
	}
	ctx, cancel := context.WithTimeout(ctx, connectTimeout)
	defer cancel()
	return nw.host.Connect(ctx, ai)
}

func (f *fetcher) addSources(ps ...peer.ID) {
	f.mu.Lock()
	defer f.mu.Unlock()
	for _, p := range ps {
		if p != f.nw.host.ID() && !slices.Contains(f.peers, p) {
			f.peers = append(f.peers, p)
		}
	}
	f.signalLocked()
}

func (f *fetcher) signalLocked() {
	close(f.changed)
	f.changed = make(chan struct{})
}

// sources waits for the lookup to end and returns every source found, and
// those of them that confirmed holding the root whole.
func (f *fetcher) sources(ctx context.Context) (peers []peer.ID, confirmed map[peer.ID]bool) {
	for {
		f.mu.Lock()
		looking, changed := f.looking, f.changed
		peers, confirmed = slices.Clone(f.peers), maps.Clone(f.confirmed)
		f.mu.Unlock()
		if !looking {
			return peers, confirmed
		}
		select {
		case <-changed:
		case <-ctx.Done():
			return peers, confirmed
		}
	}
}

// Get returns the block c, verified against its CID.
func (f *fetcher) Get(ctx context.Context, c cid.Cid) ([]byte, error) {
	data, err := f.nw.node.store.Get(ctx, c)
	if err == nil || !errors.Is(err, blockstore.ErrNotFound) {
		return data, err
	}
	var errs []error
	tried := make(map[peer.ID]bool)
	for range maxFetchRetries {
		p, ok := f.pick(ctx, tried)
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
	}
	if len(errs) == 0 {
		return nil, fmt.Errorf("block %s: no peer provides %s: %w", c, f.root, blockstore.ErrNotFound)
	}
	return nil, fmt.Errorf("block %s: %w: %w", c, blockstore.ErrNotFound, errors.Join(errs...))
}

// fetchFrom asks p for c. A wrong block drops and strikes p; a peer that
// cannot be reached, or that stops answering pings while the block is on
// its way, is dropped.
func (f *fetcher) fetchFrom(ctx context.Context, p peer.ID, c cid.Cid) ([]byte, error) {
	actx, cancel := context.WithCancelCause(ctx)
	stopWatch := f.watch(actx, p, cancel)
	var data []byte
	missing, err := protocol.Fetch(actx, f.nw.host, p, f.root, []cid.Cid{c}, func(b blockstore.Block) error {
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
		f.drop(p)
		f.nw.strike(p, "served a wrong block")
		return nil, err
	case err != nil:
		if ctx.Err() == nil {
			f.drop(p)
		}
		return nil, err
	case len(missing) > 0 || data == nil:
		return nil, blockstore.ErrNotFound
	}
	f.nw.addHint(f.root, p)
	return data, nil
}

// pick returns the next source, round robin, that has not been dropped
// nor tried yet for this block, waiting for the lookup to find one.
func (f *fetcher) pick(ctx context.Context, tried map[peer.ID]bool) (peer.ID, bool) {
	for {
		f.mu.Lock()
		for i := range f.peers {
			p := f.peers[(f.next+i)%len(f.peers)]
			if !f.dropped[p] && !tried[p] {
				f.next = (f.next + i + 1) % len(f.peers)
				f.mu.Unlock()
				return p, true
			}
		}
		looking, changed := f.looking, f.changed
		f.mu.Unlock()
		if !looking {
			return "", false
		}
		select {
		case <-changed:
		case <-ctx.Done():
			return "", false
		}
	}
}

func (f *fetcher) drop(p peer.ID) {
	f.mu.Lock()
	defer f.mu.Unlock()
	f.dropped[p] = true
}

// errPeerSilent is the cause of a fetch abandoned because its peer stopped
// answering pings.
var errPeerSilent = errors.New("peer stopped answering")

// watch checks, once a fetch from p has taken probeAfter, that p still
// answers a ping within probeTimeout, and cancels the fetch if not. A dead
// peer whose QUIC connection still looks open would otherwise hold the
// fetch until the protocol's idle timeout (30 s); a live but slow one is
// left alone. The returned function stops the watch and waits for it.
func (f *fetcher) watch(ctx context.Context, p peer.ID, cancel context.CancelCauseFunc) (stop func()) {
	done := make(chan struct{})
	var wg sync.WaitGroup
	wg.Add(1)
	go func() {
		defer wg.Done()
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
			if !f.nw.alive(ctx, p) {
				cancel(errPeerSilent)
				return
			}
			t.Reset(probeAfter)
		}
	}()
	return func() {
		close(done)
		wg.Wait()
	}
}

// alive reports whether p answers a ping within probeTimeout.
func (nw *online) alive(ctx context.Context, p peer.ID) bool {
	ctx, cancel := context.WithTimeout(ctx, probeTimeout)
	defer cancel()
	res := <-ping.Ping(ctx, nw.host, p)
	return res.Error == nil
}
