package node

import (
	"bytes"
	"crypto/rand"
	"errors"
	"os"
	"path/filepath"
	"testing"

	"github.com/ipfs/go-cid"
	"github.com/stretchr/testify/require"

	"github.com/casd/casd/blockstore"
	"github.com/casd/casd/config"
	"github.com/casd/casd/core"
	"github.com/casd/casd/dag"
)

// TestReadRepairsCorruptLocalBlock (hostile peers, point 11): one flipped
// byte in a chunk of an owned file, on the owner's disk, does not make the
// file unreadable while a replica holds it: the read gets every byte from
// the replica and rewrites the local chunk, after which the owner's store
// verifies clean and reads the file alone.
func TestReadRepairsCorruptLocalBlock(t *testing.T) {
	owner := startTestNode(t, 1)
	replica := startTestNode(t, 0)
	connect(t, owner, replica)
	data := make([]byte, 3<<20+5)
	_, err := rand.Read(data)
	require.NoError(t, err)
	res, err := owner.Add(t.Context(), bytes.NewReader(data), core.AddOptions{Name: "x"})
	require.NoError(t, err)
	require.Len(t, res.Replicas, 1, "the replica must hold the file")
	root, err := cid.Decode(res.Cid)
	require.NoError(t, err)
	chunk := someChunk(t, owner, root)
	flipBlockByte(t, owner.repo, chunk)

	got, _, err := catInternal(t, owner, res.Cid)
	require.NoError(t, err)
	require.True(t, bytes.Equal(data, got), "read back %d bytes, want the %d added", len(got), len(data))

	rep, err := owner.store.Verify(t.Context(), dag.Links)
	require.NoError(t, err)
	require.Empty(t, rep.Corrupt, "the damaged chunk was not rewritten")
	require.Empty(t, rep.Missing)
	stored, err := owner.store.Get(t.Context(), chunk)
	require.NoError(t, err)
	require.NoError(t, blockstore.VerifyBlock(chunk, stored))
}

// TestOfflineReadNamesCorruptBlock: offline, with no peer to fetch from, a
// damaged local chunk fails the read with an integrity error that names
// the block and says to run 'casd repo verify'.
func TestOfflineReadNamesCorruptBlock(t *testing.T) {
	repo, err := config.Init(filepath.Join(t.TempDir(), "repo"), config.InitOptions{Profile: config.ProfileLocal})
	require.NoError(t, err)
	n, err := Open(t.Context(), repo, Options{})
	require.NoError(t, err)
	t.Cleanup(func() { require.NoError(t, n.Close()) })
	data := make([]byte, 2<<20+9)
	_, err = rand.Read(data)
	require.NoError(t, err)
	res, err := n.Add(t.Context(), bytes.NewReader(data), core.AddOptions{Name: "x"})
	require.NoError(t, err)
	root, err := cid.Decode(res.Cid)
	require.NoError(t, err)
	chunk := someChunk(t, n, root)
	flipBlockByte(t, repo, chunk)

	_, _, err = catInternal(t, n, res.Cid)
	require.Error(t, err)
	require.True(t, errors.Is(err, blockstore.ErrCorrupt), "want a corrupt-block error, got %v", err)
	require.Equal(t, core.KindIntegrity, core.KindOf(err))
	require.Contains(t, err.Error(), chunk.String())
	require.Contains(t, err.Error(), "casd repo verify")
}

// someChunk returns a chunk of root's file held by n.
func someChunk(t *testing.T, n *Node, root cid.Cid) cid.Cid {
	t.Helper()
	var chunks []cid.Cid
	require.NoError(t, dag.Walk(t.Context(), n.store, root, func(c cid.Cid, kind byte) error {
		if kind == dag.KindChunk {
			chunks = append(chunks, c)
		}
		return nil
	}))
	require.NotEmpty(t, chunks)
	return chunks[len(chunks)/2]
}

// flipBlockByte flips one bit in the middle of the file of block c in
// repo, as a bad sector would: same length, wrong bytes.
func flipBlockByte(t *testing.T, repo *config.Repo, c cid.Cid) {
	t.Helper()
	name := c.String()
	p := filepath.Join(repo.BlocksDir(), name[len(name)-3:len(name)-1], name)
	b, err := os.ReadFile(p)
	require.NoError(t, err)
	b[len(b)/2] ^= 0x08
	require.NoError(t, os.WriteFile(p, b, 0o600))
}

// TestOnlineReadWithoutPeersNamesCorruptBlock: online but with no peer
// holding the file, a damaged local chunk fails the read as corrupt,
// naming the block, rather than as a block no peer provides.
func TestOnlineReadWithoutPeersNamesCorruptBlock(t *testing.T) {
	n := startTestNode(t, 0)
	res, err := n.Add(t.Context(), bytes.NewReader(bytes.Repeat([]byte("lonely "), 300_000)), core.AddOptions{Name: "x"})
	require.NoError(t, err)
	root, err := cid.Decode(res.Cid)
	require.NoError(t, err)
	chunk := someChunk(t, n, root)
	flipBlockByte(t, n.repo, chunk)

	_, _, err = catInternal(t, n, res.Cid)
	require.Error(t, err)
	require.Equal(t, core.KindIntegrity, core.KindOf(err), "want an integrity error, got %v", err)
	require.Contains(t, err.Error(), chunk.String())
	require.Contains(t, err.Error(), "casd repo verify")
}
