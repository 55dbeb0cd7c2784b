package replicate

import (
	"bytes"
	"context"
	"crypto/rand"
	"errors"
	"testing"
	"time"

	"github.com/ipfs/go-cid"
	"github.com/libp2p/go-libp2p/core/host"
	"github.com/libp2p/go-libp2p/core/peer"
	"github.com/stretchr/testify/require"

	"github.com/casd/casd/crypt"
	"github.com/casd/casd/dag"
	"github.com/casd/casd/dag/dagtest"
	"github.com/casd/casd/protocol"
)

// memFile adds a file of chunks chunks to a memory store and returns its
// root and the CIDs of its chunks.
func memFile(t *testing.T, chunks int) (*dagtest.MemStore, cid.Cid, []cid.Cid) {
	t.Helper()
	st := dagtest.NewMemStore()
	var s crypt.Secrets
	_, _ = rand.Read(s.Master[:])
	_, _ = rand.Read(s.Convergence[:])
	data := make([]byte, (chunks-1)*dag.MinChunkSize+1)
	_, _ = rand.Read(data)
	added, err := dag.Add(t.Context(), bytes.NewReader(data), dag.Meta{Name: "f"}, &s, st,
		dag.AddOptions{ChunkSize: dag.MinChunkSize})
	require.NoError(t, err)
	var cs []cid.Cid
	require.NoError(t, dag.Walk(t.Context(), st, added.Root, func(c cid.Cid, kind byte) error {
		if kind == dag.KindChunk {
			cs = append(cs, c)
		}
		return nil
	}))
	require.Len(t, cs, chunks)
	return st, added.Root, cs
}

// TestAuditPicksChunksUniformly: the challenged block is a chunk, never
// the manifest, and every chunk gets picked: over 300 picks among 5 chunks
// each is expected 60 times, and the chance that one is never picked is
// below 5 * 0.8^300 = 4e-29.
func TestAuditPicksChunksUniformly(t *testing.T) {
	st, root, chunks := memFile(t, 5)
	a := NewAuditor(AuditorConfig{Local: st})
	picked := map[cid.Cid]int{}
	for range 300 {
		b, err := a.pick(t.Context(), root)
		require.NoError(t, err)
		require.Contains(t, chunks, b.Cid)
		picked[b.Cid]++
	}
	require.Len(t, picked, 5, "picks: %v", picked)
}

// TestAuditWithoutLocalCopy: a node that does not hold the root, or holds
// a corrupt copy of the chunks, challenges nobody (ErrNotLocal; Verify
// lets the claim stand unverified) and strikes nobody: an honest peer's
// proof would not match a corrupt copy.
func TestAuditWithoutLocalCopy(t *testing.T) {
	st, root, chunks := memFile(t, 3)
	for _, c := range chunks {
		data, err := st.Get(t.Context(), c)
		require.NoError(t, err)
		data[len(data)/2] ^= 1
		st.Set(c, data)
	}
	o := newOwner(t) // for its host; the owner's file is not root
	claimer := startLiar(t, true, sayMissing)
	require.NoError(t, o.h.Connect(t.Context(), peer.AddrInfo{ID: claimer.ID(), Addrs: claimer.Addrs()}))
	cases := map[string]dag.BlockGetter{"absent": dagtest.NewMemStore(), "corrupt": st}
	for name, local := range cases {
		t.Run(name, func(t *testing.T) {
			a := NewAuditor(AuditorConfig{Host: o.h, Local: local, Strike: o.strikes.strike, Proven: o.proven})
			err := a.Audit(t.Context(), claimer.ID(), root)
			require.ErrorIs(t, err, ErrNotLocal)
			verified, err := a.Verify(t.Context(), claimer.ID(), root)
			require.NoError(t, err)
			require.False(t, verified)
			require.Zero(t, o.strikes.of(claimer.ID()))
		})
	}
}

// TestVerifyOutcomes: Verify counts an honest holder's proof as verified,
// refuses a liar's claim and strikes it, and refuses without a strike a
// claim it could not check because the peer did not answer.
func TestVerifyOutcomes(t *testing.T) {
	o := newOwner(t)
	h, _ := startHonest(t)
	r := o.replicator(t, 1, h)
	_, err := r.Replicate(t.Context(), o.root) // h now holds the file
	require.NoError(t, err)
	liar := startLiar(t, true, guess)
	gone := newHost(t)
	for _, p := range []host.Host{liar, gone} {
		require.NoError(t, o.h.Connect(t.Context(), peer.AddrInfo{ID: p.ID(), Addrs: p.Addrs()}))
	}
	require.NoError(t, gone.Close())
	a := r.cfg.Audit

	verified, err := a.Verify(t.Context(), h.ID(), o.root)
	require.NoError(t, err)
	require.True(t, verified)

	verified, err = a.Verify(t.Context(), liar.ID(), o.root)
	require.ErrorIs(t, err, protocol.ErrBadProof)
	require.False(t, verified)
	require.Equal(t, 1, o.strikes.of(liar.ID()))

	ctx, cancel := context.WithTimeout(t.Context(), 5*time.Second)
	defer cancel()
	verified, err = a.Verify(ctx, gone.ID(), o.root)
	require.Error(t, err)
	require.False(t, errors.Is(err, ErrNotLocal) || verified)
	require.Zero(t, o.strikes.of(gone.ID()), "an unreachable peer is not a liar")
	require.False(t, o.proven.Has(gone.ID()))
}
