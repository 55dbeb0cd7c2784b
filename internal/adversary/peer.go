// Package adversary is a hostile casd peer for tests: a real libp2p host
// that speaks /cas/store/1.0 and /cas/get/1.0 as docs/wire.md specifies,
// with switches for each lie a stranger on the network may tell. It exists
// so that integration tests can mount, against real casd daemons, the
// attacks that the daemons must survive. Nothing in casd imports it.
package adversary

import (
	"context"
	"crypto/ed25519"
	"crypto/rand"
	"errors"
	"fmt"

	"github.com/libp2p/go-libp2p"
	dht "github.com/libp2p/go-libp2p-kad-dht"
	"github.com/libp2p/go-libp2p/core/crypto"
	"github.com/libp2p/go-libp2p/core/host"
	"github.com/libp2p/go-libp2p/core/peer"
	"github.com/libp2p/go-libp2p/p2p/muxer/yamux"
	"github.com/libp2p/go-libp2p/p2p/security/noise"
	"github.com/libp2p/go-libp2p/p2p/transport/tcp"
	ma "github.com/multiformats/go-multiaddr"
)

// dhtPrefix is the protocol prefix of casd's private DHT
// (node/internal/p2p.DHTProtocolPrefix).
const dhtPrefix = "/cas"

// Options configure a [Peer].
type Options struct {
	// Identity is the peer's key; a fresh Ed25519 key when nil. Tests that
	// grind peer IDs pass their own.
	Identity crypto.PrivKey
	// DHT runs a Kademlia DHT server under casd's protocol prefix, so that
	// the peer can publish provider records and be found.
	DHT bool
	// Bootstrap lists the peers the DHT connects to first.
	Bootstrap []peer.AddrInfo
}

// Peer is a hostile peer: a libp2p host on loopback TCP with Noise and
// yamux, an owner key of its own for signing store offers, and optionally
// a DHT.
type Peer struct {
	Host host.Host
	DHT  *dht.IpfsDHT // nil unless Options.DHT
	// Owner signs this peer's store offers: any key will do, owner keys
	// are free.
	Owner ed25519.PrivateKey
}

// New starts a hostile peer listening on 127.0.0.1.
func New(ctx context.Context, o Options) (*Peer, error) {
	id := o.Identity
	if id == nil {
		k, _, err := crypto.GenerateEd25519Key(rand.Reader)
		if err != nil {
			return nil, fmt.Errorf("adversary: identity: %w", err)
		}
		id = k
	}
	h, err := libp2p.New(
		libp2p.Identity(id),
		libp2p.ListenAddrStrings("/ip4/127.0.0.1/tcp/0"),
		libp2p.Transport(tcp.NewTCPTransport),
		libp2p.Security(noise.ID, noise.New),
		libp2p.Muxer(yamux.ID, yamux.DefaultTransport),
		libp2p.DisableRelay(),
		libp2p.ResourceManager(nil), // an attacker sets its own limits: none
	)
	if err != nil {
		return nil, fmt.Errorf("adversary: host: %w", err)
	}
	_, owner, err := ed25519.GenerateKey(rand.Reader)
	if err != nil {
		return nil, errors.Join(fmt.Errorf("adversary: owner key: %w", err), h.Close())
	}
	p := &Peer{Host: h, Owner: owner}
	if o.DHT {
		d, err := dht.New(h, dht.ProtocolPrefix(dhtPrefix), dht.Mode(dht.ModeServer),
			dht.DisableValues(), dht.BootstrapPeers(o.Bootstrap...))
		if err != nil {
			return nil, errors.Join(fmt.Errorf("adversary: dht: %w", err), h.Close())
		}
		p.DHT = d
		for _, b := range o.Bootstrap {
			if err := h.Connect(ctx, b); err != nil {
				return nil, errors.Join(fmt.Errorf("adversary: bootstrap %s: %w", b.ID, err), p.Close())
			}
		}
		if err := d.Bootstrap(ctx); err != nil {
			return nil, errors.Join(fmt.Errorf("adversary: dht bootstrap: %w", err), p.Close())
		}
	}
	return p, nil
}

// ID is the peer's ID.
func (p *Peer) ID() peer.ID { return p.Host.ID() }

// AddrInfo is the peer's ID and listen addresses, for a victim to dial.
func (p *Peer) AddrInfo() peer.AddrInfo {
	return peer.AddrInfo{ID: p.Host.ID(), Addrs: p.Host.Addrs()}
}

// Connect dials the victim at the multiaddr addr (with its /p2p/ part) and
// returns its ID.
func (p *Peer) Connect(ctx context.Context, addr string) (peer.ID, error) {
	m, err := ma.NewMultiaddr(addr)
	if err != nil {
		return "", fmt.Errorf("adversary: address %q: %w", addr, err)
	}
	ai, err := peer.AddrInfoFromP2pAddr(m)
	if err != nil {
		return "", fmt.Errorf("adversary: address %q: %w", addr, err)
	}
	if err := p.Host.Connect(ctx, *ai); err != nil {
		return "", fmt.Errorf("adversary: connect %s: %w", ai.ID, err)
	}
	return ai.ID, nil
}

// Close stops the DHT, then the host.
func (p *Peer) Close() error {
	var err error
	if p.DHT != nil {
		err = p.DHT.Close()
	}
	return errors.Join(err, p.Host.Close())
}
