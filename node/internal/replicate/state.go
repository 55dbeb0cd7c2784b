package replicate

import (
	"context"
	"maps"
	mrand "math/rand/v2"
	"slices"
	"strings"
	"time"

	"github.com/ipfs/go-cid"
	"github.com/libp2p/go-libp2p/core/peer"

	"github.com/casd/casd/core"
)

// maxExtraReplicas bounds the replicas remembered for a root beyond its
// goal: a re-added file, or one whose owner was restored, may be held by
// more peers than the goal, and each remembered one is challenged at every
// check.
const maxExtraReplicas = 4

// replica is what the owner knows of one peer that holds a root: when it
// last proved holding a block of it (light audit) and the whole tree (tree
// audit), when its next tree audit is due, and the lease granted it. A zero
// lease is unknown (a replica found by lookup after a restart): the next
// check renews it.
type replica struct {
	lastAudit     time.Time
	lastTreeAudit time.Time
	treeDue       time.Time
	lease         time.Time
}

// rootState is the owner's state of one of its roots.
type rootState struct {
	// lock holds one token, taken by the check (or placement, or removal)
	// of the root in progress: two never run at once.
	lock chan struct{}

	// Guarded by Replicator.mu:
	replicas  map[peer.ID]replica
	lastCheck time.Time
}

// stateOf returns root's state, created empty if there is none.
func (r *Replicator) stateOf(root cid.Cid) *rootState {
	r.mu.Lock()
	defer r.mu.Unlock()
	st := r.roots[root]
	if st == nil {
		st = &rootState{lock: make(chan struct{}, 1), replicas: make(map[peer.ID]replica)}
		r.roots[root] = st
	}
	return st
}

// lockRoot waits, until ctx ends, to be the only check of root, and
// returns its state and the function that ends the turn.
func (r *Replicator) lockRoot(ctx context.Context, root cid.Cid) (*rootState, func(), error) {
	st := r.stateOf(root)
	select {
	case st.lock <- struct{}{}:
		return st, func() { <-st.lock }, nil
	case <-ctx.Done():
		return nil, nil, ctx.Err()
	}
}

// known returns copies of the replicas remembered for root.
func (r *Replicator) known(st *rootState) map[peer.ID]replica {
	r.mu.Lock()
	defer r.mu.Unlock()
	return maps.Clone(st.replicas)
}

// record replaces root's replicas by live (at most goal+maxExtraReplicas
// of them: those tree-audited first, the longest ago first, as the
// longest proven) and stamps the check's time unless checked is zero.
func (r *Replicator) record(st *rootState, live map[peer.ID]replica, checked time.Time) {
	ids := slices.Collect(maps.Keys(live))
	slices.SortFunc(ids, func(a, b peer.ID) int { return longerProven(live[a], live[b]) })
	keep := make(map[peer.ID]replica, len(ids))
	for _, p := range ids[:min(len(ids), r.cfg.Goal+maxExtraReplicas)] {
		keep[p] = live[p]
	}
	r.mu.Lock()
	defer r.mu.Unlock()
	st.replicas = keep
	if !checked.IsZero() {
		st.lastCheck = checked
	}
}

// longerProven orders replicas by their last tree audit, oldest first,
// those never tree-audited last.
func longerProven(a, b replica) int {
	switch za, zb := a.lastTreeAudit.IsZero(), b.lastTreeAudit.IsZero(); {
	case za && zb:
		return 0
	case za:
		return 1
	case zb:
		return -1
	}
	return a.lastTreeAudit.Compare(b.lastTreeAudit)
}

// Forget drops what the replicator knows of root (its file was removed).
func (r *Replicator) Forget(root cid.Cid) {
	r.mu.Lock()
	defer r.mu.Unlock()
	delete(r.roots, root)
}

// forgetOthers drops the state of every root not in owned, so the state
// stays bounded by the owner's pins.
func (r *Replicator) forgetOthers(owned []cid.Cid) {
	r.mu.Lock()
	defer r.mu.Unlock()
	for c := range r.roots {
		if !slices.Contains(owned, c) {
			delete(r.roots, c)
		}
	}
}

// Status describes root's replicas as the last check (or placement) found
// them. ok is false when none ran yet, as after a restart (the caller
// looks them up instead).
func (r *Replicator) Status(root cid.Cid) (info core.StatusInfo, ok bool) {
	r.mu.Lock()
	defer r.mu.Unlock()
	st := r.roots[root]
	if st == nil || st.lastCheck.IsZero() {
		return core.StatusInfo{}, false
	}
	info = core.StatusInfo{Cid: root.String(), Goal: r.cfg.Goal, Verified: true, LastCheck: st.lastCheck,
		Replicas: []string{}, Holders: []core.HolderInfo{}}
	for p, rep := range st.replicas {
		info.Replicas = append(info.Replicas, p.String())
		info.Holders = append(info.Holders, core.HolderInfo{ID: p.String(), Verified: true,
			LastAudit: rep.lastAudit, LastTreeAudit: rep.lastTreeAudit, LeaseExpires: rep.lease})
	}
	slices.Sort(info.Replicas)
	slices.SortFunc(info.Holders, func(a, b core.HolderInfo) int { return strings.Compare(a.ID, b.ID) })
	return info, true
}

// jitter returns d shifted at random by up to ±20%, so that the checks of
// many owners (and the audits of one) do not fall on the same instant.
func jitter(d time.Duration) time.Duration {
	return time.Duration(float64(d) * (0.8 + 0.4*mrand.Float64()))
}
