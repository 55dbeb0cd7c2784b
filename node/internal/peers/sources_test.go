package peers_test

import (
	"sync"
	"testing"
	"time"

	"github.com/libp2p/go-libp2p/core/peer"
	"github.com/stretchr/testify/require"

	"github.com/casd/casd/node/internal/peers"
)

// TestSourceNames: the names come in the documented order, and an empty
// set is an empty list, never null in JSON.
func TestSourceNames(t *testing.T) {
	all := peers.SourceDHT | peers.SourceGossip | peers.SourceMDNS |
		peers.SourceBootstrap | peers.SourceRemembered | peers.SourceInbound
	require.Equal(t, []string{"dht", "gossip", "mdns", "bootstrap", "remembered", "inbound"}, all.Names())
	require.Equal(t, []string{"gossip", "inbound"}, (peers.SourceInbound | peers.SourceGossip).Names())
	require.NotNil(t, peers.Source(0).Names())
	require.Empty(t, peers.Source(0).Names())
}

// TestSourcesAccumulate: each note adds its source to what is known and
// moves the last-seen time; Seen moves the time alone.
func TestSourcesAccumulate(t *testing.T) {
	s := peers.NewSources(0, nil)
	p := testPeer(1)
	_, ok := s.Get(p)
	require.False(t, ok)

	before := time.Now()
	s.Note(p, peers.SourceDHT)
	s.Note(p, peers.SourceGossip)
	info, ok := s.Get(p)
	require.True(t, ok)
	require.Equal(t, peers.SourceDHT|peers.SourceGossip, info.Sources)
	require.False(t, info.LastSeen.Before(before))

	s.Seen(p)
	again, _ := s.Get(p)
	require.Equal(t, info.Sources, again.Sources, "Seen adds no source")
	require.False(t, again.LastSeen.Before(info.LastSeen))

	q := testPeer(2)
	s.Seen(q)
	info, ok = s.Get(q)
	require.True(t, ok, "a peer seen connecting is known")
	require.Zero(t, info.Sources)
}

// TestSourcesBounded: a flood of peers keeps the table at its size, drops
// the peer heard of least recently, and tells the caller which, once each.
func TestSourcesBounded(t *testing.T) {
	var (
		mu      sync.Mutex
		evicted []peer.ID
	)
	s := peers.NewSources(3, func(p peer.ID) {
		mu.Lock()
		defer mu.Unlock()
		evicted = append(evicted, p)
	})
	for i := range 3 {
		s.Note(testPeer(i), peers.SourceGossip)
	}
	s.Seen(testPeer(0)) // heard of again: peer 1 is now the oldest
	s.Note(testPeer(3), peers.SourceGossip)
	s.Note(testPeer(4), peers.SourceGossip)

	require.Equal(t, 3, s.Len())
	require.Equal(t, []peer.ID{testPeer(1), testPeer(2)}, evicted)
	for _, i := range []int{0, 3, 4} {
		_, ok := s.Get(testPeer(i))
		require.True(t, ok, "peer %d kept", i)
	}

	// Get is no news: looking at the oldest does not save it.
	_, _ = s.Get(testPeer(0))
	s.Note(testPeer(5), peers.SourceGossip)
	_, ok := s.Get(testPeer(0))
	require.False(t, ok)
}
