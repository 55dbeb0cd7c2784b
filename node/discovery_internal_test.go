package node

import (
	"context"
	"crypto/rand"
	"testing"
	"time"

	"github.com/libp2p/go-libp2p/core/crypto"
	"github.com/libp2p/go-libp2p/core/host"
	"github.com/libp2p/go-libp2p/core/network"
	"github.com/libp2p/go-libp2p/core/peer"
	"github.com/libp2p/go-libp2p/core/peerstore"
	ma "github.com/multiformats/go-multiaddr"
	"github.com/stretchr/testify/require"

	"github.com/casd/casd/node/internal/p2p"
	"github.com/casd/casd/node/internal/peers"
)

func newDiscoveryHost(t *testing.T) host.Host {
	t.Helper()
	k, _, err := crypto.GenerateEd25519Key(rand.Reader)
	require.NoError(t, err)
	h, err := p2p.NewHost(p2p.HostOptions{Identity: k, ListenAddrs: []string{"/ip4/127.0.0.1/tcp/0"}})
	require.NoError(t, err)
	t.Cleanup(func() { require.NoError(t, h.Close()) })
	return h
}

// TestDiscoveryForgetsEvicted: a peer that falls out of the bounded table
// loses its addresses in the peerstore, unless it is connected; a
// connection is noted (inbound as such) and so is a bootstrap peer.
func TestDiscoveryForgetsEvicted(t *testing.T) {
	h, other := newDiscoveryHost(t), newDiscoveryHost(t)
	d := newDiscovery(2)
	stranger, err := peer.Decode("12D3KooWD3eckifWpRn9wQpMG9R9hX3sD158z7EqHWmweQAJU5SA")
	require.NoError(t, err)
	h.Peerstore().AddAddr(stranger, ma.StringCast("/ip4/192.0.2.1/tcp/4001"), peerstore.PermanentAddrTTL)
	d.attach(h, []peer.AddrInfo{{ID: stranger}, {ID: h.ID()}})
	t.Cleanup(d.detach)
	info, ok := d.sources.Get(stranger)
	require.True(t, ok)
	require.Equal(t, peers.SourceBootstrap, info.Sources)
	_, ok = d.sources.Get(h.ID())
	require.False(t, ok, "self noted as a bootstrap peer")

	ctx, cancel := context.WithTimeout(t.Context(), 10*time.Second)
	defer cancel()
	require.NoError(t, other.Connect(ctx, peer.AddrInfo{ID: h.ID(), Addrs: h.Addrs()}))
	require.Eventually(t, func() bool {
		info, ok := d.sources.Get(other.ID())
		return ok && info.Sources == peers.SourceInbound
	}, 10*time.Second, 10*time.Millisecond, "inbound connection not noted")
	require.Eventually(t, func() bool { return len(h.Peerstore().Addrs(other.ID())) > 0 },
		10*time.Second, 10*time.Millisecond, "identify gives other's addresses")

	// A third peer evicts the stranger (least recently heard of), then the
	// connected peer, whose addresses stay.
	third, fourth := newDiscoveryHost(t).ID(), newDiscoveryHost(t).ID()
	d.dhtPeer(third)
	require.Empty(t, h.Peerstore().Addrs(stranger), "evicted peer's addresses kept")
	d.mdnsPeer(fourth)
	_, ok = d.sources.Get(other.ID())
	require.False(t, ok)
	require.NotEmpty(t, h.Peerstore().Addrs(other.ID()), "a connected peer forgotten")
	info, _ = d.sources.Get(third)
	require.Equal(t, peers.SourceDHT, info.Sources)
	info, _ = d.sources.Get(fourth)
	require.Equal(t, peers.SourceMDNS, info.Sources)
}

// connConn is a network.Conn that knows only its remote address.
type connConn struct {
	network.Conn
	remote ma.Multiaddr
}

func (c connConn) RemoteMultiaddr() ma.Multiaddr { return c.remote }

// TestConnAddrsOnce: two connections between the same two addresses (two
// peers that dialled each other at once over QUIC) list the address once,
// and the connections' order is kept.
func TestConnAddrsOnce(t *testing.T) {
	a := ma.StringCast("/ip4/10.77.0.2/udp/4001/quic-v1")
	b := ma.StringCast("/ip4/10.77.0.2/tcp/4001")
	conns := []network.Conn{connConn{remote: a}, connConn{remote: b}, connConn{remote: a}}
	require.Equal(t, []string{a.String(), b.String()}, connAddrs(conns))
	require.NotNil(t, connAddrs(nil), "no connection lists no address, not null")
}
