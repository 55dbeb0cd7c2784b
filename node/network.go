package node

import (
	"context"
	"crypto/ed25519"
	"errors"
	"fmt"
	"io"
	"sync"
	"time"

	dht "github.com/libp2p/go-libp2p-kad-dht"
	"github.com/libp2p/go-libp2p/core/host"
	"github.com/libp2p/go-libp2p/core/peer"
	libp2pproto "github.com/libp2p/go-libp2p/core/protocol"
	ma "github.com/multiformats/go-multiaddr"

	"github.com/casd/casd/core"
	"github.com/casd/casd/crypt"
	"github.com/casd/casd/protocol"
)

// networkWindow is how many chunks a read over the network keeps in flight.
const networkWindow = 16

// retryInterval is how often the node retries files that reached fewer
// replicas than their goal.
const retryInterval = 30 * time.Second

// maxStrikes is how much bad input a peer may send before it is
// disconnected.
const maxStrikes = 3

// online is the online half of a node: host, DHT, protocols, and the
// loops that keep replicas. It owns its goroutines: close waits for them.
type online struct {
	node  *Node
	host  host.Host
	dht   *dht.IpfsDHT
	proto *protocol.Service
	mdns  io.Closer
	owner ed25519.PrivateKey

	ctx    context.Context // the network's lifetime; cancelled by close
	cancel context.CancelFunc
	wg     sync.WaitGroup

	mu sync.Mutex // guards the fields below
	// pending are roots that reached fewer replicas than their goal.
	pending map[string]struct{}
	// strikes counts bad input per peer.
	strikes map[peer.ID]int
	// hints are the peers known to hold a root (see hints.go), by root.
	hints map[string][]peer.ID
}

func ourProtocols() []string {
	return []string{string(protocol.StoreID), string(protocol.GetID)}
}

// startNetwork builds the host and DHT from the repo's config and starts
// the protocols. On error nothing is left running.
func startNetwork(ctx context.Context, n *Node) (_ *online, err error) {
	cfg := n.repo.Config
	bootstrap, err := parseBootstrap(cfg.Bootstrap)
	if err != nil {
		return nil, err
	}
	h, err := newHost(HostOptions{
		Identity:       n.repo.Identity,
		ListenAddrs:    cfg.Addresses.Swarm,
		AnnounceAddrs:  cfg.Addresses.Announce,
		ConnLow:        cfg.Swarm.ConnMgr.LowWater,
		ConnHigh:       cfg.Swarm.ConnMgr.HighWater,
		ConnGrace:      cfg.Swarm.ConnMgr.GracePeriod.Duration,
		RelayService:   cfg.Swarm.RelayService,
		NATPortMap:     cfg.Swarm.NATPortMap,
		HolePunching:   cfg.Swarm.HolePunching,
		ProtocolLimits: []libp2pproto.ID{protocol.StoreID, protocol.GetID},
	})
	if err != nil {
		return nil, fmt.Errorf("start libp2p host: %w", err)
	}
	defer func() {
		if err != nil {
			err = errors.Join(err, h.Close())
		}
	}()
	d, err := newDHT(ctx, h, bootstrap)
	if err != nil {
		return nil, fmt.Errorf("start DHT: %w", err)
	}
	nctx, cancel := context.WithCancel(context.Background())
	nw := &online{
		node: n, host: h, dht: d, owner: crypt.OwnerKey(&n.secrets.Master),
		ctx: nctx, cancel: cancel,
		pending: make(map[string]struct{}), strikes: make(map[peer.ID]int), hints: make(map[string][]peer.ID),
	}
	nw.proto = protocol.New(h,
		protocol.WithGetBackend(getBackend{n.store}),
		protocol.WithStoreBackend(&storeBackend{nw: nw}),
		protocol.WithStrikeFunc(nw.strike),
	)
	if err := nw.loadPending(ctx); err != nil {
		return nil, errors.Join(err, nw.stopProtocols())
	}
	nw.proto.Start()
	if cfg.Discovery.MDNS {
		if nw.mdns, err = startMDNS(h, ""); err != nil {
			return nil, errors.Join(fmt.Errorf("start mDNS: %w", err), nw.stopProtocols())
		}
	}
	nw.wg.Add(2)
	go nw.retryLoop()
	go nw.reprovideLoop()
	return nw, nil
}

func parseBootstrap(addrs []string) ([]peer.AddrInfo, error) {
	mas := make([]ma.Multiaddr, 0, len(addrs))
	for _, s := range addrs {
		a, err := ma.NewMultiaddr(s)
		if err != nil {
			return nil, fmt.Errorf("bootstrap address %q: %w", s, err)
		}
		mas = append(mas, a)
	}
	infos, err := peer.AddrInfosFromP2pAddrs(mas...)
	if err != nil {
		return nil, fmt.Errorf("bootstrap addresses: %w", err)
	}
	return infos, nil
}

// close stops the loops, then the protocols, the DHT and the host.
func (nw *online) close() error {
	nw.cancel()
	nw.wg.Wait()
	var errs []error
	if nw.mdns != nil {
		errs = append(errs, nw.mdns.Close())
	}
	errs = append(errs, nw.stopProtocols(), nw.host.Close())
	return errors.Join(errs...)
}

// stopProtocols closes the stream handlers and the DHT.
func (nw *online) stopProtocols() error {
	nw.cancel()
	return errors.Join(nw.proto.Close(), nw.dht.Close())
}

// strike counts bad input from p and disconnects it after maxStrikes.
func (nw *online) strike(p peer.ID, reason string) {
	nw.mu.Lock()
	nw.strikes[p]++
	n := nw.strikes[p]
	nw.mu.Unlock()
	log.Debugw("strike", "peer", p, "reason", reason, "strikes", n)
	if n >= maxStrikes {
		log.Warnw("disconnecting misbehaving peer", "peer", p, "strikes", n)
		_ = nw.host.Network().ClosePeer(p) // best effort: the peer may be gone already
	}
}

// describe fills in the online parts of `casd id`.
func (nw *online) describe(info *core.IDInfo) {
	self := "/p2p/" + nw.host.ID().String()
	info.Addrs = info.Addrs[:0]
	for _, a := range nw.host.Addrs() {
		info.Addrs = append(info.Addrs, a.String()+self)
	}
	info.Protocols = info.Protocols[:0]
	for _, p := range nw.host.Mux().Protocols() {
		info.Protocols = append(info.Protocols, string(p))
	}
}
