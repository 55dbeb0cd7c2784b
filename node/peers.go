package node

import (
	"context"
	"fmt"
	"slices"
	"sync"
	"time"

	"github.com/ipfs/go-cid"
	"github.com/libp2p/go-libp2p/core/peer"
	ma "github.com/multiformats/go-multiaddr"

	"github.com/casd/casd/core"
	"github.com/casd/casd/protocol"
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
	if err := n.net.host.Connect(ctx, *ai); err != nil {
		return fmt.Errorf("connect %s: %w", ai.ID, err)
	}
	return nil
}

// Peers lists the connected peers or, with all, every peer with a known
// address.
func (n *Node) Peers(ctx context.Context, all bool) ([]core.PeerInfo, error) {
	if n.net == nil {
		return nil, core.ErrOffline
	}
	h := n.net.host
	ids := h.Network().Peers()
	if all {
		ids = h.Peerstore().PeersWithAddrs()
	}
	out := []core.PeerInfo{}
	for _, p := range ids {
		if p == h.ID() {
			continue
		}
		info := core.PeerInfo{ID: p.String(), Addrs: []string{}, Connected: len(h.Network().ConnsToPeer(p)) > 0}
		for _, c := range h.Network().ConnsToPeer(p) {
			info.Addrs = append(info.Addrs, c.RemoteMultiaddr().String())
		}
		if len(info.Addrs) == 0 {
			for _, a := range h.Peerstore().Addrs(p) {
				info.Addrs = append(info.Addrs, a.String())
			}
		}
		out = append(out, info)
	}
	slices.SortFunc(out, func(a, b core.PeerInfo) int { return cmpString(a.ID, b.ID) })
	return out, nil
}

func cmpString(a, b string) int {
	switch {
	case a < b:
		return -1
	case a > b:
		return 1
	}
	return 0
}

// Status asks the root's providers, and the connected peers, whether they
// hold the whole file right now. The node itself never counts.
func (n *Node) Status(ctx context.Context, c string) (*core.StatusInfo, error) {
	if n.net == nil {
		return nil, core.ErrOffline
	}
	ref, err := parseCID(c)
	if err != nil {
		return nil, err
	}
	f := n.net.newFetcher(ctx, ref)
	sources, confirmed := f.sources(ctx)
	f.close()
	var (
		wg       sync.WaitGroup
		mu       sync.Mutex // guards replicas
		replicas = []string{}
	)
	for _, p := range sources {
		wg.Add(1)
		go func() {
			defer wg.Done()
			// The lookup asked hints and providers just now; only the
			// connected peers it added last are asked here.
			if confirmed[p] || n.net.holds(ctx, p, ref, statusTimeout) {
				mu.Lock()
				replicas = append(replicas, p.String())
				mu.Unlock()
			}
		}()
	}
	wg.Wait()
	slices.Sort(replicas)
	return &core.StatusInfo{Cid: ref.String(), Goal: n.repo.Config.Replication.Factor, Replicas: replicas}, nil
}

// statusTimeout bounds how long a peer may take to tell `casd status`
// whether it holds a root.
const statusTimeout = 10 * time.Second

// holds asks p whether it holds root whole, waiting at most timeout.
func (nw *online) holds(ctx context.Context, p peer.ID, root cid.Cid, timeout time.Duration) bool {
	ctx, cancel := context.WithTimeout(ctx, timeout)
	defer cancel()
	ok, err := protocol.HasRoot(ctx, nw.host, p, root)
	if err != nil {
		log.Debugw("has root", "peer", p, "cid", root, "err", err)
	}
	return ok && err == nil
}
