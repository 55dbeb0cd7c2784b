package gossip

import (
	"github.com/libp2p/go-libp2p/core/event"
	"github.com/libp2p/go-libp2p/p2p/host/eventbus"
)

// identifyBuffer bounds the identify events waiting for watchIdentify; the
// event bus blocks its emitter beyond it, so the loop does nothing slow.
const identifyBuffer = 64

// subscribeIdentify subscribes to the host's completed identifications.
// libp2p verifies the signed record a peer sends in identify, then keeps
// only its addresses; the Gossip keeps the record too, so that a connected
// peer's record is in the sample and the remembered file before any
// exchange with it. A failure is logged: gossip then learns connected
// peers' records by exchanging with them.
func (g *Gossip) subscribeIdentify() event.Subscription {
	sub, err := g.h.EventBus().Subscribe(new(event.EvtPeerIdentificationCompleted),
		eventbus.Name("casd-gossip"), eventbus.BufSize(identifyBuffer))
	if err != nil {
		log.Warnw("subscribe to identify events", "err", err)
		return nil
	}
	return sub
}

// watchIdentify consumes the signed record of each identified peer into
// the certified address book until Close, then closes sub.
func (g *Gossip) watchIdentify(sub event.Subscription) {
	defer func() {
		if err := sub.Close(); err != nil {
			log.Debugw("close identify subscription", "err", err)
		}
	}()
	for {
		select {
		case <-g.ctx.Done():
			return
		case e := <-sub.Out():
			ev, ok := e.(event.EvtPeerIdentificationCompleted)
			if !ok || ev.SignedPeerRecord == nil || ev.Peer == g.h.ID() {
				continue
			}
			if _, err := g.cab.ConsumePeerRecord(ev.SignedPeerRecord, GossipAddrTTL); err != nil {
				log.Debugw("keep identified peer's record", "peer", ev.Peer, "err", err)
			}
		}
	}
}
