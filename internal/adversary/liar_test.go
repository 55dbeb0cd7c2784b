package adversary_test

import (
	"context"
	"crypto/ed25519"
	"crypto/rand"
	"testing"

	"github.com/ipfs/go-cid"
	mh "github.com/multiformats/go-multihash"
	"github.com/stretchr/testify/require"
	"go.uber.org/goleak"

	"github.com/casd/casd/blockstore"
	"github.com/casd/casd/internal/adversary"
	"github.com/casd/casd/protocol"
)

// TestLies: casd's own protocol clients, against each lie, see what the
// lie is meant to make a victim see.
func TestLies(t *testing.T) {
	defer goleak.VerifyNone(t, goleak.IgnoreCurrent())
	ctx := t.Context()
	blk := testBlock(t, 5000)
	root := testBlock(t, 100).Cid
	blocks := func(yield func(blockstore.Block, error) bool) { yield(blk, nil) }
	_, owner, err := ed25519.GenerateKey(rand.Reader)
	require.NoError(t, err)

	tests := []struct {
		lie    adversary.Lie
		fetch  func(t *testing.T, missing []cid.Cid, err error)
		store  func(t *testing.T, res protocol.StoreResult, err error)
		counts adversary.LiarCounts
	}{
		{adversary.ClaimAll,
			func(t *testing.T, missing []cid.Cid, err error) {
				require.NoError(t, err)
				require.Equal(t, []cid.Cid{blk.Cid}, missing)
			},
			func(t *testing.T, res protocol.StoreResult, err error) {
				require.NoError(t, err)
				require.Equal(t, protocol.StoreResult{Stored: 1, Complete: true}, res, "acknowledged as stored and complete")
			},
			adversary.LiarCounts{Claims: 1, Lies: 1, Stores: 1}},
		{adversary.MissingAll,
			func(t *testing.T, missing []cid.Cid, err error) {
				require.NoError(t, err)
				require.Equal(t, []cid.Cid{blk.Cid}, missing)
			},
			func(t *testing.T, _ protocol.StoreResult, err error) {
				require.ErrorIs(t, err, protocol.ErrRejected)
			},
			adversary.LiarCounts{Claims: 1, Lies: 1}},
		{adversary.WrongBytes,
			func(t *testing.T, _ []cid.Cid, err error) {
				require.ErrorIs(t, err, protocol.ErrBadBlock)
			},
			func(t *testing.T, _ protocol.StoreResult, err error) {
				require.ErrorIs(t, err, protocol.ErrRejected)
			},
			adversary.LiarCounts{Claims: 1, Lies: 1}},
	}
	for _, tt := range tests {
		t.Run(tt.lie.String(), func(t *testing.T) {
			p := newPeer(t)
			l := p.Lie(tt.lie)
			victim := newPeer(t)
			require.NoError(t, victim.Host.Connect(ctx, p.AddrInfo()))

			held, err := protocol.HasRoot(ctx, victim.Host, p.ID(), root)
			require.NoError(t, err)
			require.True(t, held, "every lie claims every root")
			missing, err := protocol.Fetch(ctx, victim.Host, p.ID(), root, []cid.Cid{blk.Cid},
				func(blockstore.Block) error { return nil })
			tt.fetch(t, missing, err)
			res, err := protocol.Store(ctx, victim.Host, p.ID(), owner, root, blocks, 1, uint64(len(blk.Data)))
			tt.store(t, res, err)
			require.Equal(t, tt.counts, l.Counts())
		})
	}
}

// TestProvideNeedsDHT: a liar without a DHT cannot publish records.
func TestProvideNeedsDHT(t *testing.T) {
	l := newPeer(t).Lie(adversary.MissingAll)
	err := l.Provide(context.Background(), testBlock(t, 10).Cid)
	require.ErrorContains(t, err, "no DHT")
}

func newPeer(t *testing.T) *adversary.Peer {
	t.Helper()
	p, err := adversary.New(t.Context(), adversary.Options{})
	require.NoError(t, err)
	t.Cleanup(func() { require.NoError(t, p.Close()) })
	return p
}

func testBlock(t *testing.T, n int) blockstore.Block {
	t.Helper()
	data := make([]byte, n)
	_, err := rand.Read(data)
	require.NoError(t, err)
	h, err := cid.V1Builder{Codec: cid.Raw, MhType: mh.SHA2_256}.Sum(data)
	require.NoError(t, err)
	return blockstore.Block{Cid: h, Data: data}
}
