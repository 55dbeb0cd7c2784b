// Package announce keeps a node's provider records in the DHT: one bounded
// queue of roots to announce, served by a fixed number of workers, fed by
// new files and replicas ([Announcer.Provide]) and, as soon as the DHT has
// a peer and then every reprovide interval, by every pinned root.
package announce

import (
	"context"
	"sync"
	"time"

	"github.com/ipfs/go-cid"
	golog "github.com/ipfs/go-log/v2"
	kb "github.com/libp2p/go-libp2p-kbucket"
	"github.com/libp2p/go-libp2p/core/event"

	"github.com/casd/casd/blockstore"
)

var log = golog.Logger("casd/announce")

// Defaults and bounds.
const (
	// DefaultInterval is how often every held root is announced again.
	// Provider records expire (after 48 h in kad-dht), and the peers that
	// keep them come and go.
	DefaultInterval = 12 * time.Hour
	// workers bounds the announcements in flight.
	workers = 4
	// maxQueued bounds the roots waiting to be announced. A Provide that
	// finds the queue full drops its root: the root is pinned, so the next
	// reprovide sweep announces it.
	maxQueued = 4096
	// provideTimeout bounds one announcement.
	provideTimeout = time.Minute
	// dhtPeerCheck is how often a node without DHT peers looks again.
	dhtPeerCheck = 2 * time.Second
)

// Router is the part of the DHT the announcer uses (*dht.IpfsDHT).
type Router interface {
	Provide(ctx context.Context, key cid.Cid, brdcst bool) error
	RoutingTable() *kb.RoutingTable
}

// Pinner lists the pinned roots (*blockstore.Store).
type Pinner interface {
	Pins(ctx context.Context) ([]blockstore.Pin, error)
}

// Config is what an [Announcer] is built with.
type Config struct {
	Router Router
	Pins   Pinner
	// Events is the host's event bus: a newly identified peer may be the
	// DHT's first.
	Events event.Bus
	// Interval is the reprovide period; zero means DefaultInterval.
	Interval time.Duration
}

// Announcer announces roots as provider records. Start launches its
// workers and its reprovide loop; Close stops them and waits.
type Announcer struct {
	cfg    Config
	queue  chan cid.Cid
	ctx    context.Context // the announcer's lifetime; cancelled by Close
	cancel context.CancelFunc
	wg     sync.WaitGroup // the loops Start launched

	mu     sync.Mutex // guards queued
	queued map[cid.Cid]bool
}

// New returns an announcer over cfg; it starts nothing.
func New(cfg Config) *Announcer {
	if cfg.Interval <= 0 {
		cfg.Interval = DefaultInterval
	}
	ctx, cancel := context.WithCancel(context.Background())
	return &Announcer{cfg: cfg, queue: make(chan cid.Cid, maxQueued), ctx: ctx, cancel: cancel, queued: make(map[cid.Cid]bool)}
}

// Start launches the workers and the reprovide loop.
func (a *Announcer) Start() {
	for range workers {
		a.wg.Go(a.work)
	}
	a.wg.Go(a.reprovideLoop)
}

// Close stops the workers and the loop and waits for them; roots still
// queued are not announced. It is safe to call more than once.
func (a *Announcer) Close() error {
	a.cancel()
	a.wg.Wait()
	return nil
}

// Provide queues root for announcement and returns at once. A root already
// queued is not queued twice; after Close, or with the queue full, root is
// dropped (a pinned root is announced again by the next sweep).
func (a *Announcer) Provide(root cid.Cid) {
	if a.ctx.Err() != nil || !a.mark(root) {
		return
	}
	select {
	case a.queue <- root:
	default:
		a.unmark(root)
		log.Debugw("announce queue full; the next sweep announces it", "cid", root)
	}
}

// mark records root as queued; false if it already was.
func (a *Announcer) mark(root cid.Cid) bool {
	a.mu.Lock()
	defer a.mu.Unlock()
	if a.queued[root] {
		return false
	}
	a.queued[root] = true
	return true
}

func (a *Announcer) unmark(root cid.Cid) {
	a.mu.Lock()
	defer a.mu.Unlock()
	delete(a.queued, root)
}

// work announces queued roots until Close.
func (a *Announcer) work() {
	for {
		select {
		case <-a.ctx.Done():
			return
		case root := <-a.queue:
			a.unmark(root)
			a.provide(root)
		}
	}
}

// provide announces root, logging a failure: a network without other
// peers cannot take the record yet.
func (a *Announcer) provide(root cid.Cid) {
	ctx, cancel := context.WithTimeout(a.ctx, provideTimeout)
	defer cancel()
	if err := a.cfg.Router.Provide(ctx, root, true); err != nil {
		log.Debugw("provide", "cid", root, "err", err)
	}
}

// reprovideLoop queues every pinned root (the node's own files and the
// replicas it holds) as soon as the DHT has a peer, then every interval.
func (a *Announcer) reprovideLoop() {
	for {
		if !a.waitForDHTPeer() {
			return
		}
		a.sweep()
		t := time.NewTimer(a.cfg.Interval)
		select {
		case <-a.ctx.Done():
			t.Stop()
			return
		case <-t.C:
		}
	}
}

// waitForDHTPeer returns once the DHT's routing table holds a peer (true)
// or the announcer closes (false). It checks after every peer identified,
// and every dhtPeerCheck, since the DHT adds a peer to its table a moment
// after identification.
func (a *Announcer) waitForDHTPeer() bool {
	sub, err := a.cfg.Events.Subscribe(new(event.EvtPeerIdentificationCompleted))
	if err != nil {
		log.Warnw("reprovide: subscribe to identify events", "err", err)
		return a.ctx.Err() == nil
	}
	defer sub.Close()
	t := time.NewTicker(dhtPeerCheck)
	defer t.Stop()
	for a.cfg.Router.RoutingTable().Size() == 0 {
		select {
		case <-a.ctx.Done():
			return false
		case <-sub.Out():
		case <-t.C:
		}
	}
	return true
}

// sweep queues every pinned root once, waiting for room in the queue.
func (a *Announcer) sweep() {
	pins, err := a.cfg.Pins.Pins(a.ctx)
	if err != nil {
		log.Warnw("reprovide: list pins", "err", err)
		return
	}
	n := 0
	for _, p := range pins {
		if !a.mark(p.Root) {
			continue // queued already (or several pins of one root)
		}
		select {
		case a.queue <- p.Root:
			n++
		case <-a.ctx.Done():
			return
		}
	}
	log.Debugw("reprovide queued", "roots", n)
}
