package adversary_test

import (
	"context"
	"crypto/ed25519"
	"crypto/rand"
	"testing"

	"github.com/ipfs/go-cid"
	"github.com/stretchr/testify/require"
	"go.uber.org/goleak"

	"github.com/casd/casd/blockstore"
	"github.com/casd/casd/internal/adversary"
	"github.com/casd/casd/protocol"
	"github.com/casd/casd/protocol/pb"
)

// memGetter is a dag.BlockGetter over a map.
type memGetter map[cid.Cid][]byte

func (m memGetter) Get(_ context.Context, c cid.Cid) ([]byte, error) {
	if d, ok := m[c]; ok {
		return d, nil
	}
	return nil, blockstore.ErrNotFound
}

// TestHoarder: casd's own protocol clients see a hoarder store a tree
// whole, serve it, and answer challenges as its lie says: a random proof
// for every challenge (GarbageProofs), or an honest single-block proof and
// a random tree proof (GarbageTreeProofs). A Remove makes it disclaim the
// root.
func TestHoarder(t *testing.T) {
	defer goleak.VerifyNone(t, goleak.IgnoreCurrent())
	ctx := t.Context()
	chunks := []pb.Block{adversary.Chunk(3000), adversary.Chunk(5000)}
	root := adversary.Root(0, []cid.Cid{chunks[0].Cid, chunks[1].Cid})
	all := append([]pb.Block{root}, chunks...)
	local := memGetter{}
	var bytes uint64
	for _, b := range all {
		local[b.Cid] = b.Data
		bytes += uint64(len(b.Data))
	}
	blocks := func(yield func(blockstore.Block, error) bool) {
		for _, b := range all {
			if !yield(blockstore.Block{Cid: b.Cid, Data: b.Data}, nil) {
				return
			}
		}
	}
	_, owner, err := ed25519.GenerateKey(rand.Reader)
	require.NoError(t, err)

	tests := []struct {
		lie                 adversary.ProofLie
		lightLies, treeLies bool
	}{
		{adversary.HonestProofs, false, false},
		{adversary.GarbageProofs, true, true},
		{adversary.GarbageTreeProofs, false, true},
		{adversary.GarbageBlockProofs, true, false},
	}
	for _, tt := range tests {
		t.Run(tt.lie.String(), func(t *testing.T) {
			p := newPeer(t)
			h := p.Hoard(tt.lie, 1<<20)
			victim := newPeer(t)
			require.NoError(t, victim.Host.Connect(ctx, p.AddrInfo()))
			vh, id := victim.Host, p.ID()

			res, err := protocol.Store(ctx, vh, id, owner, root.Cid, blocks, uint64(len(all)), bytes)
			require.NoError(t, err)
			require.Equal(t, protocol.StoreResult{Stored: 3, Complete: true}, res)
			held, err := protocol.HasRoot(ctx, vh, id, root.Cid)
			require.NoError(t, err)
			require.True(t, held, "the hoarder holds what it stored")
			var got []cid.Cid
			missing, err := protocol.Fetch(ctx, vh, id, root.Cid, []cid.Cid{chunks[1].Cid},
				func(b blockstore.Block) error { got = append(got, b.Cid); return nil })
			require.NoError(t, err)
			require.Empty(t, missing)
			require.Equal(t, []cid.Cid{chunks[1].Cid}, got, "the hoarder serves its blocks")

			err = protocol.Audit(ctx, vh, id, root.Cid, blockstore.Block{Cid: chunks[0].Cid, Data: chunks[0].Data})
			if tt.lightLies {
				require.ErrorIs(t, err, protocol.ErrBadProof)
			} else {
				require.NoError(t, err, "the block proof is true")
			}

			nonce := protocol.Nonce()
			proof, err := protocol.TreeChallenge(ctx, vh, id, owner, root.Cid, nonce)
			require.NoError(t, err)
			want, err := protocol.TreeProofs(ctx, local, root.Cid, []protocol.TreeProver{{Peer: id, Nonce: nonce}})
			require.NoError(t, err)
			if tt.treeLies {
				require.NotEqual(t, want[0], proof, "the tree proof is garbage")
			} else {
				require.Equal(t, want[0], proof, "the tree proof is true")
			}

			require.NoError(t, protocol.Remove(ctx, vh, id, owner, root.Cid))
			require.False(t, h.Holds(root.Cid), "a removed root is disclaimed")
			_, err = protocol.TreeChallenge(ctx, vh, id, owner, root.Cid, nonce)
			require.ErrorIs(t, err, protocol.ErrNotHeld)

			var lies int64
			for _, l := range []bool{tt.lightLies, tt.treeLies} {
				if l {
					lies++
				}
			}
			require.Equal(t, adversary.HoarderCounts{Stores: 1, Served: 1, Garbage: lies, HonestProofs: 2 - lies,
				TreeChallenges: 2, Removes: 1}, h.Counts())
		})
	}
}

// TestHoarderTurns: a hoarder that proved honestly lies once told to.
func TestHoarderTurns(t *testing.T) {
	ctx := t.Context()
	chunk := adversary.Chunk(3000)
	root := adversary.Root(0, []cid.Cid{chunk.Cid})
	all := []pb.Block{root, chunk}
	blocks := func(yield func(blockstore.Block, error) bool) {
		for _, b := range all {
			if !yield(blockstore.Block{Cid: b.Cid, Data: b.Data}, nil) {
				return
			}
		}
	}
	_, owner, err := ed25519.GenerateKey(rand.Reader)
	require.NoError(t, err)
	p := newPeer(t)
	h := p.Hoard(adversary.HonestProofs, 1<<20)
	victim := newPeer(t)
	require.NoError(t, victim.Host.Connect(ctx, p.AddrInfo()))
	_, err = protocol.Store(ctx, victim.Host, p.ID(), owner, root.Cid, blocks, 2, uint64(len(root.Data)+len(chunk.Data)))
	require.NoError(t, err)
	b := blockstore.Block{Cid: chunk.Cid, Data: chunk.Data}
	require.NoError(t, protocol.Audit(ctx, victim.Host, p.ID(), root.Cid, b))
	h.SetLie(adversary.GarbageBlockProofs)
	require.ErrorIs(t, protocol.Audit(ctx, victim.Host, p.ID(), root.Cid, b), protocol.ErrBadProof)
}

// TestHoarderCapacity: an offer beyond the hoarder's capacity is refused.
func TestHoarderCapacity(t *testing.T) {
	ctx := t.Context()
	p := newPeer(t)
	p.Hoard(adversary.GarbageProofs, 1000)
	victim := newPeer(t)
	require.NoError(t, victim.Host.Connect(ctx, p.AddrInfo()))
	blk := adversary.Chunk(2000)
	_, owner, err := ed25519.GenerateKey(rand.Reader)
	require.NoError(t, err)
	blocks := func(yield func(blockstore.Block, error) bool) {
		yield(blockstore.Block{Cid: blk.Cid, Data: blk.Data}, nil)
	}
	_, err = protocol.Store(ctx, victim.Host, p.ID(), owner, blk.Cid, blocks, 1, uint64(len(blk.Data)))
	require.ErrorIs(t, err, protocol.ErrRejected)
}
