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
