package node_test

import (
	"bytes"
	"slices"
	"testing"

	"github.com/stretchr/testify/require"

	"github.com/casd/casd/config"
	"github.com/casd/casd/core"
	"github.com/casd/casd/node"
)

// startNetwork starts count online nodes on loopback, all bootstrapped
// from the first.
func startNetwork(t *testing.T, count int) ([]*node.Node, []*config.Repo) {
	t.Helper()
	repos := []*config.Repo{newRepo(t, nil)}
	nodes := []*node.Node{openNode(t, repos[0], true)}
	id, err := nodes[0].ID(t.Context())
	require.NoError(t, err)
	require.NotEmpty(t, id.Addrs)
	for range count - 1 {
		repo := newRepo(t, func(c *config.Config) { c.Bootstrap = id.Addrs[:1] })
		repos = append(repos, repo)
		nodes = append(nodes, openNode(t, repo, true))
	}
	return nodes, repos
}

func TestReplicateAndRetrieveByCapability(t *testing.T) {
	nodes, _ := startNetwork(t, 6)
	ctx := t.Context()
	owner := nodes[1]
	ownerID, err := owner.ID(ctx)
	require.NoError(t, err)

	data := randomData(t, 8<<20+123)
	res := addBytes(t, owner, data, "film.mkv")
	require.Equal(t, 3, res.Goal)
	require.Len(t, res.Replicas, 3)
	require.NotContains(t, res.Replicas, ownerID.ID, "the owner counted itself")

	st, err := owner.Status(ctx, res.Cid)
	require.NoError(t, err)
	require.Equal(t, 3, st.Goal)
	require.ElementsMatch(t, res.Replicas, st.Replicas)

	// A reader that is neither the owner nor a replica.
	var reader *node.Node
	for _, n := range nodes {
		id, err := n.ID(ctx)
		require.NoError(t, err)
		if id.ID != ownerID.ID && !slices.Contains(res.Replicas, id.ID) {
			reader = n
		}
	}
	require.NotNil(t, reader)

	_, _, err = cat(ctx, reader, res.Cid)
	require.Error(t, err)
	require.Equal(t, core.KindIntegrity, core.KindOf(err))
	require.ErrorContains(t, err, "capability is needed")

	require.NoError(t, owner.Close())
	got, info, err := cat(ctx, reader, res.Capability)
	require.NoError(t, err)
	require.Equal(t, "film.mkv", info.Name)
	require.True(t, bytes.Equal(data, got), "retrieved bytes differ")
}

func TestAddReportsUnderReplication(t *testing.T) {
	nodes, _ := startNetwork(t, 2)
	res, err := nodes[1].Add(t.Context(), bytes.NewReader(randomData(t, 1000)), core.AddOptions{Name: "x"})
	require.NoError(t, err, "the file is stored: under-replication shows in the result")
	require.Equal(t, 3, res.Goal)
	require.Len(t, res.Replicas, 1)

	// The local copy is kept.
	got, _, err := cat(t.Context(), nodes[1], res.Cid)
	require.NoError(t, err)
	require.Len(t, got, 1000)
}
