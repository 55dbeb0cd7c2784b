package fetch

import (
	"context"
	"sync"
	"time"

	"github.com/ipfs/go-cid"
	golog "github.com/ipfs/go-log/v2"
	"github.com/libp2p/go-libp2p/core/host"
	"github.com/libp2p/go-libp2p/core/network"
	"github.com/libp2p/go-libp2p/core/peer"

	"github.com/casd/casd/dag"
	"github.com/casd/casd/node/internal/peers"
	"github.com/casd/casd/protocol"
)

var log = golog.Logger("casd/fetch")

// Retrieval limits.
const (
	maxProviders   = 20
	findTimeout    = 15 * time.Second
	connectTimeout = 5 * time.Second
	// HoldsTimeout bounds how long a peer may take to say whether it holds
	// a root during a read or a placement.
	HoldsTimeout = 3 * time.Second
)

// ProviderFinder finds the peers that announced a root (the DHT).
type ProviderFinder interface {
	FindProvidersAsync(ctx context.Context, key cid.Cid, count int) <-chan peer.AddrInfo
}

// Config is what a [Retriever] is built with.
type Config struct {
	Host      host.Host
	Providers ProviderFinder
	// Local is the node's own store, asked before any peer.
	Local dag.BlockGetter
	// Hints are the peers known to hold a root; reads add to them.
	Hints *peers.Hints
	// Strike counts bad input from a peer.
	Strike func(p peer.ID, reason string)
	// Verify checks a peer's claim to hold a root with a storage
	// challenge (replicate.Auditor.Verify): true, nil if the peer proved
	// it; false, nil if this node cannot check (it does not hold the root
	// whole); an error if the claim must not count.
	Verify func(ctx context.Context, p peer.ID, root cid.Cid) (verified bool, err error)
}

// Retriever finds the holders of roots and opens [Fetcher]s on them. It
// starts no goroutine of its own: every lookup belongs to the call or the
// Fetcher that started it. It is safe for concurrent use.
type Retriever struct{ cfg Config }

// New returns a retriever over cfg.
func New(cfg Config) *Retriever { return &Retriever{cfg: cfg} }

// FindHolders calls found for every peer that confirms holding root whole:
// the hints first, then the DHT's providers as the lookup finds them, each
// once it answers within HoldsTimeout (a provider that does not answer
// quickly, like an owner gone away whose QUIC connection looks alive until
// its idle timeout, is never used). When that is over it calls found,
// unconfirmed, for every other connected peer, and returns. found may be
// called from several goroutines at once. The lookup ends with ctx, and in
// any case after findTimeout.
func (r *Retriever) FindHolders(ctx context.Context, root cid.Cid, found func(p peer.ID, confirmed bool)) {
	ctx, cancel := context.WithTimeout(ctx, findTimeout)
	defer cancel()
	self := r.cfg.Host.ID()
	var asks sync.WaitGroup // one per hint and per provider (at most maxProviders)
	ask := func(ai peer.AddrInfo) {
		asks.Go(func() {
			if err := r.connect(ctx, ai); err != nil {
				log.Debugw("source unreachable", "cid", root, "peer", ai.ID, "err", err)
				return
			}
			if r.Holds(ctx, ai.ID, root, HoldsTimeout) {
				found(ai.ID, true)
			}
		})
	}
	for _, p := range r.cfg.Hints.Of(root) {
		ask(peer.AddrInfo{ID: p})
	}
	for ai := range r.cfg.Providers.FindProvidersAsync(ctx, root, maxProviders) {
		if ai.ID != self {
			log.Debugw("provider found", "cid", root, "peer", ai.ID)
			ask(ai)
		}
	}
	asks.Wait()
	for _, p := range r.cfg.Host.Network().Peers() {
		if p != self {
			found(p, false)
		}
	}
	log.Debugw("holder lookup done", "cid", root)
}

// Holders returns the peers that hold root whole right now, each asked at
// most once and given timeout to answer (and as much again to prove it).
// The node itself never counts.
//
// A claim to hold root counts only if it passes a storage challenge
// (Config.Verify), when this node holds root whole: a peer that says
// "complete" to everything is then struck and not listed. A node that does
// not hold root (a reader with a bare capability) cannot check a claim: it
// lists the claims as made and reports verified false. Such claims cost a
// reader nothing it relies on: a read checks every block it gets against
// its CID, and drops and strikes a holder that lied about the root. So
// verified is true when every peer listed proved holding root.
func (r *Retriever) Holders(ctx context.Context, root cid.Cid, timeout time.Duration) (holders []peer.ID, verified bool) {
	var (
		mu         sync.Mutex // guards holders, unverified and seen
		unverified bool
		seen       = make(map[peer.ID]bool)
		asks       sync.WaitGroup
	)
	r.FindHolders(ctx, root, func(p peer.ID, confirmed bool) {
		mu.Lock()
		defer mu.Unlock()
		if seen[p] {
			return
		}
		seen[p] = true
		asks.Go(func() { // at most one per peer
			claimed := confirmed || r.Holds(ctx, p, root, timeout)
			if !claimed {
				return
			}
			ok, checked := r.verify(ctx, p, root, timeout)
			if !ok {
				return
			}
			mu.Lock()
			holders = append(holders, p)
			unverified = unverified || !checked
			mu.Unlock()
		})
	})
	asks.Wait()
	return holders, !unverified
}

// verify challenges p's claim to hold root within timeout: ok if it counts,
// checked if it passed a challenge rather than standing unverified.
func (r *Retriever) verify(ctx context.Context, p peer.ID, root cid.Cid, timeout time.Duration) (ok, checked bool) {
	if r.cfg.Verify == nil {
		return true, false
	}
	ctx, cancel := context.WithTimeout(ctx, timeout)
	defer cancel()
	checked, err := r.cfg.Verify(ctx, p, root)
	if err != nil {
		log.Debugw("holder claim not counted", "peer", p, "cid", root, "err", err)
		return false, false
	}
	return true, checked
}

// Holds asks p whether it holds root whole and pinned, waiting at most
// timeout.
func (r *Retriever) Holds(ctx context.Context, p peer.ID, root cid.Cid, timeout time.Duration) bool {
	ctx, cancel := context.WithTimeout(ctx, timeout)
	defer cancel()
	ok, err := protocol.HasRoot(ctx, r.cfg.Host, p, root)
	if err != nil {
		log.Debugw("has root", "peer", p, "cid", root, "err", err)
	}
	return ok && err == nil
}

// connect makes sure there is a connection to ai, dialing it with a short
// timeout if there is none.
func (r *Retriever) connect(ctx context.Context, ai peer.AddrInfo) error {
	if r.cfg.Host.Network().Connectedness(ai.ID) == network.Connected {
		return nil
	}
	ctx, cancel := context.WithTimeout(ctx, connectTimeout)
	defer cancel()
	return r.cfg.Host.Connect(ctx, ai)
}
