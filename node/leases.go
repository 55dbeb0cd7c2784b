package node

import (
	"cmp"
	"context"
	"sync"
	"time"
)

// Lease sweep bounds.
const (
	// minSweepGap is the least time between two lease sweeps, so that a
	// peer that renews in a loop (each renewal re-arms the timer) costs a
	// pin scan per renewal, never a sweep per renewal.
	minSweepGap = time.Second
	// maxSweepSleep is the longest the sweep sleeps without looking at
	// the pins again: a clock that jumps, or a pin made without a notice,
	// is caught within it.
	maxSweepSleep = time.Hour
)

// leaseSweepConfig is what a leaseSweep needs.
type leaseSweepConfig struct {
	// Next returns the earliest lease expiry among the pins, and false if
	// none expires (blockstore.Store.NextExpiry).
	Next func(ctx context.Context) (time.Time, bool, error)
	// Expire drops the replicas whose lease ended at now and asks for
	// their blocks to be collected (storeBackend.expire); it returns how
	// many pins it dropped.
	Expire func(ctx context.Context, now time.Time) (int, error)
	// MinGap and MaxSleep override minSweepGap and maxSweepSleep (tests).
	MinGap, MaxSleep time.Duration
}

// leaseSweep drops the replicas held for other owners when their lease
// ends: it sleeps until the earliest expiry among the pins (at most
// MaxSleep), sweeps, and looks again. A lease granted or extended wakes it
// (notify) to re-arm its timer, since the new expiry may come first. Two
// sweeps are at least MinGap apart. Built by newLeaseSweep, which starts
// nothing; Start launches its loop, Close cancels it and waits.
type leaseSweep struct {
	cfg    leaseSweepConfig
	wake   chan struct{} // holds a pending notice, if any
	ctx    context.Context
	cancel context.CancelFunc
	wg     sync.WaitGroup
}

func newLeaseSweep(cfg leaseSweepConfig) *leaseSweep {
	cfg.MinGap = cmp.Or(cfg.MinGap, minSweepGap)
	cfg.MaxSleep = cmp.Or(cfg.MaxSleep, maxSweepSleep)
	ctx, cancel := context.WithCancel(context.Background())
	return &leaseSweep{cfg: cfg, wake: make(chan struct{}, 1), ctx: ctx, cancel: cancel}
}

// Start launches the sweep loop. Leases that ended while the node was
// down are dropped by its first sweep, at once.
func (l *leaseSweep) Start() { l.wg.Go(l.loop) }

// Close stops the loop and waits for it. It is idempotent.
func (l *leaseSweep) Close() error {
	l.cancel()
	l.wg.Wait()
	return nil
}

// notify tells the sweep that a lease was granted or extended. It never
// blocks: notices coalesce.
func (l *leaseSweep) notify() {
	select {
	case l.wake <- struct{}{}:
	default:
	}
}

func (l *leaseSweep) loop() {
	var last time.Time // start of the last sweep
	for {
		timer := time.NewTimer(l.sleep(last))
		select {
		case <-l.ctx.Done():
			timer.Stop()
			return
		case <-l.wake:
			timer.Stop()
			continue // the earliest expiry may have changed
		case <-timer.C:
		}
		last = time.Now()
		n, err := l.cfg.Expire(l.ctx, last)
		switch {
		case err != nil && l.ctx.Err() == nil:
			log.Warnw("lease sweep failed", "err", err)
		case n > 0:
			log.Infow("dropped replicas whose lease ended", "pins", n)
		}
	}
}

// sleep returns how long to wait before the next sweep: until the
// earliest expiry, at most MaxSleep, and not before MinGap after last.
func (l *leaseSweep) sleep(last time.Time) time.Duration {
	d := l.cfg.MaxSleep
	next, ok, err := l.cfg.Next(l.ctx)
	switch {
	case err != nil && l.ctx.Err() == nil:
		log.Warnw("lease sweep: find the next expiry", "err", err)
	case ok:
		d = min(d, time.Until(next))
	}
	return max(d, time.Until(last.Add(l.cfg.MinGap)), 0)
}
