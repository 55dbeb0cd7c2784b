package p2p

import (
	"context"
	"slices"
	"sync"
	"testing"
	"time"

	dht "github.com/libp2p/go-libp2p-kad-dht"
	"github.com/libp2p/go-libp2p/core/host"
	"github.com/libp2p/go-libp2p/core/peer"
	"github.com/libp2p/go-libp2p/core/protocol"
	"github.com/stretchr/testify/require"
)

// peerLog records the peers a discovery hook is called with.
type peerLog struct {
	mu  sync.Mutex
	ids []peer.ID
}

func (l *peerLog) add(p peer.ID) {
	l.mu.Lock()
	defer l.mu.Unlock()
	l.ids = append(l.ids, p)
}

func (l *peerLog) all() []peer.ID {
	l.mu.Lock()
	defer l.mu.Unlock()
	return slices.Clone(l.ids)
}

func (l *peerLog) has(p peer.ID) bool { return slices.Contains(l.all(), p) }

// dhtLine starts three DHTs in a line, a - b - c: a bootstraps from b,
// then c does. a knows b only; b knows both. a's DHT takes opts, c's cOpts.
func dhtLine(t *testing.T, cOpts []DHTOption, opts ...DHTOption) (a, b, c host.Host, da *dht.IpfsDHT) {
	t.Helper()
	a, b, c = newTestHost(t, HostOptions{}), newTestHost(t, HostOptions{}), newTestHost(t, HostOptions{})
	db := newTestDHT(t, b, nil)
	da, err := NewDHT(t.Context(), a, []peer.AddrInfo{addrInfo(b)}, opts...)
	require.NoError(t, err)
	t.Cleanup(func() { require.NoError(t, da.Close()) })
	newTestDHT(t, c, []peer.AddrInfo{addrInfo(b)}, cOpts...)
	require.Eventually(t, func() bool { return db.RoutingTable().Size() == 2 }, waitFor, 10*time.Millisecond,
		"b's routing table holds a and c")
	return a, b, c, da
}

// TestDHTPeerHook: a lookup from one end of a line hears of the far end
// from the middle, and the hook is told of it (and never of a itself).
func TestDHTPeerHook(t *testing.T) {
	var heard peerLog
	a, b, c, da := dhtLine(t, nil, WithPeerHook(heard.add))
	ctx, cancel := context.WithTimeout(t.Context(), waitFor)
	defer cancel()
	got, err := da.GetClosestPeers(ctx, "casd peer hook key")
	require.NoError(t, err)
	require.ElementsMatch(t, []peer.ID{b.ID(), c.ID()}, got)
	require.True(t, heard.has(c.ID()), "hook not told of c: %v", heard.all())
	require.False(t, heard.has(a.ID()), "hook told of self")
	require.NotEmpty(t, a.Peerstore().Addrs(c.ID()), "the lookup keeps c's addresses")
}

// TestDHTWithoutDiscovery: a DHT kept out of discovery puts no peer in its
// routing table, though it is connected to one that speaks the DHT, and
// its lookups learn nothing; the hook is never called.
func TestDHTWithoutDiscovery(t *testing.T) {
	var heard peerLog
	// c is kept out of discovery too: a lookup of c's own would follow b
	// to a and connect, and a would know c's addresses by identify, not
	// by its DHT (CI saw that race).
	a, b, c, da := dhtLine(t, []DHTOption{WithoutDiscovery()}, WithoutDiscovery(), WithPeerHook(heard.add))
	// a has identified b as a DHT server: without the filter, b would be
	// in a's table from then on.
	require.Eventually(t, func() bool {
		protos, err := a.Peerstore().SupportsProtocols(b.ID(), DHTProtocol)
		return err == nil && slices.Equal(protos, []protocol.ID{DHTProtocol})
	}, waitFor, 10*time.Millisecond, "a identifies b")
	ctx, cancel := context.WithTimeout(t.Context(), waitFor)
	defer cancel()
	got, err := da.GetClosestPeers(ctx, "casd peer hook key")
	require.Error(t, err, "a lookup with an empty table fails")
	require.Empty(t, got)
	require.Zero(t, da.RoutingTable().Size())
	require.Empty(t, heard.all())
	require.Empty(t, a.Peerstore().Addrs(c.ID()), "a learnt of c")
}

// TestDHTFilters calls the filters as the DHT does: without discovery
// both refuse every peer and the hook hears nothing; with it, the query
// filter lets every peer through and tells the hook of all but self.
func TestDHTFilters(t *testing.T) {
	self, other := newPeerID(t), newPeerID(t)
	var heard peerLog
	on := &dhtConfig{onPeer: heard.add}
	q := on.queryFilter(self)
	require.True(t, q(nil, peer.AddrInfo{ID: other}))
	require.True(t, q(nil, peer.AddrInfo{ID: self}))
	require.Equal(t, []peer.ID{other}, heard.all())
	require.Nil(t, on.routingTableFilter(), "the DHT's default table filter")

	off := &dhtConfig{onPeer: heard.add, without: true}
	require.False(t, off.queryFilter(self)(nil, peer.AddrInfo{ID: other}))
	require.False(t, off.routingTableFilter()(nil, other))
	require.Equal(t, []peer.ID{other}, heard.all(), "hook called without discovery")
}

// TestConnWatermarks: zero marks take the defaults, bounded by the other
// mark; set marks are kept.
func TestConnWatermarks(t *testing.T) {
	for _, tt := range []struct{ low, high, wantLow, wantHigh int }{
		{0, 0, 32, 96},
		{10, 20, 10, 20},
		{0, 8, 8, 8},
		{200, 0, 200, 200},
		{0, 50, 32, 50},
	} {
		low, high := ConnWatermarks(tt.low, tt.high)
		require.Equal(t, [2]int{tt.wantLow, tt.wantHigh}, [2]int{low, high}, "ConnWatermarks(%d, %d)", tt.low, tt.high)
	}
}
