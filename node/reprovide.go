package node

import (
	"time"

	"github.com/ipfs/go-cid"
	"github.com/libp2p/go-libp2p/core/event"
	"golang.org/x/sync/errgroup"
)

// reprovideInterval is how often the node announces again every root it
// holds. Provider records expire (after 48 h in kad-dht), and the peers
// that keep them come and go.
const reprovideInterval = 12 * time.Hour

// reprovideWorkers bounds the announcements in flight.
const reprovideWorkers = 4

// dhtPeerCheck is how often a node without DHT peers looks again.
const dhtPeerCheck = 2 * time.Second

// reprovideLoop announces every pinned root (the node's own files and the
// replicas it holds) as soon as the DHT has a peer, then every
// reprovideInterval, until the network closes.
func (nw *online) reprovideLoop() {
	defer nw.wg.Done()
	for {
		if !nw.waitForDHTPeer() {
			return
		}
		nw.reprovide()
		t := time.NewTimer(reprovideInterval)
		select {
		case <-nw.ctx.Done():
			t.Stop()
			return
		case <-t.C:
		}
	}
}

// waitForDHTPeer returns once the DHT's routing table holds a peer (true)
// or the network closes (false). It checks after every peer identified,
// and every dhtPeerCheck, since the DHT adds a peer to its table a moment
// after identification.
func (nw *online) waitForDHTPeer() bool {
	sub, err := nw.host.EventBus().Subscribe(new(event.EvtPeerIdentificationCompleted))
	if err != nil {
		log.Warnw("reprovide: subscribe to identify events", "err", err)
		return nw.ctx.Err() == nil
	}
	defer sub.Close()
	t := time.NewTicker(dhtPeerCheck)
	defer t.Stop()
	for nw.dht.RoutingTable().Size() == 0 {
		select {
		case <-nw.ctx.Done():
			return false
		case <-sub.Out():
		case <-t.C:
		}
	}
	return true
}

// reprovide announces every pinned root once.
func (nw *online) reprovide() {
	pins, err := nw.node.store.Pins(nw.ctx)
	if err != nil {
		log.Warnw("reprovide: list pins", "err", err)
		return
	}
	seen := make(map[cid.Cid]bool, len(pins))
	var g errgroup.Group
	g.SetLimit(reprovideWorkers)
	for _, p := range pins {
		if seen[p.Root] || nw.ctx.Err() != nil {
			continue
		}
		seen[p.Root] = true
		g.Go(func() error {
			nw.provide(p.Root)
			return nil
		})
	}
	_ = g.Wait() // provide logs its own failures
	log.Debugw("reprovided", "roots", len(seen))
}
