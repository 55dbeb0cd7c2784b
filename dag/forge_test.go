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
