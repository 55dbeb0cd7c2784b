package node

import (
	"time"

	"github.com/ipfs/go-cid"
	"golang.org/x/sync/errgroup"
)

// reprovideInterval is how often the node announces again every root it
// holds. Provider records expire (after 48 h in kad-dht), and the peers
// that keep them come and go.
const reprovideInterval = 12 * time.Hour

// reprovideWorkers bounds the announcements in flight.
const reprovideWorkers = 4

// reprovideRetry is how soon a node whose routing table was empty (it has
// no peers yet) tries again.
const reprovideRetry = time.Minute

// reprovideLoop announces every pinned root (the node's own files and the
// replicas it holds) once the DHT's first refresh is done, then every
// reprovideInterval (every reprovideRetry while the node has no DHT peer),
// until the network closes.
func (nw *online) reprovideLoop() {
	defer nw.wg.Done()
	select {
	case <-nw.dht.ForceRefresh():
	case <-nw.ctx.Done():
		return
	}
	for {
		wait := reprovideInterval
		if nw.dht.RoutingTable().Size() == 0 {
			wait = reprovideRetry
		} else {
			nw.reprovide()
		}
		t := time.NewTimer(wait)
		select {
		case <-nw.ctx.Done():
			t.Stop()
			return
		case <-t.C:
		}
	}
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
