package replicate

import (
	"cmp"
	"context"
	"crypto/ed25519"
	"crypto/rand"
	"errors"
	"fmt"
	"io"
	"iter"
	"slices"
	"sync"
	"time"

	"github.com/ipfs/go-cid"
	golog "github.com/ipfs/go-log/v2"
	kb "github.com/libp2p/go-libp2p-kbucket"
	"github.com/libp2p/go-libp2p/core/host"
	"github.com/libp2p/go-libp2p/core/peer"

	"github.com/casd/casd/blockstore"
	"github.com/casd/casd/config"
	"github.com/casd/casd/dag"
	"github.com/casd/casd/node/internal/peers"
	"github.com/casd/casd/protocol"
)

var log = golog.Logger("casd/replicate")

// PinOwner is the pin reason of the node's own files: the roots it keeps
// replicated.
const PinOwner = "owner"

// PinPending is the pin reason of a root with fewer replicas than its goal.
// The pin keeps nothing alive that the owner's pin does not.
const PinPending = "pending-replication"

// DefaultRetryInterval is how often pending roots are tried again.
const DefaultRetryInterval = 30 * time.Second

// holdsTimeout bounds how long a candidate may take to say it already
// holds a root.
const holdsTimeout = 3 * time.Second

// auditTimeout bounds a challenge of a claim, the local pick of the block
// included.
const auditTimeout = 10 * time.Second

// ClosestPeers finds the peers closest to a key (the DHT).
type ClosestPeers interface {
	GetClosestPeers(ctx context.Context, key string) ([]peer.ID, error)
}

// Config is what a [Replicator] is built with.
type Config struct {
	Host    host.Host
	Closest ClosestPeers
	Store   *blockstore.Store
	// Owner signs the store offers.
	Owner ed25519.PrivateKey
	// Goal is the number of replicas besides the owner.
	Goal int
	// Hints learn the peers a root was placed on.
	Hints *peers.Hints
	// Holds asks a peer whether it holds a root whole, within timeout.
	Holds func(ctx context.Context, p peer.ID, root cid.Cid, timeout time.Duration) bool
	// Audit checks a peer's claim to hold a root; only a claim it passes
	// counts.
	Audit *Auditor
	// Proven are the peers that passed challenges; placement prefers them.
	Proven *peers.Proven
	// Rand orders the random part of placement; nil means crypto/rand.
	Rand io.Reader
	// Announce queues a root for a provider record; it must not block.
	Announce func(root cid.Cid)
	// RetryInterval is how often the roots short of their goal are
	// checked again, when it is shorter than CheckInterval; zero means
	// DefaultRetryInterval.
	RetryInterval time.Duration
	// CheckInterval is the period (jittered ±20%) of the check of every
	// owned root; AuditInterval the least time (jittered) between two tree
	// audits of a replica; Lease the lease granted to, and renewed on,
	// each replica. Zero means config's defaults.
	CheckInterval, AuditInterval, Lease time.Duration
	// Lookup calls found for the peers that claim to hold root (the
	// hints, then the DHT's providers; fetch.Retriever.FindHolders); only
	// confirmed claims are used, and each must pass a challenge. Nil
	// looks up nothing.
	Lookup func(ctx context.Context, root cid.Cid, found func(p peer.ID, confirmed bool))
	// Strike counts a failed tree audit against a peer; nil strikes
	// nobody.
	Strike func(p peer.ID, reason string)
	// Now is the clock; nil means time.Now.
	Now func() time.Time
}

// Replicator places roots and keeps them replicated. Start launches the
// repair loop; Close stops it and waits. Replicate, Check and Remove run
// in their caller's goroutine and may be called concurrently.
type Replicator struct {
	cfg    Config
	ctx    context.Context // the replicator's lifetime; cancelled by Close
	cancel context.CancelFunc
	wg     sync.WaitGroup // the repair loop

	mu      sync.Mutex // guards pending, roots and the fields of each rootState that say so
	pending map[cid.Cid]bool
	roots   map[cid.Cid]*rootState
}

// New returns a replicator over cfg whose pending set holds the roots that
// the store's PinPending pins name. It starts nothing.
func New(ctx context.Context, cfg Config) (*Replicator, error) {
	if cfg.RetryInterval <= 0 {
		cfg.RetryInterval = DefaultRetryInterval
	}
	if cfg.Rand == nil {
		cfg.Rand = rand.Reader
	}
	if cfg.Now == nil {
		cfg.Now = time.Now
	}
	cfg.CheckInterval = cmp.Or(cfg.CheckInterval, config.DefaultCheckInterval)
	cfg.AuditInterval = cmp.Or(cfg.AuditInterval, config.DefaultAuditInterval)
	cfg.Lease = cmp.Or(cfg.Lease, config.DefaultLease)
	pins, err := cfg.Store.Pins(ctx)
	if err != nil {
		return nil, fmt.Errorf("load pending replications: %w", err)
	}
	rctx, cancel := context.WithCancel(context.Background())
	r := &Replicator{cfg: cfg, ctx: rctx, cancel: cancel, pending: make(map[cid.Cid]bool),
		roots: make(map[cid.Cid]*rootState)}
	for _, p := range pins {
		if p.Reason == PinPending {
			r.pending[p.Root] = true
		}
	}
	return r, nil
}

// Start launches the repair loop.
func (r *Replicator) Start() { r.wg.Go(r.loop) }

// Close stops the repair loop, cancelling a check in flight, and waits for
// it. It is safe to call more than once.
func (r *Replicator) Close() error {
	r.cancel()
	r.wg.Wait()
	return nil
}

// Replicate announces root and pushes it to peers that accept it (see
// [placementOrder]), until the goal is met, granting each a lease. It
// returns the peers that hold the whole file and proved it, and remembers
// them for the checks (a placement counts as a check: [Replicator.Status]
// answers from it); fewer than the goal is not an error, but leaves root
// pending for the repair loop.
func (r *Replicator) Replicate(ctx context.Context, root cid.Cid) ([]string, error) {
	r.cfg.Announce(root)
	if r.cfg.Goal == 0 {
		return []string{}, nil
	}
	st, unlock, err := r.lockRoot(ctx, root)
	if err != nil {
		return nil, fmt.Errorf("replicate %s: %w", root, err)
	}
	defer unlock()
	known := r.known(st)
	if len(known) > 0 { // a re-add: check what is known, place what is missing
		rep, err := r.checkLocked(ctx, root, st)
		return rep.Live, err
	}
	placed, err := r.place(ctx, root, r.cfg.Goal, nil, nil)
	got := []string{}
	for p, rep := range placed {
		known[p] = rep
		got = append(got, p.String())
	}
	slices.Sort(got)
	r.record(st, known, r.now()) // each placed replica just passed a challenge
	if err != nil {
		return got, err
	}
	if len(got) < r.cfg.Goal {
		log.Warnw("under-replicated; will retry", "cid", root, "replicas", len(got), "goal", r.cfg.Goal)
	}
	r.markPending(ctx, root, len(got) < r.cfg.Goal)
	return got, nil
}

// isPending reports whether root is short of its goal.
func (r *Replicator) isPending(root cid.Cid) bool {
	r.mu.Lock()
	defer r.mu.Unlock()
	return r.pending[root]
}

// Pending returns the roots short of their goal.
func (r *Replicator) Pending() []cid.Cid {
	r.mu.Lock()
	defer r.mu.Unlock()
	roots := make([]cid.Cid, 0, len(r.pending))
	for c := range r.pending {
		roots = append(roots, c)
	}
	return roots
}

// candidates returns the peers to place root on for goal, in the order
// of [placementOrder], from the DHT's closest peers and the connected
// peers, without those in skip.
func (r *Replicator) candidates(ctx context.Context, root cid.Cid, goal int, skip map[peer.ID]bool) ([]peer.ID, error) {
	return r.candidatesFrom(r.closest(ctx, root), goal, skip)
}

// candidatesFrom orders near, the closest peers to a root, for placement,
// without those in skip.
func (r *Replicator) candidatesFrom(near []peer.ID, goal int, skip map[peer.ID]bool) ([]peer.ID, error) {
	ps := slices.DeleteFunc(slices.Clone(near), func(p peer.ID) bool { return skip[p] })
	return placementOrder(ps, goal, r.cfg.Proven.Has, r.cfg.Rand)
}

// closest returns the DHT's closest peers to root and the connected peers,
// once each, never this node, closest first by XOR distance. The DHT's
// lookup gets closestTimeout: it can hang on peers gone silent (a QUIC
// connection looks alive until its idle timeout), and the peers it found
// by then are used.
func (r *Replicator) closest(ctx context.Context, root cid.Cid) []peer.ID {
	key := string(root.Hash())
	lctx, cancel := context.WithTimeout(ctx, r.closestTimeout())
	ps, err := r.cfg.Closest.GetClosestPeers(lctx, key)
	cancel()
	if err != nil {
		log.Debugw("closest peers", "cid", root, "err", err)
	}
	ps = append(ps, r.cfg.Host.Network().Peers()...)
	self := r.cfg.Host.ID()
	ps = slices.DeleteFunc(ps, func(p peer.ID) bool { return p == self })
	slices.Sort(ps)
	ps = slices.Compact(ps)
	return kb.SortClosestPeers(ps, kb.ConvertKey(key))
}

// closestTimeout bounds the DHT's lookup of the peers closest to a root:
// the check interval, within [2s, 10s]. A lookup that dials peers gone
// since they entered the routing table waits out each dial (20 s measured
// on loopback, 2 of 7 daemons killed), and the connected peers are
// candidates anyway.
func (r *Replicator) closestTimeout() time.Duration {
	return min(10*time.Second, max(2*time.Second, r.cfg.CheckInterval))
}

// place stores root on up to goal peers not in skip, taken from near (the
// closest peers; nil looks them up), trying candidates in order, goal at a
// time, and returns those that hold it whole and proved it: each stamped
// audited, its lease the one granted (unknown for a peer that held root
// already), its tree audit due an audit interval from now.
func (r *Replicator) place(ctx context.Context, root cid.Cid, goal int, near []peer.ID, skip map[peer.ID]bool) (map[peer.ID]replica, error) {
	blocks, bytes, err := r.treeSize(ctx, root)
	if err != nil {
		return nil, err
	}
	var (
		mu  sync.Mutex // guards got
		got = make(map[peer.ID]replica)
	)
	if near == nil {
		near = r.closest(ctx, root)
	}
	cands, err := r.candidatesFrom(near, goal, skip)
	if err != nil {
		return nil, fmt.Errorf("place %s: %w", root, err)
	}
	for len(cands) > 0 && len(got) < goal {
		batch := cands[:min(goal-len(got), len(cands))]
		cands = cands[len(batch):]
		var wg sync.WaitGroup
		for _, p := range batch {
			wg.Go(func() {
				lease := r.leaseFrom(r.now())
				ok, stored := r.pushTo(ctx, p, root, blocks, bytes, lease)
				if !ok {
					return
				}
				r.cfg.Hints.Add(root, p)
				now := r.now()
				rep := replica{lastAudit: now, treeDue: now.Add(jitter(r.cfg.AuditInterval))}
				if stored {
					rep.lease = lease
				}
				mu.Lock()
				got[p] = rep
				mu.Unlock()
			})
		}
		wg.Wait()
		if err := ctx.Err(); err != nil {
			return got, err
		}
	}
	return got, nil
}

// pushTo stores root on p, granting it a lease to lease, and reports
// whether p holds all of it, and whether it was stored now (the lease
// granted) rather than held already. A peer that already holds the whole
// file (a re-add, a retry) counts without a transfer. Either claim, "I
// hold it" or "stored, complete", counts only once p passes a challenge
// on it.
func (r *Replicator) pushTo(ctx context.Context, p peer.ID, root cid.Cid, blocks, bytes uint64, lease time.Time) (ok, stored bool) {
	if r.cfg.Holds(ctx, p, root, holdsTimeout) {
		log.Debugw("peer says it holds the file", "peer", p, "cid", root)
		return r.proves(ctx, p, root), false
	}
	res, err := protocol.Store(ctx, r.cfg.Host, p, r.cfg.Owner, root, r.treeBlocks(ctx, root), blocks, bytes,
		protocol.WithLease(lease))
	if err != nil {
		log.Debugw("store on peer", "peer", p, "cid", root, "err", err)
		return false, false
	}
	log.Debugw("stored on peer", "peer", p, "cid", root, "blocks", res.Stored, "complete", res.Complete)
	return res.Complete && r.proves(ctx, p, root), true
}

// proves challenges p's claim to hold root and reports whether it passed.
func (r *Replicator) proves(ctx context.Context, p peer.ID, root cid.Cid) bool {
	ctx, cancel := context.WithTimeout(ctx, auditTimeout)
	defer cancel()
	if err := r.cfg.Audit.Audit(ctx, p, root); err != nil {
		log.Debugw("claim not counted", "peer", p, "cid", root, "err", err)
		return false
	}
	return true
}

// treeSize counts the blocks and bytes of a local file.
func (r *Replicator) treeSize(ctx context.Context, root cid.Cid) (blocks, bytes uint64, err error) {
	err = dag.Walk(ctx, r.cfg.Store, root, func(c cid.Cid, _ byte) error {
		size, err := r.cfg.Store.GetSize(ctx, c)
		if err != nil {
			return err
		}
		blocks++
		bytes += uint64(size)
		return nil
	})
	if err != nil {
		return 0, 0, fmt.Errorf("size of %s: %w", root, err)
	}
	return blocks, bytes, nil
}

// errStop ends a walk early without error.
var errStop = errors.New("stop")

// treeBlocks yields every block of a local file, root first.
func (r *Replicator) treeBlocks(ctx context.Context, root cid.Cid) iter.Seq2[blockstore.Block, error] {
	return func(yield func(blockstore.Block, error) bool) {
		err := dag.Walk(ctx, r.cfg.Store, root, func(c cid.Cid, _ byte) error {
			data, err := r.cfg.Store.Get(ctx, c)
			if err != nil {
				return err
			}
			if !yield(blockstore.Block{Cid: c, Data: data}, nil) {
				return errStop
			}
			return nil
		})
		if err != nil && !errors.Is(err, errStop) {
			yield(blockstore.Block{}, err)
		}
	}
}

// markPending records whether root still needs more replicas, in memory
// and as a pin of reason PinPending.
func (r *Replicator) markPending(ctx context.Context, root cid.Cid, pending bool) {
	r.mu.Lock()
	if pending {
		r.pending[root] = true
	} else {
		delete(r.pending, root)
	}
	r.mu.Unlock()
	var err error
	if pending {
		err = r.cfg.Store.Pin(ctx, root, PinPending)
	} else {
		err = r.cfg.Store.Unpin(ctx, root, PinPending)
	}
	if err != nil {
		log.Warnw("record pending replication", "cid", root, "pending", pending, "err", err)
	}
}

// now reads the replicator's clock.
func (r *Replicator) now() time.Time { return r.cfg.Now() }

// leaseFrom is the expiry of a lease granted at now, to the second: the
// wire carries unix seconds, so this is the expiry the holder records.
func (r *Replicator) leaseFrom(now time.Time) time.Time {
	return time.Unix(now.Add(r.cfg.Lease).Unix(), 0)
}
