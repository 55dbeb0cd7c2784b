package main

import (
	"context"
	"strings"
	"testing"
	"time"

	"github.com/stretchr/testify/require"

	"github.com/casd/casd/core"
)

// peersOnly is a core.Network that answers Peers only, recording all.
type peersOnly struct {
	core.Network
	peers []core.PeerInfo
	all   *bool
}

func (p peersOnly) Peers(_ context.Context, all bool) ([]core.PeerInfo, error) {
	*p.all = all
	return p.peers, nil
}

// TestPeersOutput: the text form is unchanged (<id> <first address>, or
// the id alone); --json carries sources and last_seen, with [] (never
// null) for unknown sources and addresses.
func TestPeersOutput(t *testing.T) {
	seen := time.Date(2026, 12, 2, 3, 4, 5, 0, time.UTC)
	b := peersOnly{all: new(bool), peers: []core.PeerInfo{
		{ID: "p1", Addrs: []string{"/ip4/192.0.2.1/tcp/1", "/ip4/192.0.2.1/udp/1/quic-v1"}, Connected: true,
			Sources: []string{"gossip", "inbound"}, LastSeen: seen},
		{ID: "p2"},
	}}
	var out strings.Builder
	require.NoError(t, runPeers(t.Context(), b, peersOpts{}, &out))
	require.False(t, *b.all)
	require.Equal(t, "p1 /ip4/192.0.2.1/tcp/1\np2\n", out.String())

	out.Reset()
	require.NoError(t, runPeers(t.Context(), b, peersOpts{all: true, json: true}, &out))
	require.True(t, *b.all)
	require.JSONEq(t, `[
		{"id":"p1","addrs":["/ip4/192.0.2.1/tcp/1","/ip4/192.0.2.1/udp/1/quic-v1"],"connected":true,
		 "sources":["gossip","inbound"],"last_seen":"2026-12-02T03:04:05Z"},
		{"id":"p2","addrs":[],"connected":false,"sources":[],"last_seen":"0001-01-01T00:00:00Z"}
	]`, out.String())
}
