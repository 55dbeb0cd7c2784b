// Package gossip spreads what a node knows of other peers over
// /cas/peers/1.0, and remembers the peers it was recently connected to.
//
// Every Interval (jittered by ±20%) a [Gossip] exchanges a bounded sample
// of signed peer records (its own always among them) with a few connected
// peers. The records it receives, already verified by package protocol,
// are merged into the host's certified address book with [GossipAddrTTL];
// while the node has fewer connections than its low-water mark it dials
// the peers it learned of, through a bounded queue served by a few
// workers. [Gossip.Allow] refuses a peer that asks for exchanges faster
// than a token bucket lets it.
//
// The [RememberMax] most recently connected peers are kept in the repo's
// peers file (peers.json, written atomically), loaded when the Gossip is
// built and dialled when the node has no connection: at start, and at each
// round while it stays alone.
//
// A Gossip follows the node's lifecycle (docs/architecture.md): New starts
// nothing, Start launches its loops, Close cancels them, waits for every
// goroutine it started and saves the remembered peers.
package gossip
