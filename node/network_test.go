package node_test

import (
	"bytes"
	"encoding/json"
	"os"
	"slices"
	"testing"
	"time"

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

// peerByID returns the entry of id in ps.
func peerByID(ps []core.PeerInfo, id string) (core.PeerInfo, bool) {
	i := slices.IndexFunc(ps, func(p core.PeerInfo) bool { return p.ID == id })
	if i < 0 {
		return core.PeerInfo{}, false
	}
	return ps[i], true
}

// TestPeersReportSources: three nodes, b and c bootstrapped from a. a
// reports b and c as inbound, b reports a as its bootstrap peer, b, whose
// DHT is kept out of discovery, learns of c by gossip alone, and c's DHT
// names b. Every
// entry has sources (never null) and a last-seen time, now for a
// connected peer.
func TestPeersReportSources(t *testing.T) {
	a := openNode(t, newRepo(t, nil), true)
	aID, err := a.ID(t.Context())
	require.NoError(t, err)
	join := func(c *config.Config) { c.Bootstrap = aID.Addrs[:1] }
	b := openNode(t, newRepo(t, func(c *config.Config) { join(c); c.Discovery.WithoutDHT = true }), true)
	c := openNode(t, newRepo(t, join), true)
	bID, err := b.ID(t.Context())
	require.NoError(t, err)
	cID, err := c.ID(t.Context())
	require.NoError(t, err)
	start := time.Now()

	onA, err := a.Peers(t.Context(), true)
	require.NoError(t, err)
	for _, id := range []string{bID.ID, cID.ID} {
		p, ok := peerByID(onA, id)
		require.True(t, ok, "a does not list %s: %+v", id, onA)
		require.True(t, p.Connected)
		require.Equal(t, []string{"inbound"}, p.Sources)
	}

	onB, err := b.Peers(t.Context(), true)
	require.NoError(t, err)
	boot, ok := peerByID(onB, aID.ID)
	require.True(t, ok, "b does not list its bootstrap peer: %+v", onB)
	require.Contains(t, boot.Sources, "bootstrap")
	require.True(t, boot.Connected)
	require.WithinRange(t, boot.LastSeen, start, time.Now())

	var fromC core.PeerInfo
	require.Eventually(t, func() bool {
		onB, err := b.Peers(t.Context(), true)
		if err != nil {
			return false
		}
		fromC, ok = peerByID(onB, cID.ID)
		return ok && slices.Contains(fromC.Sources, "gossip")
	}, 30*time.Second, 50*time.Millisecond, "b never heard of c by gossip")
	require.NotContains(t, fromC.Sources, "dht", "b's DHT is out of discovery")
	// c's DHT, in discovery, hears of b from a (b's DHT still serves).
	require.Eventually(t, func() bool {
		onC, err := c.Peers(t.Context(), true)
		if err != nil {
			return false
		}
		fromB, ok := peerByID(onC, bID.ID)
		return ok && slices.Contains(fromB.Sources, "dht")
	}, 30*time.Second, 50*time.Millisecond, "c's DHT never named b")
	require.NotEmpty(t, fromC.Addrs)
	require.False(t, fromC.LastSeen.IsZero())

	connected, err := b.Peers(t.Context(), false)
	require.NoError(t, err)
	for _, p := range connected {
		require.True(t, p.Connected, "%s", p.ID)
		require.NotNil(t, p.Sources)
	}
}

// TestCloseRemembersPeers: a node remembers, in its repo's peers file,
// the peers it was connected to, its bootstrap peer (connected before
// gossip started) among them.
func TestCloseRemembersPeers(t *testing.T) {
	nodes, repos := startNetwork(t, 2)
	first, err := nodes[0].ID(t.Context())
	require.NoError(t, err)
	require.NoError(t, nodes[1].Close())
	data, err := os.ReadFile(repos[1].PeersPath())
	require.NoError(t, err)
	var file struct {
		Peers []struct{ ID string }
	}
	require.NoError(t, json.Unmarshal(data, &file))
	require.Len(t, file.Peers, 1, "%s", data)
	require.Equal(t, first.ID, file.Peers[0].ID)
}
