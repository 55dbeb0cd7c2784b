package replicate

import (
	"context"
	"path/filepath"
	"slices"
	"testing"

	"github.com/ipfs/go-cid"
	kb "github.com/libp2p/go-libp2p-kbucket"
	"github.com/libp2p/go-libp2p/core/peer"
	mocknet "github.com/libp2p/go-libp2p/p2p/net/mock"
	"github.com/multiformats/go-multihash"
	"github.com/stretchr/testify/require"
	"go.uber.org/goleak"

	"github.com/casd/casd/blockstore"
)

func TestMain(m *testing.M) { goleak.VerifyTestMain(m) }

type closest []peer.ID

func (c closest) GetClosestPeers(context.Context, string) ([]peer.ID, error) { return c, nil }

// TestClosestPeers: the peers placement chooses from are the DHT's
// closest peers and the connected ones, once each, never the node itself,
// sorted by XOR distance to the root.
func TestClosestPeers(t *testing.T) {
	mn := mocknet.New()
	t.Cleanup(func() { require.NoError(t, mn.Close()) })
	self, err := mn.GenPeer()
	require.NoError(t, err)
	var others []peer.ID
	for range 5 {
		h, err := mn.GenPeer()
		require.NoError(t, err)
		others = append(others, h.ID())
	}
	require.NoError(t, mn.LinkAll())
	for _, p := range others[:3] { // connected; the last two only known to the DHT
		_, err := mn.ConnectPeers(self.ID(), p)
		require.NoError(t, err)
	}
	mh, err := multihash.Sum([]byte("a root"), multihash.SHA2_256, -1)
	require.NoError(t, err)
	root := cid.NewCidV1(cid.Raw, mh)
	dir := t.TempDir()
	store, err := blockstore.Open(filepath.Join(dir, "blocks"), filepath.Join(dir, "meta.db"))
	require.NoError(t, err)
	t.Cleanup(func() { require.NoError(t, store.Close()) })

	r, err := New(t.Context(), Config{Host: self, Store: store, Closest: closest{others[1], others[3], others[4], self.ID()}})
	require.NoError(t, err)
	got := r.closest(t.Context(), root)

	want := slices.Clone(others)
	want = kb.SortClosestPeers(want, kb.ConvertKey(string(root.Hash())))
	require.Equal(t, want, got)
	require.NotContains(t, got, self.ID())
}
