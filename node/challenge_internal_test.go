package node

import (
	"bytes"
	"context"
	"crypto/rand"
	"testing"
	"time"

	"github.com/ipfs/go-cid"
	"github.com/libp2p/go-libp2p/core/host"
	"github.com/libp2p/go-libp2p/core/peer"
	"github.com/stretchr/testify/require"

	"github.com/casd/casd/blockstore"
	"github.com/casd/casd/core"
	"github.com/casd/casd/protocol"
)

// startClaimer starts a node whose /cas/get says it holds every root whole
// and holds nothing (claimingBackend), connected to each of to.
func startClaimer(t *testing.T, to ...*Node) peer.ID {
	t.Helper()
	liar := startTestNode(t, 0)
	require.NoError(t, liar.net.proto.Close())
	lying := protocol.New(liar.net.stack.Host, protocol.WithGetBackend(claimingBackend{}))
	lying.Start()
	t.Cleanup(func() { require.NoError(t, lying.Close()) })
	for _, n := range to {
		connect(t, n, liar)
	}
	return liar.net.stack.Host.ID()
}

func addRandom(t *testing.T, n *Node, size int) (*core.AddResult, cid.Cid) {
	t.Helper()
	data := make([]byte, size)
	_, err := rand.Read(data)
	require.NoError(t, err)
	res, err := n.Add(t.Context(), bytes.NewReader(data), core.AddOptions{Name: "x"})
	require.NoError(t, err)
	root, err := cid.Decode(res.Cid)
	require.NoError(t, err)
	return res, root
}

func ids(ns ...*Node) []string {
	var out []string
	for _, n := range ns {
		out = append(out, n.net.stack.Host.ID().String())
	}
	return out
}

// TestAddCountsOnlyProvenReplicas mounts hostile peers point 5 against
// add: with one honest peer and four that say "already complete" to every
// root, an add of goal 3 reaches 1 of 3 (so `casd add` exits 1), the file
// stays pending, and each liar is struck.
func TestAddCountsOnlyProvenReplicas(t *testing.T) {
	owner := startTestNode(t, 3)
	honest := startTestNode(t, 0)
	connect(t, owner, honest)
	var liars []peer.ID
	for range 4 {
		liars = append(liars, startClaimer(t, owner))
	}
	start := time.Now()
	res, root := addRandom(t, owner, 1<<20+5)
	t.Logf("add against 4 claimers: %d of 3 replicas in %v", len(res.Replicas), time.Since(start))
	require.Equal(t, ids(honest), res.Replicas)
	require.Contains(t, owner.net.repl.Pending(), root)
	for _, l := range liars {
		require.Equal(t, 1, owner.net.strikes.Count(l), "liar %s", l)
	}
}

// TestStatusListsOnlyProvenHolders: `casd status` on the owner's node
// lists the two honest replicas and none of the three peers that claim
// the file, strikes each claimer, and says the list is verified. A reader
// that does not hold the file cannot check: it lists every claim and says
// so (verified false).
func TestStatusListsOnlyProvenHolders(t *testing.T) {
	owner := startTestNode(t, 2)
	h1, h2 := startTestNode(t, 0), startTestNode(t, 0)
	connect(t, owner, h1)
	connect(t, owner, h2)
	res, _ := addRandom(t, owner, 3<<20)
	require.ElementsMatch(t, ids(h1, h2), res.Replicas)

	reader := startTestNode(t, 0)
	connect(t, reader, h1)
	connect(t, reader, h2)
	var liars []peer.ID
	for range 3 {
		liars = append(liars, startClaimer(t, owner, reader))
	}

	// The owner answers from its placement, which proved h1 and h2; once
	// it forgets that (as after a restart) it looks the holders up, and
	// challenges and strikes every claimer.
	root, err := cid.Decode(res.Cid)
	require.NoError(t, err)
	for _, known := range []bool{true, false} {
		if !known {
			owner.net.repl.Forget(root)
		}
		st, err := owner.Status(t.Context(), res.Cid)
		require.NoError(t, err)
		require.ElementsMatch(t, ids(h1, h2), st.Replicas)
		require.True(t, st.Verified)
		require.Equal(t, known, !st.LastCheck.IsZero(), "answered from the replicator's state")
		for _, l := range liars {
			require.Equal(t, map[bool]int{true: 0, false: 1}[known], owner.net.strikes.Count(l), "liar %s", l)
		}
	}

	st, err := reader.Status(t.Context(), res.Cid)
	require.NoError(t, err)
	want := ids(h1, h2)
	for _, l := range liars {
		want = append(want, l.String())
	}
	require.Subset(t, st.Replicas, want, "a reader lists the claims as made")
	// The owner is a holder too, if the reader found it (mDNS, the DHT).
	require.Subset(t, append(want, ids(owner)...), st.Replicas)
	require.False(t, st.Verified)
	for _, l := range liars {
		require.Zero(t, reader.net.strikes.Count(l), "a reader strikes no claim it cannot check")
	}
}

// proxyBackend holds nothing: it fetches every block it is asked for, or
// challenged on, from another peer on the spot, and claims every root.
type proxyBackend struct {
	h    host.Host
	from peer.ID
}

func (b proxyBackend) Get(ctx context.Context, c cid.Cid) ([]byte, error) {
	var data []byte
	missing, err := protocol.Fetch(ctx, b.h, b.from, cid.Undef, []cid.Cid{c}, func(blk blockstore.Block) error {
		data = blk.Data
		return nil
	})
	if err != nil {
		return nil, err
	}
	if len(missing) > 0 {
		return nil, blockstore.ErrNotFound
	}
	return data, nil
}

func (proxyBackend) Complete(context.Context, cid.Cid) (bool, error) { return true, nil }
func (proxyBackend) Pinned(context.Context, cid.Cid) (bool, error)   { return true, nil }

// TestProxyNotCounted: a peer that claims every root and answers each
// challenge by fetching the challenged block from the owner, the file's
// only other holder, right then, holds nothing: add does not count it
// (the owner served the very block while the challenge ran), nor does
// status, and it is not struck (an honest reader could have fetched the
// same block at that moment).
func TestProxyNotCounted(t *testing.T) {
	owner := startTestNode(t, 3)
	honest := startTestNode(t, 0)
	connect(t, owner, honest)
	var proxies []peer.ID
	for range 2 {
		p := startTestNode(t, 0)
		require.NoError(t, p.net.proto.Close())
		h := p.net.stack.Host
		svc := protocol.New(h, protocol.WithGetBackend(proxyBackend{h: h, from: owner.net.stack.Host.ID()}))
		svc.Start()
		t.Cleanup(func() { require.NoError(t, svc.Close()) })
		connect(t, owner, p)
		proxies = append(proxies, h.ID())
	}
	res, _ := addRandom(t, owner, 3<<20)
	require.Equal(t, ids(honest), res.Replicas)
	st, err := owner.Status(t.Context(), res.Cid)
	require.NoError(t, err)
	require.Equal(t, ids(honest), st.Replicas)
	for _, p := range proxies {
		require.Zero(t, owner.net.strikes.Count(p))
	}
}
