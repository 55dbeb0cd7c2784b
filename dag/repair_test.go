package dag_test

import (
	"bytes"
	"context"
	"sync"
	"testing"

	"github.com/ipfs/go-cid"
	"github.com/stretchr/testify/require"

	"github.com/casd/casd/blockstore"
	"github.com/casd/casd/dag"
	"github.com/casd/casd/dag/dagtest"
)

// repairingStore is a damaged local store with a good copy elsewhere: Get
// returns what local holds, Repair the good copy of a block that local
// holds damaged.
type repairingStore struct {
	local, good *dagtest.MemStore
	mu          sync.Mutex // guards repaired: reads repair concurrently
	repaired    []cid.Cid
}

func (s *repairingStore) Get(ctx context.Context, c cid.Cid) ([]byte, error) {
	return s.local.Get(ctx, c)
}

func (s *repairingStore) Repair(ctx context.Context, c cid.Cid) ([]byte, bool, error) {
	data, err := s.local.Get(ctx, c)
	if err != nil {
		return nil, false, err
	}
	if blockstore.VerifyBlock(c, data) == nil {
		return nil, false, nil
	}
	s.mu.Lock()
	s.repaired = append(s.repaired, c)
	s.mu.Unlock()
	good, err := s.good.Get(ctx, c)
	return good, err == nil, err
}

// TestReadRepairsDamagedBlocks: a reader whose getter is a dag.Repairer
// gets a good copy of a chunk that fails to open and of a manifest node
// that fails its CID, and reads the file whole; without a Repairer the
// same damage fails the read.
func TestReadRepairsDamagedBlocks(t *testing.T) {
	good := dagtest.NewMemStore()
	data := randomBytes(5*dag.MinChunkSize, 7)
	a := add(t, good, data, "x", testSecrets(1), smallTree)
	var chunk, node cid.Cid
	require.NoError(t, dag.Walk(t.Context(), good, a.Root, func(c cid.Cid, kind byte) error {
		switch {
		case kind == dag.KindChunk && !chunk.Defined():
			chunk = c
		case kind == dag.KindNode && !node.Defined():
			node = c
		}
		return nil
	}))
	require.True(t, chunk.Defined() && node.Defined(), "the tree has a chunk and an inner node")

	local := dagtest.NewMemStore()
	for c, b := range good.All() {
		local.Set(c, bytes.Clone(b))
	}
	for _, c := range []cid.Cid{chunk, node} {
		b, err := local.Get(t.Context(), c)
		require.NoError(t, err)
		b[len(b)-1] ^= 1
		local.Set(c, b)
	}

	f, err := dag.OpenFile(t.Context(), local, a.Root, a.Key)
	require.NoError(t, err)
	_, err = readAll(t, local, f)
	require.Error(t, err, "a damaged store without a Repairer reads")

	st := &repairingStore{local: local, good: good}
	var out bytes.Buffer
	_, err = f.WriteTo(t.Context(), &out, st, dag.ReadOptions{Window: 3})
	require.NoError(t, err)
	require.True(t, bytes.Equal(data, out.Bytes()), "read back is not the file")
	require.ElementsMatch(t, []cid.Cid{chunk, node}, st.repaired)
}
