package node

import (
	"path/filepath"
	"testing"

	"github.com/stretchr/testify/require"

	"github.com/casd/casd/config"
	"github.com/casd/casd/core"
)

// restoredNode opens a node whose repo holds the keys of n (casd init
// --restore of n's key file) and an empty store, with goal factor.
func restoredNode(t *testing.T, n *Node, factor int) *Node {
	t.Helper()
	keys := n.repo.Keys
	repo, err := config.Init(filepath.Join(t.TempDir(), "repo"), config.InitOptions{Profile: config.ProfileLocal, Keys: &keys})
	require.NoError(t, err)
	cfg := repo.Config.Clone()
	cfg.Replication.Factor = factor
	require.NoError(t, repo.SaveConfig(cfg))
	r, err := Open(t.Context(), repo, Options{Online: true})
	require.NoError(t, err)
	t.Cleanup(func() { require.NoError(t, r.Close()) })
	return r
}

// TestRepairTakesOver: a node restored from the owner's keys, which holds
// nothing, repairs one of the owner's files: it fetches the file from the
// replicas, pins it as its own, and counts the replicas once each passed
// a light and a tree audit and had its lease renewed; its status answers
// from that check. A node with other keys cannot take the file over.
func TestRepairTakesOver(t *testing.T) {
	owner := startTestNode(t, 2)
	holders := []*Node{startTestNode(t, 0), startTestNode(t, 0)}
	for _, h := range holders {
		connect(t, owner, h)
	}
	res, root := addRandom(t, owner, 600<<10)
	require.ElementsMatch(t, ids(holders...), res.Replicas)

	restored := restoredNode(t, owner, 2)
	stranger := startTestNode(t, 2)
	for _, h := range holders {
		connect(t, restored, h)
		connect(t, stranger, h)
	}
	_, err := stranger.Repair(t.Context(), res.Cid)
	require.ErrorIs(t, err, core.ErrNotMine)
	require.Equal(t, core.KindNotFound, core.KindOf(err))

	reports, err := restored.Repair(t.Context(), res.Cid)
	require.NoError(t, err)
	require.Len(t, reports, 1)
	require.ElementsMatch(t, ids(holders...), reports[0].Live)
	require.Empty(t, reports[0].Added)
	require.NoError(t, restored.mustOwn(t.Context(), root), "the restored node keeps the file as its own")
	ls, err := restored.Ls(t.Context())
	require.NoError(t, err)
	require.Len(t, ls, 1)

	st, err := restored.Status(t.Context(), res.Cid)
	require.NoError(t, err)
	require.True(t, st.Verified)
	require.False(t, st.LastCheck.IsZero())
	require.ElementsMatch(t, ids(holders...), st.Replicas)
	for _, h := range st.Holders {
		require.False(t, h.LastAudit.IsZero() || h.LastTreeAudit.IsZero() || h.LeaseExpires.IsZero(), "holder %+v", h)
	}
}
