package replicate

import (
	"context"
	"errors"
	"fmt"
	"time"

	"github.com/ipfs/go-cid"

	"github.com/casd/casd/core"
)

// loop checks every owned root each check interval (jittered), and the
// pending ones each retry interval when that is shorter, until Close. A
// check that takes longer than the interval delays the next one: the
// timer is set when a round ends.
func (r *Replicator) loop() {
	check := time.NewTimer(jitter(r.cfg.CheckInterval))
	defer check.Stop()
	var retry <-chan time.Time
	if r.cfg.RetryInterval < r.cfg.CheckInterval {
		t := time.NewTicker(r.cfg.RetryInterval)
		defer t.Stop()
		retry = t.C
	}
	for {
		select {
		case <-r.ctx.Done():
			return
		case <-check.C:
			if _, err := r.CheckAll(r.ctx); err != nil && r.ctx.Err() == nil {
				log.Warnw("check of owned roots", "err", err) // the others were checked
			}
			check.Reset(jitter(r.cfg.CheckInterval))
		case <-retry:
			r.RetryPending(r.ctx)
		}
	}
}

// CheckAll runs [Replicator.Check] on every root pinned as the node's own
// file, one after the other, and forgets the state of roots no longer
// pinned. A root whose check fails is left out of the reports, and its
// error joins the one returned; the others are checked all the same.
func (r *Replicator) CheckAll(ctx context.Context) ([]core.RepairReport, error) {
	roots, err := r.Owned(ctx)
	if err != nil {
		return nil, err
	}
	r.forgetOthers(roots)
	reports := []core.RepairReport{}
	var errs []error
	for _, root := range roots {
		rep, err := r.Check(ctx, root)
		if ctx.Err() != nil {
			return reports, ctx.Err()
		}
		if err != nil {
			errs = append(errs, err)
			continue
		}
		reports = append(reports, rep)
	}
	return reports, errors.Join(errs...)
}

// Owned returns the roots pinned as the node's own files.
func (r *Replicator) Owned(ctx context.Context) ([]cid.Cid, error) {
	pins, err := r.cfg.Store.Pins(ctx)
	if err != nil {
		return nil, fmt.Errorf("list owned roots: %w", err)
	}
	var roots []cid.Cid
	for _, p := range pins {
		if p.Reason == PinOwner {
			roots = append(roots, p.Root)
		}
	}
	return roots, nil
}

// RetryPending checks once more every pending root, until ctx ends.
func (r *Replicator) RetryPending(ctx context.Context) {
	for _, root := range r.Pending() {
		if ctx.Err() != nil {
			return
		}
		rep, err := r.Check(ctx, root)
		log.Infow("retried replication", "cid", root, "replicas", len(rep.Live), "err", err)
	}
}
