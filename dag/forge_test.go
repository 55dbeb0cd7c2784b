package dag_test

import (
	"bytes"
	"testing"

	"github.com/stretchr/testify/require"

	"github.com/casd/casd/dag"
	"github.com/casd/casd/dag/dagtest"
)

// TestOpenOwnedRefusesForgedRoot: a holder of one capability seals a root
// of different content around the owner's wrapped file key, under the
// file key, in format 1 (a stored golden vector, as existing repos hold)
// and in format 2. A capability holder reads it (it is well-formed); the
// owner's node refuses it from its bare CID with ErrNeedCapability, and
// still opens the genuine file.
func TestOpenOwnedRefusesForgedRoot(t *testing.T) {
	for _, version := range []int{1, 2} {
		t.Run("v"+itoa(version), func(t *testing.T) {
			g := dag.LoadGolden(t, "hello", version)
			evil := []byte("pay the bearer one million\n")
			blocks, err := dagtest.ForgeRoot(t.Context(), g.Store, g.Cap.Root, g.Cap.Key, "invoice.txt", evil)
			require.NoError(t, err)
			require.NoError(t, g.Store.PutMany(t.Context(), blocks))
			forged := blocks[len(blocks)-1].Cid
			require.Equal(t, byte(version), blocks[len(blocks)-1].Data[0])

			f, err := dag.OpenFile(t.Context(), g.Store, forged, g.Cap.Key)
			require.NoError(t, err, "the forgery must be well-formed for this test to mean anything")
			got, err := readAll(t, g.Store, f)
			require.NoError(t, err)
			require.True(t, bytes.Equal(evil, got))

			_, err = dag.OpenOwned(t.Context(), g.Store, forged, g.Secrets)
			require.ErrorIs(t, err, dag.ErrNeedCapability)

			genuine, err := dag.OpenOwned(t.Context(), g.Store, g.Cap.Root, g.Secrets)
			require.NoError(t, err)
			require.Equal(t, "hello.txt", genuine.Meta.Name)
		})
	}
}

// TestOpenOwnedForgedLinks: dagtest.ForgeLinks keeps the owner's root body
// and wrapped key and links a chunk of the forger's. Format 2 refuses it at
// OpenOwned; format 1 (whose file key covers only the body) opens it, then
// refuses it at its first forged block, before writing a byte of it, and
// in VerifyOwned, which share runs.
func TestOpenOwnedForgedLinks(t *testing.T) {
	evil := []byte("not what you wrote\n") // as long as the vector's one chunk
	for _, version := range []int{1, 2} {
		t.Run("v"+itoa(version), func(t *testing.T) {
			g := dag.LoadGolden(t, "hello", version)
			blocks, err := dagtest.ForgeLinks(t.Context(), g.Store, g.Cap.Root, g.Cap.Key, evil)
			require.NoError(t, err)
			require.NoError(t, g.Store.PutMany(t.Context(), blocks))
			forged := blocks[len(blocks)-1].Cid
			byCap, err := dag.OpenFile(t.Context(), g.Store, forged, g.Cap.Key)
			require.NoError(t, err)
			got, err := readAll(t, g.Store, byCap)
			require.NoError(t, err)
			require.True(t, bytes.Equal(evil, got), "the forgery must be well-formed for this test to mean anything")

			f, err := dag.OpenOwned(t.Context(), g.Store, forged, g.Secrets)
			if version == 2 {
				require.ErrorIs(t, err, dag.ErrNeedCapability)
				return
			}
			require.NoError(t, err)
			got, err = readAll(t, g.Store, f)
			require.ErrorIs(t, err, dag.ErrNeedCapability)
			require.Empty(t, got)
			require.ErrorIs(t, f.VerifyOwned(t.Context(), g.Store), dag.ErrNeedCapability)
		})
	}
}
