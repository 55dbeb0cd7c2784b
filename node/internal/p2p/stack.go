package p2p

import (
	"context"
	"errors"
	"fmt"
	"io"
	"sync"

	dht "github.com/libp2p/go-libp2p-kad-dht"
	"github.com/libp2p/go-libp2p/core/host"
	"github.com/libp2p/go-libp2p/core/peer"
)

// Options configure [New].
type Options struct {
	Host HostOptions
	// Bootstrap are the peers the DHT starts from.
	Bootstrap []peer.AddrInfo
	// MDNS announces the node on the LAN and connects to the casd peers
	// found there.
	MDNS bool
	// WithoutDHT keeps the DHT out of peer discovery (see
	// [WithoutDiscovery]); OnDHTPeer is then never called.
	WithoutDHT bool
	// OnDHTPeer, if set, is called for each peer that an answer to a DHT
	// query names (see [WithPeerHook]).
	OnDHTPeer func(peer.ID)
	// OnMDNSPeer, if set, is called for each peer mDNS finds (see
	// [StartMDNS]).
	OnMDNSPeer func(peer.ID)
}

// Stack is a node's libp2p stack: its host, its private DHT and, if asked
// for, mDNS discovery. Its parts run from the moment [New] returns (libp2p
// starts its own goroutines as it builds them); [Stack.Close] stops them.
type Stack struct {
	Host host.Host
	DHT  *dht.IpfsDHT
	mdns io.Closer // nil without mDNS

	closeOnce sync.Once
	closeErr  error
}

// New builds the host, connects to the bootstrap peers, starts the DHT and,
// with o.MDNS, mDNS. On error nothing it started is left running.
func New(ctx context.Context, o Options) (_ *Stack, err error) {
	h, err := NewHost(o.Host)
	if err != nil {
		return nil, fmt.Errorf("start libp2p host: %w", err)
	}
	s := &Stack{Host: h}
	defer func() {
		if err != nil {
			err = errors.Join(err, s.Close())
		}
	}()
	dhtOpts := []DHTOption{WithPeerHook(o.OnDHTPeer)}
	if o.WithoutDHT {
		dhtOpts = append(dhtOpts, WithoutDiscovery())
	}
	if s.DHT, err = NewDHT(ctx, h, o.Bootstrap, dhtOpts...); err != nil {
		return nil, fmt.Errorf("start DHT: %w", err)
	}
	if o.MDNS {
		if s.mdns, err = StartMDNS(h, "", o.OnMDNSPeer); err != nil {
			return nil, fmt.Errorf("start mDNS: %w", err)
		}
	}
	return s, nil
}

// Close stops mDNS, then the DHT, then the host: the reverse of New, so no
// part outlives one it uses. The caller stops its own stream handlers and
// loops first. Calls after the first return the first's result.
func (s *Stack) Close() error {
	s.closeOnce.Do(func() {
		var errs []error
		if s.mdns != nil {
			errs = append(errs, s.mdns.Close())
		}
		if s.DHT != nil {
			// IpfsDHT.Close leaves its stream handler on the host.
			s.Host.RemoveStreamHandler(DHTProtocol)
			errs = append(errs, s.DHT.Close())
		}
		errs = append(errs, s.Host.Close())
		s.closeErr = errors.Join(errs...)
	})
	return s.closeErr
}

// ParseBootstrap parses multiaddrs that end in /p2p/<peer id> into the
// peers they name, merging the addresses of one peer.
func ParseBootstrap(addrs []string) ([]peer.AddrInfo, error) {
	mas, err := parseAddrs(addrs)
	if err != nil {
		return nil, fmt.Errorf("bootstrap: %w", err)
	}
	infos, err := peer.AddrInfosFromP2pAddrs(mas...)
	if err != nil {
		return nil, fmt.Errorf("bootstrap addresses: %w", err)
	}
	return infos, nil
}
