package p2p

import (
	"testing"

	"github.com/libp2p/go-libp2p/core/peer"
	"github.com/stretchr/testify/require"
)

// TestParseBootstrap: two addresses of one peer make one peer with both;
// a malformed multiaddr, or one without /p2p/, is refused with its text.
func TestParseBootstrap(t *testing.T) {
	id, err := peer.IDFromPrivateKey(newKey(t))
	require.NoError(t, err)
	infos, err := ParseBootstrap([]string{
		"/ip4/127.0.0.1/tcp/4001/p2p/" + id.String(),
		"/ip4/127.0.0.1/udp/4001/quic-v1/p2p/" + id.String(),
	})
	require.NoError(t, err)
	require.Len(t, infos, 1)
	require.Equal(t, id, infos[0].ID)
	require.Len(t, infos[0].Addrs, 2)

	_, err = ParseBootstrap([]string{"/ip4/999.0.0.1/tcp/1"})
	require.ErrorContains(t, err, `"/ip4/999.0.0.1/tcp/1"`)
	_, err = ParseBootstrap([]string{"/ip4/127.0.0.1/tcp/1"})
	require.Error(t, err, "an address without a peer ID")

	none, err := ParseBootstrap(nil)
	require.NoError(t, err)
	require.Empty(t, none)
}

// TestStackClose: a stack closes cleanly, more than once, and its DHT
// no longer serves on the host.
func TestStackClose(t *testing.T) {
	s, err := New(t.Context(), Options{Host: HostOptions{Identity: newKey(t), ListenAddrs: []string{"/ip4/127.0.0.1/tcp/0"}}})
	require.NoError(t, err)
	require.Contains(t, s.Host.Mux().Protocols(), DHTProtocol)
	require.NoError(t, s.Close())
	require.NoError(t, s.Close())
	require.NotContains(t, s.Host.Mux().Protocols(), DHTProtocol)
}
