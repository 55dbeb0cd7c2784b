package main

import (
	"errors"
	"fmt"
	"testing"

	"github.com/spf13/cobra"
	"github.com/stretchr/testify/require"

	"github.com/casd/casd/blockstore"
	"github.com/casd/casd/config"
	"github.com/casd/casd/core"
	"github.com/casd/casd/dag"
)

// kinded stands for an error that carries its kind across the API.
type kinded struct{ k core.Kind }

func (e kinded) Error() string   { return "remote: " + string(e.k) }
func (e kinded) Kind() core.Kind { return e.k }

func TestExitCode(t *testing.T) {
	wrap := func(err error) error { return fmt.Errorf("cat x: %w", err) }
	tests := []struct {
		name string
		err  error
		want int
	}{
		{"nil", nil, 0},
		{"plain", errors.New("boom"), 1},
		{"repo exists", wrap(config.ErrRepoExists), 1},
		{"bad input", wrap(core.ErrBadInput), 2},
		{"not a ref", wrap(dag.ErrBadRef), 2},
		{"not a capability", wrap(dag.ErrBadCapability), 2},
		{"unknown config key", wrap(config.ErrUnknownKey), 2},
		{"cli bad input", badInput(errors.New("x is a directory")), 2},
		{"usage", usageError(&cobra.Command{Use: "cat"}, errors.New("accepts 1 arg(s)")), 2},
		{"not found", wrap(blockstore.ErrNotFound), 3},
		{"unauthenticated", wrap(dag.ErrUnauthenticated), 4},
		{"chunk not file", wrap(dag.ErrNotFile), 4},
		{"need capability", wrap(dag.ErrNeedCapability), 4},
		{"corrupt block", wrap(blockstore.ErrCorrupt), 4},
		{"cli integrity", integrityError(errors.New("wrong passphrase")), 4},
		{"locked", wrap(config.ErrRepoLocked), 5},
		{"no repo", wrap(config.ErrNoRepo), 5},
		{"newer repo", wrap(config.ErrNewerRepo), 5},
		{"offline", wrap(core.ErrOffline), 5},
		{"remote not found", wrap(kinded{core.KindNotFound}), 3},
		{"remote busy", wrap(kinded{core.KindBusy}), 5},
		{"remote other", wrap(kinded{core.KindOther}), 1},
		{"outer kind wins", badInput(wrap(blockstore.ErrNotFound)), 2},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			require.Equal(t, tt.want, exitCode(tt.err))
		})
	}
}

func TestErrorLine(t *testing.T) {
	tests := []struct {
		name string
		err  error
		want string
	}{
		{"one line", errors.New("get x: not found"), "get x: not found"},
		{"joined", errors.Join(errors.New("a: b"), errors.New("close: c")), "a: b; close: c"},
		{"blank lines", errors.New("a\n\n  b \r\n"), "a; b"},
		{"empty", errors.New(""), "unknown error"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			require.Equal(t, tt.want, errorLine(tt.err))
		})
	}
}

func TestKindErrorKeepsMessageAndChain(t *testing.T) {
	inner := fmt.Errorf("open k: %w", dag.ErrBadName)
	err := badInput(inner)
	require.Equal(t, inner.Error(), err.Error())
	require.ErrorIs(t, err, dag.ErrBadName)
}
