package node

import (
	"sync/atomic"

	"github.com/libp2p/go-libp2p/core/host"
	"github.com/libp2p/go-libp2p/core/network"
	"github.com/libp2p/go-libp2p/core/peer"

	"github.com/casd/casd/node/internal/peers"
)

// discovery keeps, beside the peerstore, how the node learned of each peer
// and when it last heard of it ([peers.Sources]), for `casd peers --all`.
// It is fed by the DHT and mDNS hooks, the bootstrap list, gossip (which
// notes its own sources), and a network notifee: a connection or a
// disconnection is news of the peer, and a peer that dialled us is of
// source "inbound". A peer that falls out of the bounded table is
// forgotten by the peerstore too, unless it is connected, so that what
// the node knows stays bounded however many peers others name.
type discovery struct {
	sources *peers.Sources
	host    atomic.Pointer[host.Host] // set by attach; nil before
	notifee *network.NotifyBundle
}

// newDiscovery keeps at most max peers (peers.MaxKnownPeers when max <= 0).
func newDiscovery(max int) *discovery {
	d := &discovery{}
	d.sources = peers.NewSources(max, d.forget)
	d.notifee = &network.NotifyBundle{
		ConnectedF:    func(_ network.Network, c network.Conn) { d.connected(c) },
		DisconnectedF: func(_ network.Network, c network.Conn) { d.sources.Seen(c.RemotePeer()) },
	}
	return d
}

// attach starts watching h's connections, counts those already open
// (the bootstrap peers', dialled while the stack was built), and notes the
// bootstrap peers.
func (d *discovery) attach(h host.Host, bootstrap []peer.AddrInfo) {
	d.host.Store(&h)
	h.Network().Notify(d.notifee)
	for _, c := range h.Network().Conns() {
		d.connected(c)
	}
	for _, ai := range bootstrap {
		if ai.ID != h.ID() {
			d.sources.Note(ai.ID, peers.SourceBootstrap)
		}
	}
}

// detach stops watching the host's connections.
func (d *discovery) detach() {
	if hp := d.host.Load(); hp != nil {
		(*hp).Network().StopNotify(d.notifee)
	}
}

func (d *discovery) connected(c network.Conn) {
	if c.Stat().Direction == network.DirInbound {
		d.sources.Note(c.RemotePeer(), peers.SourceInbound)
		return
	}
	d.sources.Seen(c.RemotePeer())
}

// dhtPeer and mdnsPeer are the hooks of the DHT and of mDNS.
func (d *discovery) dhtPeer(p peer.ID)  { d.sources.Note(p, peers.SourceDHT) }
func (d *discovery) mdnsPeer(p peer.ID) { d.sources.Note(p, peers.SourceMDNS) }

// forget drops p, which fell out of the table, from the peerstore, unless
// it is connected (then it is back in the table at its next news).
func (d *discovery) forget(p peer.ID) {
	hp := d.host.Load()
	if hp == nil {
		return
	}
	h := *hp
	if h.Network().Connectedness(p) == network.Connected {
		return
	}
	h.Peerstore().ClearAddrs(p)
	h.Peerstore().RemovePeer(p)
}
