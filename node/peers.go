package node

import (
	"context"
	"fmt"
	"slices"
	"strings"
	"time"

	"github.com/libp2p/go-libp2p/core/network"
	"github.com/libp2p/go-libp2p/core/peer"
	ma "github.com/multiformats/go-multiaddr"

	"github.com/casd/casd/core"
)

// Connect dials the peer at addr, a multiaddr ending in /p2p/<id>.
func (n *Node) Connect(ctx context.Context, addr string) error {
	if n.net == nil {
		return core.ErrOffline
	}
	a, err := ma.NewMultiaddr(addr)
	if err != nil {
		return fmt.Errorf("%w: %q is not a multiaddr: %v", core.ErrBadInput, addr, err)
	}
	ai, err := peer.AddrInfoFromP2pAddr(a)
	if err != nil {
		return fmt.Errorf("%w: %q: %v (it must end in /p2p/<peer id>)", core.ErrBadInput, addr, err)
	}
	if err := n.net.stack.Host.Connect(ctx, *ai); err != nil {
		return fmt.Errorf("connect %s: %w", ai.ID, err)
	}
	return nil
}

// Peers lists the connected peers or, with all, also every peer of which
// the peerstore holds an address, each with how the node learned of it
// and when it last heard of it (now, for a connected peer).
func (n *Node) Peers(ctx context.Context, all bool) ([]core.PeerInfo, error) {
	if n.net == nil {
		return nil, core.ErrOffline
	}
	h := n.net.stack.Host
	ids := h.Network().Peers()
	if all {
		ids = append(ids, h.Peerstore().PeersWithAddrs()...)
	}
	slices.Sort(ids)
	ids = slices.Compact(ids)
	now := time.Now()
	out := []core.PeerInfo{}
	for _, p := range ids {
		if p != h.ID() {
			out = append(out, n.net.peerInfo(p, now))
		}
	}
	slices.SortFunc(out, func(a, b core.PeerInfo) int { return strings.Compare(a.ID, b.ID) })
	return out, nil
}

// peerInfo describes p: the addresses of its connections, else those the
// peerstore holds; its sources; when it was last heard of.
func (nw *online) peerInfo(p peer.ID, now time.Time) core.PeerInfo {
	h := nw.stack.Host
	conns := h.Network().ConnsToPeer(p)
	info := core.PeerInfo{ID: p.String(), Addrs: connAddrs(conns), Connected: len(conns) > 0, Sources: []string{}}
	if len(info.Addrs) == 0 {
		for _, a := range h.Peerstore().Addrs(p) {
			info.Addrs = append(info.Addrs, a.String())
		}
	}
	if src, ok := nw.disc.sources.Get(p); ok {
		info.Sources = src.Sources.Names()
		info.LastSeen = src.LastSeen.UTC()
	}
	if info.Connected {
		info.LastSeen = now.UTC()
	}
	return info
}

// connAddrs returns the remote addresses of conns, each once, in the
// order of the connections: two peers that dial each other at once over
// QUIC hold two connections between the same two addresses.
func connAddrs(conns []network.Conn) []string {
	out := []string{}
	for _, c := range conns {
		if a := c.RemoteMultiaddr().String(); !slices.Contains(out, a) {
			out = append(out, a)
		}
	}
	return out
}

// Status describes the replicas of a root. On the owner's node, once the
// repair loop checked the root, it answers from the loop's state: the
// replicas that passed the last check, with the times of their audits and
// their leases. Otherwise it asks the root's holders (hints, providers,
// and the connected peers) whether they hold the whole file right now,
// and, if this node holds it, checks each claim with a storage challenge
// (see fetch.Retriever.Holders). The node itself never counts.
func (n *Node) Status(ctx context.Context, c string) (*core.StatusInfo, error) {
	if n.net == nil {
		return nil, core.ErrOffline
	}
	ref, err := parseCID(c)
	if err != nil {
		return nil, err
	}
	if info, ok := n.net.repl.Status(ref); ok && n.mustOwn(ctx, ref) == nil {
		return &info, nil
	}
	replicas, holderInfo := []string{}, []core.HolderInfo{}
	holders, verified := n.net.fetch.Holders(ctx, ref, statusTimeout)
	for _, p := range holders {
		replicas = append(replicas, p.String())
	}
	slices.Sort(replicas)
	for _, p := range replicas {
		holderInfo = append(holderInfo, core.HolderInfo{ID: p, Verified: verified})
	}
	return &core.StatusInfo{Cid: ref.String(), Goal: n.repo.Config.Replication.Factor, Replicas: replicas,
		Verified: verified, Holders: holderInfo}, nil
}

// statusTimeout bounds how long a connected peer may take to tell
// `casd status` whether it holds a root.
const statusTimeout = 10 * time.Second
