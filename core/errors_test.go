package core_test

import (
	"errors"
	"fmt"
	"testing"

	"github.com/stretchr/testify/require"

	"github.com/casd/casd/blockstore"
	"github.com/casd/casd/config"
	"github.com/casd/casd/core"
	"github.com/casd/casd/dag"
)

type kinded struct{ k core.Kind }

func (e kinded) Error() string   { return "remote" }
func (e kinded) Kind() core.Kind { return e.k }

// TestKindOf: every sentinel the node's operations return maps to the kind
// the CLI turns into its exit code, also when wrapped, and an error that
// carries its own kind (the API client's) keeps it.
func TestKindOf(t *testing.T) {
	for _, tt := range []struct {
		err  error
		want core.Kind
	}{
		{core.ErrBadInput, core.KindBadInput},
		{dag.ErrBadRef, core.KindBadInput},
		{dag.ErrBadCapability, core.KindBadInput},
		{dag.ErrBadName, core.KindBadInput},
		{config.ErrUnknownKey, core.KindBadInput},
		{blockstore.ErrTooLarge, core.KindBadInput},
		{blockstore.ErrBadCid, core.KindBadInput},
		{blockstore.ErrNotFound, core.KindNotFound},
		{dag.ErrUnauthenticated, core.KindIntegrity},
		{dag.ErrMalformed, core.KindIntegrity},
		{dag.ErrNotFile, core.KindIntegrity},
		{dag.ErrNeedCapability, core.KindIntegrity},
		{blockstore.ErrCorrupt, core.KindIntegrity},
		{core.ErrNotOwned, core.KindIntegrity},
		{config.ErrRepoLocked, core.KindBusy},
		{config.ErrNoRepo, core.KindBusy},
		{config.ErrNewerRepo, core.KindBusy},
		{blockstore.ErrLocked, core.KindBusy},
		{core.ErrOffline, core.KindBusy},
		{errors.New("disk on fire"), core.KindOther},
		{kinded{core.KindNotFound}, core.KindNotFound},
		{fmt.Errorf("wrapped: %w", kinded{core.KindIntegrity}), core.KindIntegrity},
	} {
		t.Run(tt.err.Error(), func(t *testing.T) {
			require.Equal(t, tt.want, core.KindOf(tt.err))
			require.Equal(t, tt.want, core.KindOf(fmt.Errorf("op: %w", tt.err)), "wrapped")
		})
	}
}
