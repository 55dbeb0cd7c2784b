package node

import (
	"bytes"
	"testing"

	"github.com/ipfs/go-cid"
	"github.com/stretchr/testify/require"

	"github.com/casd/casd/core"
	"github.com/casd/casd/node/internal/replicate"
)

// TestRemoveDropsReplicas: rm of an owned file unpins it here and has each
// replica drop its pin at once; a second rm, or one of a root this node
// does not own, is "not one of this node's files" (not found); a bad CID is
// bad input.
func TestRemoveDropsReplicas(t *testing.T) {
	owner := startTestNode(t, 2)
	holders := []*Node{startTestNode(t, 0), startTestNode(t, 0)}
	for _, h := range holders {
		connect(t, owner, h)
	}
	res, root := addRandom(t, owner, 300<<10)
	require.ElementsMatch(t, ids(holders...), res.Replicas)

	require.NoError(t, owner.Remove(t.Context(), res.Cid))
	for i, h := range holders {
		pins, err := h.store.PinsOf(t.Context(), root)
		require.NoError(t, err)
		require.Empty(t, pins, "holder %d still pins the removed root", i)
	}
	pins, err := owner.store.PinsOf(t.Context(), root)
	require.NoError(t, err)
	require.Empty(t, pins, "owner and pending pins")
	ls, err := owner.Ls(t.Context())
	require.NoError(t, err)
	require.Empty(t, ls)
	_, ok := owner.net.repl.Status(root)
	require.False(t, ok, "the replicator forgot the root")

	err = owner.Remove(t.Context(), res.Cid)
	require.ErrorIs(t, err, core.ErrNotMine)
	require.Equal(t, core.KindNotFound, core.KindOf(err))
	err = holders[0].Remove(t.Context(), res.Cid)
	require.Equal(t, core.KindNotFound, core.KindOf(err), "a replica is not the owner")
	require.Equal(t, core.KindBadInput, core.KindOf(owner.Remove(t.Context(), "not-a-cid")))
}

// TestRemoveOffline: offline, rm unpins the file and frees its blocks at
// once.
func TestRemoveOffline(t *testing.T) {
	n := openOffline(t)
	res, err := n.Add(t.Context(), bytes.NewReader(bytes.Repeat([]byte("x"), 600<<10)), core.AddOptions{Name: "x"})
	require.NoError(t, err)
	require.NoError(t, n.store.Pin(t.Context(), mustCID(t, res.Cid), replicate.PinPending))
	require.NoError(t, n.Remove(t.Context(), res.Cid))
	st, err := n.RepoStat(t.Context())
	require.NoError(t, err)
	require.Zero(t, st.Pins)
	require.Zero(t, st.Blocks, "the file's blocks are collected")
}

func mustCID(t *testing.T, s string) cid.Cid {
	t.Helper()
	c, err := cid.Decode(s)
	require.NoError(t, err)
	return c
}
