package replicate

import (
	"crypto/rand"
	"io"
	mrand "math/rand/v2"
	"slices"
	"testing"

	"github.com/ipfs/go-cid"
	kb "github.com/libp2p/go-libp2p-kbucket"
	"github.com/libp2p/go-libp2p/core/crypto"
	"github.com/libp2p/go-libp2p/core/peer"
	mocknet "github.com/libp2p/go-libp2p/p2p/net/mock"
	"github.com/multiformats/go-multihash"
	"github.com/stretchr/testify/require"

	"github.com/casd/casd/node/internal/peers"
)

// groundPeers returns 20 peer IDs and a root, sorted so that the first 10
// (the "ground" IDs) are closer to the root in XOR distance than every one
// of the other 10 (the honest peers): what an attacker gets by generating
// keys until their IDs fall near a CID, here by sorting instead of
// grinding.
func groundPeers(t *testing.T) (root cid.Cid, ground, honest []peer.ID) {
	t.Helper()
	mh, err := multihash.Sum([]byte("a file worth capturing"), multihash.SHA2_256, -1)
	require.NoError(t, err)
	root = cid.NewCidV1(cid.Raw, mh)
	var ids []peer.ID
	for range 20 {
		_, pub, err := crypto.GenerateEd25519Key(rand.Reader)
		require.NoError(t, err)
		id, err := peer.IDFromPublicKey(pub)
		require.NoError(t, err)
		ids = append(ids, id)
	}
	ids = kb.SortClosestPeers(ids, kb.ConvertKey(string(root.Hash())))
	return root, ids[:10], ids[10:]
}

// placementReplicator is a replicator on a mocknet host whose DHT knows
// ids, with the given random source (nil: crypto/rand).
func placementReplicator(t *testing.T, ids []peer.ID, proven *peers.Proven, rnd io.Reader) *Replicator {
	t.Helper()
	mn := mocknet.New()
	t.Cleanup(func() { require.NoError(t, mn.Close()) })
	self, err := mn.GenPeer()
	require.NoError(t, err)
	r, err := New(t.Context(), Config{Host: self, Store: openStore(t), Closest: closest(ids), Goal: 3,
		Proven: proven, Rand: rnd})
	require.NoError(t, err)
	return r
}

// TestPlacementNotCapturable mounts the second half of hostile peers point
// 5: 10 of 20 peers have IDs closer to the root than every honest peer.
// XOR-only placement of goal 3 gave them every replica, every time. Now
// one slot goes to the XOR-closest and two to peers drawn at random.
//
// Over 1,000 placements with crypto/rand, a placement has no honest peer
// only if both random picks, from the 19 others (9 ground), are ground:
// p = 9/19 * 8/18 = 0.21, so about 789 of 1,000 include an honest peer.
// The test requires 650: by Hoeffding's inequality the chance of 650 or
// fewer is below exp(-2 * 1000 * 0.1395^2) = 1.3e-17, so it cannot flake;
// XOR-only placement scores 0. Each honest peer must also be drawn at
// least once (expected 105 times each; the chance that one is never drawn
// is below 10 * (17/19)^1000 = 1e-47).
func TestPlacementNotCapturable(t *testing.T) {
	root, ground, honest := groundPeers(t)
	r := placementReplicator(t, append(slices.Clone(ground), honest...), peers.NewProven(), nil)
	const runs = 1000
	withHonest := 0
	drawn := map[peer.ID]int{}
	for range runs {
		cands, err := r.candidates(t.Context(), root, 3, nil)
		require.NoError(t, err)
		require.Len(t, cands, 20)
		first := cands[:3]
		require.Equal(t, ground[0], first[0], "one slot is the XOR-closest")
		if slices.ContainsFunc(first, func(p peer.ID) bool { return slices.Contains(honest, p) }) {
			withHonest++
		}
		for _, p := range first {
			drawn[p]++
		}
	}
	t.Logf("%d of %d placements of goal 3 include an honest peer", withHonest, runs)
	require.GreaterOrEqual(t, withHonest, 650)
	for _, p := range honest {
		require.Positive(t, drawn[p], "honest peer %s never drawn", p)
	}
}

// TestPlacementPrefersProven: once honest peers have passed challenges,
// the random slots go to them first, whatever the random source (here a
// deterministic one, seed by seed): every placement of goal 3 among the 10
// ground IDs and 10 proven honest peers holds 2 honest peers.
func TestPlacementPrefersProven(t *testing.T) {
	root, ground, honest := groundPeers(t)
	proven := peers.NewProven()
	for _, p := range honest {
		proven.Add(p)
	}
	r := placementReplicator(t, append(slices.Clone(ground), honest...), proven, nil)
	for seed := range 200 {
		r.cfg.Rand = mrand.NewChaCha8([32]byte{byte(seed)})
		cands, err := r.candidates(t.Context(), root, 3, nil)
		require.NoError(t, err)
		first := cands[:3]
		require.Equal(t, ground[0], first[0])
		require.Subset(t, honest, first[1:], "seed %d: %v", seed, first)
	}
}
