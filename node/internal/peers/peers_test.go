package peers_test

import (
	"fmt"
	"sync"
	"testing"

	"github.com/ipfs/go-cid"
	"github.com/libp2p/go-libp2p/core/peer"
	"github.com/multiformats/go-multihash"
	"github.com/stretchr/testify/require"
	"go.uber.org/goleak"

	"github.com/casd/casd/node/internal/peers"
)

func TestMain(m *testing.M) { goleak.VerifyTestMain(m) }

func testPeer(i int) peer.ID { return peer.ID(fmt.Sprintf("peer-%d", i)) }

func testRoot(t *testing.T, i int) cid.Cid {
	t.Helper()
	mh, err := multihash.Sum([]byte(fmt.Sprint(i)), multihash.SHA2_256, -1)
	require.NoError(t, err)
	return cid.NewCidV1(cid.Raw, mh)
}

// TestStrikesDisconnectAtLimit: a peer is disconnected exactly when its
// strikes reach MaxStrikes, not before; its count then starts again, so
// that each disconnect (and ban) takes MaxStrikes new strikes.
func TestStrikesDisconnectAtLimit(t *testing.T) {
	var (
		mu   sync.Mutex
		gone []peer.ID
	)
	s := peers.NewStrikes(func(p peer.ID) {
		mu.Lock()
		defer mu.Unlock()
		gone = append(gone, p)
	})
	bad, other := testPeer(1), testPeer(2)
	for i := 1; i < peers.MaxStrikes; i++ {
		require.Equal(t, i, s.Strike(bad, "test"))
	}
	s.Strike(other, "test")
	require.Empty(t, gone, "disconnected before the limit")
	require.Equal(t, peers.MaxStrikes, s.Strike(bad, "test"))
	require.Equal(t, []peer.ID{bad}, gone)
	require.Equal(t, 1, s.Count(other))
	require.Zero(t, s.Count(bad), "settled strikes are not kept")
	for i := 1; i < peers.MaxStrikes; i++ {
		s.Strike(bad, "again")
	}
	require.Equal(t, []peer.ID{bad}, gone, "a strike after a disconnect disconnects again at once")
	s.Strike(bad, "again")
	require.Equal(t, []peer.ID{bad, bad}, gone)
	require.Equal(t, 3, peers.MaxStrikes, "the documented limit")
}

// TestStrikesBounded: a flood of fresh peer IDs does not grow the table
// without bound; the least recently struck are forgotten first.
func TestStrikesBounded(t *testing.T) {
	s := peers.NewStrikes(func(peer.ID) {})
	s.Strike(testPeer(0), "first")
	for i := 1; i <= 5000; i++ {
		s.Strike(testPeer(i), "flood")
	}
	require.Zero(t, s.Count(testPeer(0)), "the oldest peer is remembered past the bound")
	require.Equal(t, 1, s.Count(testPeer(5000)))
}

// TestHintsPerRootBounded: a root keeps its 8 most recent holders, oldest
// forgotten first, without duplicates.
func TestHintsPerRootBounded(t *testing.T) {
	h := peers.NewHints()
	root := testRoot(t, 0)
	for i := range 10 {
		h.Add(root, testPeer(i))
		h.Add(root, testPeer(i)) // once only
	}
	got := h.Of(root)
	want := []peer.ID{}
	for i := 2; i < 10; i++ {
		want = append(want, testPeer(i))
	}
	require.Equal(t, want, got)
	require.Empty(t, h.Of(testRoot(t, 1)))
}

// TestHintsRootsBounded: the table of roots is bounded, least recently
// used forgotten first.
func TestHintsRootsBounded(t *testing.T) {
	h := peers.NewHints()
	first, kept := testRoot(t, -1), testRoot(t, -2)
	h.Add(first, testPeer(1))
	h.Add(kept, testPeer(1))
	for i := range 4096 {
		if i == 2000 {
			require.NotEmpty(t, h.Of(kept)) // used: kept
		}
		h.Add(testRoot(t, i), testPeer(2))
	}
	require.Empty(t, h.Of(first), "the least recently used root is kept past the bound")
	require.Equal(t, []peer.ID{testPeer(1)}, h.Of(kept))
}

// TestHintsDrop: a dropped peer is no longer a hint of that root, and
// stays one of another root; dropping the last forgets the root.
func TestHintsDrop(t *testing.T) {
	h := peers.NewHints()
	a, b := testRoot(t, 0), testRoot(t, 1)
	p1, p2 := testPeer(1), testPeer(2)
	h.Add(a, p1)
	h.Add(a, p2)
	h.Add(b, p1)
	h.Drop(a, p1)
	h.Drop(a, testPeer(9)) // not a hint: no change
	require.Equal(t, []peer.ID{p2}, h.Of(a))
	require.Equal(t, []peer.ID{p1}, h.Of(b))
	h.Drop(a, p2)
	require.Empty(t, h.Of(a))
}
