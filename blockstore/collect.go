package blockstore

import (
	"context"
	"sync"
	"time"
)

// DefaultCollectInterval is the least time between two sweeps of a
// [Collector] when its config names none.
const DefaultCollectInterval = 30 * time.Second

// CollectorConfig configures a [Collector].
type CollectorConfig struct {
	// Links and Options are passed to every [Store.GC].
	Links   LinkFunc
	Options []GCOption
	// Interval is the least time from the end of one sweep to the start
	// of the next; 0 means [DefaultCollectInterval].
	Interval time.Duration
	// Swept, if set, is told the outcome of every sweep, from the
	// collector's goroutine (for tests and metrics). It must not block.
	Swept func(GCResult, error)
}

// Collector runs [Store.GC] in the background when asked to: requests
// coalesce (at most one is pending, however many arrive), and two sweeps
// are at least Interval apart, so a peer that makes a node request a
// collection at a high rate costs it at most one sweep per Interval. A
// sweep waits for the [Store.GCGuard] holders like any GC, so it never
// removes a block of an add in progress or of a transfer in flight.
//
// [NewCollector] starts nothing; [Collector.Start] launches its goroutine,
// and [Collector.Close] cancels a sweep in progress (or waiting for
// guards) and waits for the goroutine to return.
type Collector struct {
	s   *Store
	cfg CollectorConfig
	// req holds the pending request, if any.
	req    chan struct{}
	ctx    context.Context // cancelled by Close; sweeps run under it
	cancel context.CancelFunc
	wg     sync.WaitGroup
}

// NewCollector returns a Collector over s.
func NewCollector(s *Store, cfg CollectorConfig) *Collector {
	if cfg.Interval <= 0 {
		cfg.Interval = DefaultCollectInterval
	}
	ctx, cancel := context.WithCancel(context.Background())
	return &Collector{s: s, cfg: cfg, req: make(chan struct{}, 1), ctx: ctx, cancel: cancel}
}

// Start launches the goroutine that serves requests.
func (c *Collector) Start() {
	c.wg.Go(c.loop)
}

// Request asks for a sweep. It never blocks: a request made while another
// is pending, or while a sweep waits for its Interval, joins it. A request
// made during a sweep is served by the next one, since the running sweep
// may have marked before the request's cause.
// After Close it does nothing.
func (c *Collector) Request() {
	if c.ctx.Err() != nil {
		return
	}
	select {
	case c.req <- struct{}{}:
	default:
	}
}

// Close stops the collector and waits for its goroutine. It is
// idempotent.
func (c *Collector) Close() error {
	c.cancel()
	c.wg.Wait()
	return nil
}

func (c *Collector) loop() {
	var last time.Time // end of the last sweep
	for {
		select {
		case <-c.ctx.Done():
			return
		case <-c.req:
		}
		if !c.waitUntil(last.Add(c.cfg.Interval)) {
			return
		}
		// A request made while this one waited is served by this sweep,
		// which has not marked yet.
		select {
		case <-c.req:
		default:
		}
		res, err := c.s.GC(c.ctx, c.cfg.Links, c.cfg.Options...)
		last = time.Now()
		if err != nil && c.ctx.Err() == nil {
			log.Warnw("background gc failed", "err", err)
		}
		if c.cfg.Swept != nil {
			c.cfg.Swept(res, err)
		}
	}
}

// waitUntil waits until t, and reports false if the collector closed
// first.
func (c *Collector) waitUntil(t time.Time) bool {
	d := time.Until(t)
	if d <= 0 {
		return c.ctx.Err() == nil
	}
	timer := time.NewTimer(d)
	defer timer.Stop()
	select {
	case <-timer.C:
		return true
	case <-c.ctx.Done():
		return false
	}
}

// GCWaiting reports how many GCs wait for [Store.GCGuard] holders to
// release their guards (for tests and diagnostics).
func (s *Store) GCWaiting() int { return s.gc.gcWaiting() }
