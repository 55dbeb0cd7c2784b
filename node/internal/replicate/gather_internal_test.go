package replicate

import (
	"context"
	"testing"

	"github.com/ipfs/go-cid"
	"github.com/libp2p/go-libp2p/core/peer"
	"github.com/libp2p/go-libp2p/core/test"
	"github.com/stretchr/testify/require"

	"github.com/casd/casd/node/internal/peers"
)

// TestGatherBounded: a check challenges at most goal+maxExtraReplicas
// peers of a root, however many the hints and the lookup offer; it asks
// the lookup only while it knows fewer than the goal, and takes from it
// only the peers that confirmed holding the root.
func TestGatherBounded(t *testing.T) {
	root := cid.NewCidV1(cid.Raw, []byte{0x12, 0x20, 31: 0}) // any well-formed CID
	ids := func(n int) []peer.ID {
		out := make([]peer.ID, n)
		for i := range out {
			out[i] = test.RandPeerIDFatal(t)
		}
		return out
	}
	newR := func(goal int, hinted []peer.ID, found []peer.ID, confirmed bool, asked *int) *Replicator {
		h := peers.NewHints()
		for _, p := range hinted {
			h.Add(root, p)
		}
		return &Replicator{cfg: Config{Goal: goal, Hints: h,
			Lookup: func(_ context.Context, _ cid.Cid, f func(peer.ID, bool)) {
				*asked++
				for _, p := range found {
					f(p, confirmed)
				}
			}}}
	}

	var asked int
	r := newR(3, ids(8), ids(20), true, &asked)
	got := r.gather(t.Context(), root, map[peer.ID]replica{})
	require.Len(t, got, 3+maxExtraReplicas, "hints alone are cut at goal+extra")
	require.Zero(t, asked, "the lookup is asked although the hints hold the goal")

	asked = 0
	r = newR(3, ids(2), ids(20), true, &asked)
	got = r.gather(t.Context(), root, map[peer.ID]replica{})
	require.Equal(t, 1, asked)
	require.Len(t, got, 3+maxExtraReplicas, "the lookup's peers are cut at goal+extra")

	asked = 0
	r = newR(3, ids(1), ids(20), false, &asked)
	got = r.gather(t.Context(), root, map[peer.ID]replica{test.RandPeerIDFatal(t): {}})
	require.Len(t, got, 2, "peers that did not confirm are taken from the lookup")
}
