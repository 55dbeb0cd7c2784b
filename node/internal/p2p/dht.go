package p2p

import (
	"context"
	"errors"
	"fmt"
	"slices"
	"sync"
	"time"

	dht "github.com/libp2p/go-libp2p-kad-dht"
	"github.com/libp2p/go-libp2p-kad-dht/records"
	"github.com/libp2p/go-libp2p/core/host"
	"github.com/libp2p/go-libp2p/core/peer"
	"github.com/libp2p/go-libp2p/core/protocol"
	"golang.org/x/sync/errgroup"
)

// DHTProtocolPrefix keeps casd's DHT apart from the public IPFS DHT: its
// protocol is dhtProtocol, /cas/kad/1.0.0, so IPFS peers neither answer nor
// query it.
const (
	DHTProtocolPrefix protocol.ID = "/cas"
	DHTProtocol                   = DHTProtocolPrefix + "/kad/1.0.0"
)

// DHTOption tunes [NewDHT].
type DHTOption func(*dhtConfig)

type dhtConfig struct {
	limits    ProviderLimits
	providers *providerStore // built from limits when nil
	onPeer    func(peer.ID)  // nil: nobody is told
	without   bool           // keep the DHT out of peer discovery
}

// WithPeerHook makes the DHT call f for each peer that an answer to one of
// its queries names (not itself, not the queried target of a FindPeer,
// which the DHT lets through without asking): the peers it learns of. f
// runs on the DHT's query goroutines and must return quickly.
func WithPeerHook(f func(peer.ID)) DHTOption {
	return func(c *dhtConfig) { c.onPeer = f }
}

// WithoutDiscovery keeps the DHT out of peer discovery: its routing table
// takes no peer and its queries follow none that an answer names, so it
// learns of no peer (and the hook of [WithPeerHook] is never called). It
// still serves other peers' queries. For tests of the other discovery
// paths.
func WithoutDiscovery() DHTOption {
	return func(c *dhtConfig) { c.without = true }
}

// queryFilter approves a peer that an answer names for the query to
// follow (and its addresses for the peerstore): every peer but self,
// reported to the hook, or none without discovery.
func (c *dhtConfig) queryFilter(self peer.ID) dht.QueryFilterFunc {
	return func(_ any, ai peer.AddrInfo) bool {
		if c.without {
			return false
		}
		if c.onPeer != nil && ai.ID != self {
			c.onPeer(ai.ID)
		}
		return true
	}
}

// routingTableFilter refuses every peer without discovery; otherwise
// there is none (the DHT's default: every peer that speaks its protocol).
func (c *dhtConfig) routingTableFilter() dht.RouteTableFilterFunc {
	if !c.without {
		return nil
	}
	return func(any, peer.ID) bool { return false }
}

// WithProviderLimits bounds the provider records kept for other peers
// (default: [DefaultMaxProvidersPerPeer], [DefaultMaxProviders]).
func WithProviderLimits(l ProviderLimits) DHTOption {
	return func(c *dhtConfig) { c.limits = l }
}

// withProviderStore makes the DHT keep its provider records in ps (for
// tests, which count them).
func withProviderStore(ps *providerStore) DHTOption {
	return func(c *dhtConfig) { c.providers = ps }
}

// NewDHT starts a Kademlia DHT server on h under the /cas protocol prefix, with
// an in-memory record store, connects to bootstrap and starts a routing table
// refresh. Only provider records are enabled: casd stores no DHT values, so
// peers cannot park /pk or /ipns records on it either. The provider records of
// other peers are bounded per peer and in total (see [ProviderLimits]).
//
// A bootstrap set of which no peer answers is logged, not returned: the DHT
// dials the bootstrap peers again whenever its routing table is empty. NewDHT
// fails only when ctx ends first or the DHT cannot be built, and then leaves
// nothing running or registered on h. The caller closes the DHT before the
// host; IpfsDHT.Close does not remove its stream handler from the host.
func NewDHT(ctx context.Context, h host.Host, bootstrap []peer.AddrInfo, options ...DHTOption) (_ *dht.IpfsDHT, err error) {
	var cfg dhtConfig
	for _, o := range options {
		o(&cfg)
	}
	if cfg.providers == nil {
		cfg.providers = newProviderStore(h.ID(), cfg.limits)
	}
	bootstrap = slices.DeleteFunc(slices.Clone(bootstrap), func(ai peer.AddrInfo) bool {
		return ai.ID == h.ID() // a bootstrap node may list itself
	})
	opts := []dht.Option{
		dht.ProtocolPrefix(DHTProtocolPrefix),
		dht.Mode(dht.ModeServer),
		dht.DisableValues(),
		dht.ProviderDatastore(cfg.providers),
		dht.ProviderManagerOpts(records.Cache(noCache{})),
		dht.QueryFilter(cfg.queryFilter(h.ID())),
	}
	if f := cfg.routingTableFilter(); f != nil {
		opts = append(opts, dht.RoutingTableFilter(f))
	}
	if len(bootstrap) > 0 {
		opts = append(opts, dht.BootstrapPeers(bootstrap...))
	}
	d, err := dht.New(h, opts...)
	if err != nil {
		return nil, fmt.Errorf("new dht: %w", err)
	}
	defer func() {
		if err != nil {
			// IpfsDHT.Close leaves its stream handler on the host.
			h.RemoveStreamHandler(DHTProtocol)
			err = errors.Join(err, d.Close())
		}
	}()
	if err := connectBootstrap(ctx, h, bootstrap); err != nil {
		if ctx.Err() != nil {
			return nil, fmt.Errorf("bootstrap dht: %w", ctx.Err())
		}
		log.Warnw("no bootstrap peer reachable; the DHT keeps retrying", "err", err)
	}
	if err := d.Bootstrap(ctx); err != nil {
		return nil, fmt.Errorf("bootstrap dht: %w", err)
	}
	return d, nil
}

// Bounds of connectBootstrap.
const (
	bootstrapConcurrency = 8
	bootstrapDialTimeout = 15 * time.Second
)

// connectBootstrap dials peers concurrently, at most bootstrapConcurrency at a
// time and each for at most bootstrapDialTimeout, skipping h itself. It
// returns an error, joining every dial's failure, only when none succeeded; an
// empty list is no error.
func connectBootstrap(ctx context.Context, h host.Host, peers []peer.AddrInfo) error {
	var (
		g    errgroup.Group
		mu   sync.Mutex // guards errs and ok
		errs []error
		ok   bool
	)
	g.SetLimit(bootstrapConcurrency)
	for _, ai := range peers {
		if ai.ID == h.ID() {
			continue
		}
		g.Go(func() error {
			dctx, cancel := context.WithTimeout(ctx, bootstrapDialTimeout)
			defer cancel()
			err := h.Connect(dctx, ai)
			mu.Lock()
			defer mu.Unlock()
			if err != nil {
				errs = append(errs, fmt.Errorf("connect bootstrap peer %s: %w", ai.ID, err))
				return nil
			}
			ok = true
			return nil
		})
	}
	_ = g.Wait() // the goroutines report through errs
	if ok {
		return nil
	}
	return errors.Join(errs...)
}
