package node

import (
	"context"
	"errors"
	"fmt"

	"github.com/ipfs/go-cid"
	"github.com/libp2p/go-libp2p/core/host"
	"github.com/libp2p/go-libp2p/core/peer"
	libp2pproto "github.com/libp2p/go-libp2p/core/protocol"

	"github.com/casd/casd/blockstore"
	"github.com/casd/casd/config"
	"github.com/casd/casd/core"
	"github.com/casd/casd/crypt"
	"github.com/casd/casd/dag"
	"github.com/casd/casd/node/internal/announce"
	"github.com/casd/casd/node/internal/fetch"
	"github.com/casd/casd/node/internal/gossip"
	"github.com/casd/casd/node/internal/p2p"
	"github.com/casd/casd/node/internal/peers"
	"github.com/casd/casd/node/internal/replicate"
	"github.com/casd/casd/protocol"
)

// networkWindow is how many chunks a read over the network keeps in flight.
const networkWindow = 16

// online is the online half of a node: its parts, each built with what it
// needs and each owning its goroutines. It holds no state of its own.
type online struct {
	stack    *p2p.Stack
	disc     *discovery
	gossip   *gossip.Gossip
	proto    *protocol.Service
	strikes  *peers.Strikes
	bans     *peers.Bans
	hints    *peers.Hints
	fetch    *fetch.Retriever
	announce *announce.Announcer
	repl     *replicate.Replicator
	collect  *blockstore.Collector
	leases   *leaseSweep
}

func ourProtocols() []string {
	return []string{string(protocol.StoreID), string(protocol.GetID), string(protocol.PeersID)}
}

// startNetwork builds the network parts from the repo's config, then
// starts them, the stream handlers last. On error nothing is left running.
func startNetwork(ctx context.Context, n *Node, agentVersion string) (_ *online, err error) {
	cfg := n.repo.Config
	bans := peers.NewBans(nil)
	bootstrap, err := p2p.ParseBootstrap(cfg.Bootstrap)
	if err != nil {
		return nil, err
	}
	disc := newDiscovery(0)
	stack, err := p2p.New(ctx, p2p.Options{
		Host: p2p.HostOptions{
			Identity:       n.repo.Identity,
			AgentVersion:   agentVersion,
			Gater:          bans,
			ListenAddrs:    cfg.Addresses.Swarm,
			AnnounceAddrs:  cfg.Addresses.Announce,
			ConnLow:        cfg.Swarm.ConnMgr.LowWater,
			ConnHigh:       cfg.Swarm.ConnMgr.HighWater,
			ConnGrace:      cfg.Swarm.ConnMgr.GracePeriod.Duration,
			RelayService:   cfg.Swarm.RelayService,
			NATPortMap:     cfg.Swarm.NATPortMap,
			HolePunching:   cfg.Swarm.HolePunching,
			ProtocolLimits: []libp2pproto.ID{protocol.StoreID, protocol.GetID, protocol.PeersID},
		},
		Bootstrap:  bootstrap,
		MDNS:       cfg.Discovery.MDNS,
		WithoutDHT: cfg.Discovery.WithoutDHT,
		OnDHTPeer:  disc.dhtPeer,
		OnMDNSPeer: disc.mdnsPeer,
	})
	if err != nil {
		return nil, err
	}
	h := stack.Host
	disc.attach(h, bootstrap)
	nw := &online{stack: stack, disc: disc, bans: bans, hints: peers.NewHints()}
	nw.strikes = peers.NewStrikes(func(p peer.ID) {
		bans.Ban(p)
		_ = h.Network().ClosePeer(p) // best effort: the peer may be gone already
	})
	if nw.gossip, err = newGossip(h, n.repo, disc, nw.strike); err != nil {
		disc.detach()
		return nil, errors.Join(err, stack.Close())
	}
	nw.announce = announce.New(announce.Config{Router: stack.DHT, Pins: n.store, Events: h.EventBus()})
	proven := peers.NewProven()
	audit := replicate.NewAuditor(replicate.AuditorConfig{Host: h, Local: n.store, Strike: nw.strike, Proven: proven})
	nw.fetch = fetch.New(fetch.Config{Host: h, Providers: stack.DHT, Local: n.store, Hints: nw.hints,
		Strike: nw.strike, Verify: audit.Verify})
	nw.repl, err = replicate.New(ctx, replicate.Config{
		Host: h, Closest: stack.DHT, Store: n.store,
		Owner: crypt.OwnerKey(&n.secrets.Master), Goal: cfg.Replication.Factor,
		Hints: nw.hints, Holds: nw.fetch.Holds, Audit: audit, Proven: proven, Announce: nw.announce.Provide,
		CheckInterval: cfg.Replication.CheckInterval.Duration, AuditInterval: cfg.Replication.AuditInterval.Duration,
		Lease: cfg.Replication.Lease.Duration, Lookup: nw.fetch.FindHolders, Strike: nw.strike,
	})
	if err != nil {
		disc.detach()
		return nil, errors.Join(err, nw.gossip.Close(), stack.Close())
	}
	nw.collect = blockstore.NewCollector(n.store, blockstore.CollectorConfig{
		Links: dag.Links, Options: []blockstore.GCOption{blockstore.WithLeaves(dag.LinksAreLeaves)},
		Interval: cfg.Storage.CollectInterval.Duration,
	})
	held := &storeBackend{
		store: n.store, quota: cfg.Storage.Quota, maxPins: cfg.Storage.MaxPinsPerOwner,
		announce: nw.announce.Provide, collect: nw.collect.Request,
	}
	nw.leases = newLeaseSweep(leaseSweepConfig{Next: n.store.NextExpiry, Expire: held.expire})
	held.leased = nw.leases.notify
	nw.proto = protocol.New(h,
		protocol.WithGetBackend(watchedBackend{getBackend{n.store}, audit.Served}),
		protocol.WithStoreBackend(held),
		protocol.WithPeersBackend(nw.gossip),
		protocol.WithStrikeFunc(nw.strike),
	)
	nw.announce.Start()
	nw.repl.Start()
	nw.collect.Start()
	nw.leases.Start()
	nw.gossip.Start()
	nw.proto.Start()
	return nw, nil
}

// newGossip builds the peer exchange of the repo's config: it dials the
// peers it learns of while the node has fewer connections than the
// connection manager's low-water mark (Swarm.ConnMgr.LowWater, 0 meaning
// the host's default, as for the connection manager), notes their sources in d, and
// remembers peers in the repo's peers file.
func newGossip(h host.Host, repo *config.Repo, d *discovery, strike func(peer.ID, string)) (*gossip.Gossip, error) {
	cfg := repo.Config
	low, _ := p2p.ConnWatermarks(cfg.Swarm.ConnMgr.LowWater, cfg.Swarm.ConnMgr.HighWater)
	g, err := gossip.New(gossip.Config{
		Host: h, Interval: cfg.Gossip.Interval.Duration, SampleSize: cfg.Gossip.SampleSize, Fanout: cfg.Gossip.Fanout,
		LowWater: low, Sources: d.sources, Strike: strike, RememberPath: repo.PeersPath(),
	})
	if err != nil {
		return nil, fmt.Errorf("gossip: %w", err)
	}
	return g, nil
}

// strike counts bad input from p; see [peers.Strikes].
func (nw *online) strike(p peer.ID, reason string) { nw.strikes.Strike(p, reason) }

// close stops the background collector (a sweep in progress ends), stops
// accepting streams and resets those open, then stops gossip (which saves
// the remembered peers) and the loops (lease sweep, replicator, announcer)
// and waits for them, then closes the DHT and the host.
func (nw *online) close() error {
	err := errors.Join(
		nw.collect.Close(), // first: the streams that proto resets need no sweep
		nw.proto.Close(),
		nw.gossip.Close(), // before the stack: it saves what the peerstore holds
		nw.leases.Close(),
		nw.repl.Close(),
		nw.announce.Close(),
	)
	nw.disc.detach()
	return errors.Join(err, nw.stack.Close())
}

// replicate places root on peers; see [replicate.Replicator.Replicate].
func (nw *online) replicate(ctx context.Context, root cid.Cid) ([]string, error) {
	return nw.repl.Replicate(ctx, root)
}

// describe fills in the online parts of `casd id`.
func (nw *online) describe(info *core.IDInfo) {
	h := nw.stack.Host
	self := "/p2p/" + h.ID().String()
	info.Addrs = info.Addrs[:0]
	for _, a := range h.Addrs() {
		info.Addrs = append(info.Addrs, a.String()+self)
	}
	info.Protocols = info.Protocols[:0]
	for _, p := range h.Mux().Protocols() {
		info.Protocols = append(info.Protocols, string(p))
	}
}
