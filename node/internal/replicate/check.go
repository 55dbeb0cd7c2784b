package replicate

import (
	"context"
	"errors"
	"fmt"
	"maps"
	"slices"
	"sync"
	"time"

	"github.com/ipfs/go-cid"
	"github.com/libp2p/go-libp2p/core/peer"

	"github.com/casd/casd/core"
	"github.com/casd/casd/protocol"
	"github.com/casd/casd/protocol/pb"
)

// Bounds of a check.
const (
	// checkParallel bounds the peers a check talks to at once.
	checkParallel = 8
	// minProbeTimeout and renewTimeout bound a light audit and a renewal
	// within a check; a light audit gets at most auditTimeout, and less
	// when checks are frequent (see probeTimeout).
	minProbeTimeout = 2 * time.Second
	renewTimeout    = 10 * time.Second
	// treeAuditBase and treeAuditRate give a tree challenge its timeout:
	// the base plus the tree's bytes read at the floor rate, on each side.
	treeAuditBase = 30 * time.Second
	treeAuditRate = 4 << 20 // bytes per second
)

// Check runs a check of root now: it challenges every replica it knows
// of (the state, the hints and, when those are short of the goal, the
// peers that the lookup finds claiming root), each on a random block; it
// audits the whole tree of those whose tree audit is due; it renews the
// leases that are due; and, if fewer than the goal passed, it places root
// on new peers (never one that passed, never one that just failed). A
// replica that fails, does not answer, or refuses a renewal no longer
// counts, and is forgotten. Two checks of one root never run at once: a
// second one waits for the first. A root this node does not pin as its
// own file is an error wrapping [core.ErrNotMine]; one it does not hold
// whole wraps [ErrNotLocal], and nobody is judged.
func (r *Replicator) Check(ctx context.Context, root cid.Cid) (core.RepairReport, error) {
	st, unlock, err := r.lockRoot(ctx, root)
	if err != nil {
		return core.RepairReport{}, fmt.Errorf("check %s: %w", root, err)
	}
	defer unlock()
	return r.checkLocked(ctx, root, st)
}

// checkLocked is Check with root's lock held.
func (r *Replicator) checkLocked(ctx context.Context, root cid.Cid, st *rootState) (core.RepairReport, error) {
	if err := r.mustOwn(ctx, root); err != nil {
		if errors.Is(err, core.ErrNotMine) && r.isPending(root) {
			r.markPending(ctx, root, false) // its file is gone: nothing to retry
		}
		return core.RepairReport{}, err
	}
	near, stop := r.lookAhead(ctx, root)
	defer stop()
	known := r.known(st)
	live, failed, err := r.judge(ctx, root, r.gather(ctx, root, known))
	if err != nil {
		return core.RepairReport{}, fmt.Errorf("check %s: %w", root, err)
	}
	var added []peer.ID
	if missing := r.cfg.Goal - len(live); missing > 0 {
		added = r.replace(ctx, root, missing, near(), live, failed)
	}
	for p := range failed {
		r.cfg.Hints.Drop(root, p)
	}
	r.record(st, live, r.now())
	r.markPending(ctx, root, len(live) < r.cfg.Goal)
	rep := report(root, r.cfg.Goal, live, added, failed, known)
	log.Debugw("checked", "cid", root, "live", len(rep.Live), "added", len(rep.Added), "dropped", len(rep.Dropped))
	return rep, nil
}

// judge runs the light audits of cands, then the tree audits that are due
// and the renewals, and returns the replicas that passed everything and
// those that failed something. An error (this node cannot judge, or ctx
// ended) judges nobody.
func (r *Replicator) judge(ctx context.Context, root cid.Cid, cands map[peer.ID]replica) (live, failed map[peer.ID]replica, err error) {
	live, failed, err = r.lightAudits(ctx, root, cands)
	if err == nil {
		err = ctx.Err() // a cancelled audit is no failure of the replica
	}
	if err != nil {
		return nil, nil, err
	}
	r.treeAudits(ctx, root, live, failed)
	r.renewAll(ctx, root, live, failed)
	if err := ctx.Err(); err != nil {
		return nil, nil, err
	}
	return live, failed, nil
}

// lookAhead starts the lookup of the peers closest to root while the
// audits run, so that a replacement does not wait for it after them.
// near waits for its result; stop cancels it if still running, and waits.
func (r *Replicator) lookAhead(ctx context.Context, root cid.Cid) (near func() []peer.ID, stop func()) {
	if r.cfg.Goal == 0 { // nothing is ever placed
		return func() []peer.ID { return nil }, func() {}
	}
	ctx, cancel := context.WithCancel(ctx)
	res := make(chan []peer.ID, 1)
	var wg sync.WaitGroup
	wg.Go(func() { res <- r.closest(ctx, root) })
	var (
		once sync.Once
		got  []peer.ID
	)
	near = func() []peer.ID {
		once.Do(func() { got = <-res })
		return got
	}
	return near, func() { cancel(); wg.Wait() }
}

// replace places root on missing new peers of near, none in live or
// failed, adds them to live and renews the leases of those that held root
// already (no lease known). It returns the peers added and still live.
func (r *Replicator) replace(ctx context.Context, root cid.Cid, missing int, near []peer.ID, live, failed map[peer.ID]replica) []peer.ID {
	placed, err := r.place(ctx, root, missing, near, exclude(live, failed))
	if err != nil {
		log.Warnw("place missing replicas", "cid", root, "err", err)
	}
	maps.Copy(live, placed)
	r.renewAll(ctx, root, live, failed)
	var added []peer.ID
	for p := range placed {
		if _, ok := live[p]; ok {
			added = append(added, p)
		}
	}
	return added
}

// report is the outcome of a check of root: the live replicas, those
// added, and those known before that failed.
func report(root cid.Cid, goal int, live map[peer.ID]replica, added []peer.ID, failed, known map[peer.ID]replica) core.RepairReport {
	rep := core.RepairReport{Cid: root.String(), Goal: goal, Live: []string{}, Added: []string{}, Dropped: []string{}}
	for p := range live {
		rep.Live = append(rep.Live, p.String())
	}
	for _, p := range added {
		rep.Added = append(rep.Added, p.String())
	}
	for p := range failed {
		if _, ok := known[p]; ok {
			rep.Dropped = append(rep.Dropped, p.String())
		}
	}
	slices.Sort(rep.Live)
	slices.Sort(rep.Added)
	slices.Sort(rep.Dropped)
	return rep
}

// mustOwn returns nil if root is pinned here as the node's own file.
func (r *Replicator) mustOwn(ctx context.Context, root cid.Cid) error {
	pins, err := r.cfg.Store.PinsOf(ctx, root)
	if err != nil {
		return fmt.Errorf("pins of %s: %w", root, err)
	}
	for _, p := range pins {
		if p.Reason == PinOwner {
			return nil
		}
	}
	return fmt.Errorf("check %s: %w", root, core.ErrNotMine)
}

// gather returns the peers to challenge on root: those known, the hints,
// and, while fewer than the goal are known, those the lookup finds that
// confirm holding root; at most goal+maxExtraReplicas in all. A peer not
// known before starts with a zero replica (tree audit due, lease unknown).
func (r *Replicator) gather(ctx context.Context, root cid.Cid, known map[peer.ID]replica) map[peer.ID]replica {
	limit := r.cfg.Goal + maxExtraReplicas
	cands := maps.Clone(known)
	for _, p := range r.cfg.Hints.Of(root) {
		if _, ok := cands[p]; !ok && len(cands) < limit {
			cands[p] = replica{}
		}
	}
	if len(cands) >= r.cfg.Goal || r.cfg.Lookup == nil {
		return cands
	}
	var mu sync.Mutex // guards cands
	r.cfg.Lookup(ctx, root, func(p peer.ID, confirmed bool) {
		mu.Lock()
		defer mu.Unlock()
		if _, ok := cands[p]; confirmed && !ok && len(cands) < limit {
			cands[p] = replica{}
		}
	})
	return cands
}

// lightAudits challenges every candidate on a random block of root, at
// most checkParallel at once, and splits them into those that passed
// (their lastAudit stamped), or were known and whose audit was
// inconclusive, and the others. An error means that this node
// cannot judge anyone (it does not hold root whole).
func (r *Replicator) lightAudits(ctx context.Context, root cid.Cid, cands map[peer.ID]replica) (live, failed map[peer.ID]replica, err error) {
	live, failed = make(map[peer.ID]replica), make(map[peer.ID]replica)
	var (
		mu     sync.Mutex // guards live, failed and notLoc
		notLoc error
	)
	each(ctx, slices.Collect(maps.Keys(cands)), func(p peer.ID) {
		actx, cancel := context.WithTimeout(ctx, r.probeTimeout())
		err := r.cfg.Audit.Audit(actx, p, root)
		cancel()
		mu.Lock()
		defer mu.Unlock()
		rep := cands[p]
		switch {
		case err == nil:
			rep.lastAudit = r.now()
			live[p] = rep
		case errors.Is(err, ErrNotLocal):
			notLoc = err
		case errors.Is(err, ErrInconclusive) && !rep.lastAudit.IsZero():
			// This node served the challenged blocks meanwhile: a
			// replica that proved holding root before still counts,
			// its last audit unchanged.
			live[p] = rep
		default:
			if ctx.Err() == nil { // else judge judges nobody
				log.Debugw("replica failed its check", "peer", p, "cid", root, "err", err)
			}
			failed[p] = rep
		}
	})
	return live, failed, notLoc
}

// treeAuditTimeout bounds a tree challenge of a tree of bytes: the base,
// plus the tree read at the floor rate (the holder's own bound, docs/wire.md).
func treeAuditTimeout(bytes uint64) time.Duration {
	return treeAuditBase + time.Duration(bytes/treeAuditRate)*time.Second
}

// probeTimeout bounds one light audit in a check: auditTimeout, or half
// the check interval if that is shorter (but at least minProbeTimeout),
// so that a replica gone silent (a QUIC connection looks alive until its
// idle timeout) is dropped within the check that finds it.
func (r *Replicator) probeTimeout() time.Duration {
	return min(auditTimeout, max(minProbeTimeout, r.cfg.CheckInterval/2))
}

// treeAudits sends a tree challenge to every replica in live whose tree
// audit is due, with a fresh nonce each; the expected proofs come from one
// walk of the local tree. A replica that answers a wrong proof or Missing
// is struck and moves to failed; one that does not answer in time moves
// to failed too. A local error (the walk) audits nobody this time.
func (r *Replicator) treeAudits(ctx context.Context, root cid.Cid, live, failed map[peer.ID]replica) {
	now := r.now()
	var provers []protocol.TreeProver
	for p, rep := range live {
		if !rep.treeDue.After(now) {
			provers = append(provers, protocol.TreeProver{Peer: p, Nonce: protocol.Nonce()})
		}
	}
	if len(provers) == 0 {
		return
	}
	_, bytes, err := r.treeSize(ctx, root)
	if err != nil {
		log.Warnw("tree audit", "cid", root, "err", err)
		return
	}
	want, err := protocol.TreeProofs(ctx, r.cfg.Store, root, provers)
	if err != nil {
		log.Warnw("tree audit: local proofs", "cid", root, "err", err)
		return
	}
	timeout := treeAuditTimeout(bytes)
	var mu sync.Mutex // guards live and failed
	type ask struct {
		pv   protocol.TreeProver
		want [pb.ProofSize]byte
	}
	asks := make([]ask, len(provers))
	for i, pv := range provers {
		asks[i] = ask{pv, want[i]}
	}
	each(ctx, asks, func(a ask) {
		pv := a.pv
		err := r.treeChallenge(ctx, pv, root, a.want, timeout)
		mu.Lock()
		defer mu.Unlock()
		rep := live[pv.Peer]
		if err != nil {
			log.Debugw("replica failed its tree audit", "peer", pv.Peer, "cid", root, "err", err)
			delete(live, pv.Peer)
			failed[pv.Peer] = rep
			return
		}
		rep.lastTreeAudit = r.now()
		rep.treeDue = rep.lastTreeAudit.Add(jitter(r.cfg.AuditInterval))
		live[pv.Peer] = rep
	})
}

// errWrongTreeProof is a tree proof that does not match the tree.
var errWrongTreeProof = fmt.Errorf("%w: tree proof does not match", protocol.ErrBadProof)

// treeChallenge asks pv.Peer for its tree proof of root and compares it
// with want. A false claim strikes the peer and forgets it as proven.
func (r *Replicator) treeChallenge(ctx context.Context, pv protocol.TreeProver, root cid.Cid, want [pb.ProofSize]byte, timeout time.Duration) error {
	ctx, cancel := context.WithTimeout(ctx, timeout)
	defer cancel()
	got, err := protocol.TreeChallenge(ctx, r.cfg.Host, pv.Peer, r.cfg.Owner, root, pv.Nonce)
	if err == nil && got != want {
		err = errWrongTreeProof
	}
	if err != nil && falseClaim(err) {
		r.cfg.Proven.Forget(pv.Peer)
		r.strike(pv.Peer, fmt.Sprintf("failed a tree audit of %s: %v", root, err))
	}
	if err != nil {
		return fmt.Errorf("tree audit %s for %s: %w", pv.Peer, root, err)
	}
	return nil
}

// renewAll renews the lease of every replica in live with less than half
// of a lease left, or none known, at most checkParallel at once. A
// replica that refuses moves to failed: it does not hold root, or will
// drop it when its lease ends. One that cannot be reached keeps its
// lease, and the next check tries again.
func (r *Replicator) renewAll(ctx context.Context, root cid.Cid, live, failed map[peer.ID]replica) {
	now := r.now()
	var due []peer.ID // collected first: the workers change live
	for p, rep := range live {
		if rep.lease.Sub(now) < r.cfg.Lease/2 {
			due = append(due, p)
		}
	}
	var mu sync.Mutex // guards live and failed
	each(ctx, due, func(p peer.ID) {
		expiry := r.leaseFrom(now)
		err := r.renew(ctx, p, root, expiry)
		mu.Lock()
		defer mu.Unlock()
		rep := live[p]
		var refused *protocol.RemoteError
		switch {
		case err == nil:
			rep.lease = expiry
			live[p] = rep
		case errors.As(err, &refused):
			log.Debugw("replica refused a renewal", "peer", p, "cid", root, "reason", refused.Reason)
			delete(live, p)
			failed[p] = rep
		default:
			log.Debugw("renew lease", "peer", p, "cid", root, "err", err)
		}
	})
}

// renew sends p a renewal of its lease on root to expiry.
func (r *Replicator) renew(ctx context.Context, p peer.ID, root cid.Cid, expiry time.Time) error {
	ctx, cancel := context.WithTimeout(ctx, renewTimeout)
	defer cancel()
	return protocol.Renew(ctx, r.cfg.Host, p, r.cfg.Owner, root, expiry)
}

// exclude returns the peers of every set, for placement to skip.
func exclude(sets ...map[peer.ID]replica) map[peer.ID]bool {
	out := make(map[peer.ID]bool)
	for _, s := range sets {
		for p := range s {
			out[p] = true
		}
	}
	return out
}

// strike counts a false claim against p, if the config can.
func (r *Replicator) strike(p peer.ID, reason string) {
	if r.cfg.Strike != nil {
		r.cfg.Strike(p, reason)
	}
}

// each calls fn for every item, at most checkParallel at once, and returns
// once every call has; when ctx ends it starts no more.
func each[T any](ctx context.Context, items []T, fn func(T)) {
	var wg sync.WaitGroup
	defer wg.Wait()
	slots := make(chan struct{}, checkParallel)
	for _, it := range items {
		select {
		case slots <- struct{}{}:
		case <-ctx.Done():
			return
		}
		wg.Go(func() {
			defer func() { <-slots }()
			fn(it)
		})
	}
}
