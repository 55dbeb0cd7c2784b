package main

import (
	"context"
	"encoding/json"
	"strings"
	"testing"

	"github.com/stretchr/testify/require"

	"github.com/casd/casd/core"
)

// repairOnly is a core.Network that answers Repair only, and remembers
// the CID it was asked.
type repairOnly struct {
	core.Network
	reports []core.RepairReport
	asked   *string
}

func (r repairOnly) Repair(_ context.Context, cid string) ([]core.RepairReport, error) {
	*r.asked = cid
	return r.reports, nil
}

// TestRepairOutput: one line per root, "<cid> <live>/<goal> replicas
// (+<added> new)"; exit 0 when every root meets its goal, else an error
// of an under-replicated root ("reached N of G replicas", as add says);
// --json prints the reports with [] for empty lists.
func TestRepairOutput(t *testing.T) {
	met := core.RepairReport{Cid: "c1", Goal: 2, Live: []string{"p1", "p2"}, Added: []string{"p2"}, Dropped: []string{"p3"}}
	short := core.RepairReport{Cid: "c2", Goal: 3, Live: []string{"p1"}}
	var asked string

	var out strings.Builder
	require.NoError(t, runRepair(t.Context(), repairOnly{reports: []core.RepairReport{met}, asked: &asked}, repairOpts{}, "c1", &out))
	require.Equal(t, "c1", asked)
	require.Equal(t, "c1 2/2 replicas (+1 new)\n", out.String())

	out.Reset()
	err := runRepair(t.Context(), repairOnly{reports: []core.RepairReport{met, short}, asked: &asked}, repairOpts{}, "", &out)
	require.Empty(t, asked, "no CID: every owned root")
	require.Equal(t, "c1 2/2 replicas (+1 new)\nc2 1/3 replicas (+0 new)\n", out.String())
	require.ErrorIs(t, err, core.ErrUnderReplicated)
	require.ErrorContains(t, err, "repair c2")
	require.ErrorContains(t, err, "reached 1 of 3 replicas")
	require.Equal(t, exitOther, exitCode(err))

	out.Reset()
	err = runRepair(t.Context(), repairOnly{reports: []core.RepairReport{short}, asked: &asked}, repairOpts{json: true}, "c2", &out)
	require.ErrorIs(t, err, core.ErrUnderReplicated)
	var got []core.RepairReport
	require.NoError(t, json.Unmarshal([]byte(out.String()), &got))
	require.Equal(t, []core.RepairReport{{Cid: "c2", Goal: 3, Live: []string{"p1"}, Added: []string{}, Dropped: []string{}}}, got)
}
