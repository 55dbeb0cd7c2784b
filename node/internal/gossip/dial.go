package gossip

import (
	"context"
	"sync"
	"time"

	"github.com/libp2p/go-libp2p/core/host"
	"github.com/libp2p/go-libp2p/core/network"
	"github.com/libp2p/go-libp2p/core/peer"
)

// Bounds of dialling.
const (
	dialTimeout = 10 * time.Second
	// dialWorkers serve the queue of learned peers, of at most dialQueue.
	dialWorkers = 4
	dialQueue   = 64
	// rememberedDials bounds the dials of remembered peers at once.
	rememberedDials = 8
)

// dialer connects to learned peers while the host is below its low-water
// mark: a bounded queue, deduplicated, served by dialWorkers workers.
type dialer struct {
	ctx      context.Context
	h        host.Host
	lowWater int
	queued   chan peer.ID

	mu      sync.Mutex // guards pending
	pending map[peer.ID]struct{}
}

func newDialer(ctx context.Context, h host.Host, lowWater int) *dialer {
	return &dialer{
		ctx:      ctx,
		h:        h,
		lowWater: lowWater,
		queued:   make(chan peer.ID, dialQueue),
		pending:  make(map[peer.ID]struct{}),
	}
}

// start launches the workers in wg.
func (d *dialer) start(wg *sync.WaitGroup) {
	for range dialWorkers {
		wg.Go(d.work)
	}
}

// belowLowWater reports whether the host wants more connections.
func (d *dialer) belowLowWater() bool {
	return len(d.h.Network().Peers()) < d.lowWater
}

// queue queues a dial of each of ps not connected, not already queued,
// while the host is below its low-water mark. It never blocks: a full
// queue drops the peer until gossip names it again.
func (d *dialer) queue(ps []peer.ID) {
	if d.ctx.Err() != nil || !d.belowLowWater() {
		return
	}
	for _, p := range ps {
		if d.h.Network().Connectedness(p) == network.Connected || !d.claim(p) {
			continue
		}
		select {
		case d.queued <- p:
		default:
			d.done(p)
			log.Debugw("gossip dial queue full, dropping peer", "peer", p)
		}
	}
}

// claim marks p pending; false if it already was.
func (d *dialer) claim(p peer.ID) bool {
	d.mu.Lock()
	defer d.mu.Unlock()
	if _, dup := d.pending[p]; dup {
		return false
	}
	d.pending[p] = struct{}{}
	return true
}

func (d *dialer) done(p peer.ID) {
	d.mu.Lock()
	delete(d.pending, p)
	d.mu.Unlock()
}

// work dials queued peers until the dialer's context ends, skipping them
// once the host is no longer below its low-water mark.
func (d *dialer) work() {
	for {
		select {
		case <-d.ctx.Done():
			return
		case p := <-d.queued:
			if d.belowLowWater() {
				dial(d.ctx, d.h, peer.AddrInfo{ID: p}, "learned")
			}
			d.done(p)
		}
	}
}

// dial connects h to ai.ID, at ai.Addrs and the addresses the peerstore
// holds, within dialTimeout; a failure is logged at debug (the peer may be
// gone).
func dial(ctx context.Context, h host.Host, ai peer.AddrInfo, kind string) {
	if h.Network().Connectedness(ai.ID) == network.Connected {
		return
	}
	ctx, cancel := context.WithTimeout(ctx, dialTimeout)
	defer cancel()
	if err := h.Connect(ctx, ai); err != nil {
		log.Debugw("dial "+kind+" peer", "peer", ai.ID, "err", err)
		return
	}
	log.Debugw("connected "+kind+" peer", "peer", ai.ID)
}

// dialRemembered dials the remembered peers at the addresses last known of
// them (the peerstore's may have expired), most recent first, at most
// rememberedDials at once, and returns when every dial has. Only one runs
// at a time; a call while another runs returns at once.
func (g *Gossip) dialRemembered(ctx context.Context) {
	if !g.remembering.CompareAndSwap(false, true) {
		return
	}
	defer g.remembering.Store(false)
	sem := make(chan struct{}, rememberedDials)
	var wg sync.WaitGroup
	defer wg.Wait()
	for _, ai := range g.mem.addrInfos() {
		select {
		case sem <- struct{}{}:
		case <-ctx.Done():
			return
		}
		wg.Go(func() {
			defer func() { <-sem }()
			dial(ctx, g.h, ai, "remembered")
		})
	}
}
