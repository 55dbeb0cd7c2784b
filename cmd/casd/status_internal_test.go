package main

import (
	"context"
	"encoding/json"
	"strings"
	"testing"
	"time"

	"github.com/stretchr/testify/require"

	"github.com/casd/casd/core"
)

// statusOnly is a core.Network that answers Status only.
type statusOnly struct {
	core.Network
	st core.StatusInfo
}

func (s statusOnly) Status(context.Context, string) (*core.StatusInfo, error) { return &s.st, nil }

// TestStatusMarksUnverifiedClaims: status says when its list of replicas
// is the peers' claims, not checked by challenges (the node does not hold
// the file), and says nothing when every replica proved it or none is
// listed; --json carries the same as "verified".
func TestStatusMarksUnverifiedClaims(t *testing.T) {
	cases := []struct {
		name string
		st   core.StatusInfo
		head string
	}{
		{"verified", core.StatusInfo{Cid: "c", Goal: 3, Replicas: []string{"p1", "p2"}, Verified: true}, "c: 2/3 replicas\n"},
		{"unverified", core.StatusInfo{Cid: "c", Goal: 3, Replicas: []string{"p1"}}, "c: 1/3 replicas (unverified)\n"},
		{"none", core.StatusInfo{Cid: "c", Goal: 3}, "c: 0/3 replicas\n"},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			var out strings.Builder
			require.NoError(t, runStatus(t.Context(), statusOnly{st: tc.st}, statusOpts{}, "c", &out))
			require.True(t, strings.HasPrefix(out.String(), tc.head), "output %q", out.String())
			out.Reset()
			require.NoError(t, runStatus(t.Context(), statusOnly{st: tc.st}, statusOpts{json: true}, "c", &out))
			want := `"verified":false`
			if tc.st.Verified {
				want = `"verified":true`
			}
			require.Contains(t, strings.ReplaceAll(out.String(), " ", ""), want)
		})
	}
}

// TestStatusShowsAudits: on the owner's node, status prints when the
// repair loop last checked the file, and per holder its last audits and
// lease; --json carries them, and holders is [] rather than null.
func TestStatusShowsAudits(t *testing.T) {
	at := time.Date(2026, 12, 1, 10, 0, 0, 0, time.UTC)
	st := core.StatusInfo{Cid: "c", Goal: 2, Replicas: []string{"p1", "p2"}, Verified: true, LastCheck: at,
		Holders: []core.HolderInfo{
			{ID: "p1", Verified: true, LastAudit: at, LastTreeAudit: at.Add(-time.Hour), LeaseExpires: at.Add(720 * time.Hour)},
			{ID: "p2", Verified: true, LastAudit: at, LeaseExpires: at.Add(720 * time.Hour)},
		}}
	var out strings.Builder
	require.NoError(t, runStatus(t.Context(), statusOnly{st: st}, statusOpts{}, "c", &out))
	require.Equal(t, "c: 2/2 replicas\n"+
		"last check: 2026-12-01T10:00:00Z\n"+
		"p1 audited 2026-12-01T10:00:00Z, tree 2026-12-01T09:00:00Z, lease until 2026-12-31T10:00:00Z\n"+
		"p2 audited 2026-12-01T10:00:00Z, tree never, lease until 2026-12-31T10:00:00Z\n", out.String())

	out.Reset()
	require.NoError(t, runStatus(t.Context(), statusOnly{st: st}, statusOpts{json: true}, "c", &out))
	var got core.StatusInfo
	require.NoError(t, json.Unmarshal([]byte(out.String()), &got))
	require.Equal(t, st, got)

	out.Reset()
	require.NoError(t, runStatus(t.Context(), statusOnly{st: core.StatusInfo{Cid: "c", Goal: 1}}, statusOpts{json: true}, "c", &out))
	require.Contains(t, strings.ReplaceAll(out.String(), " ", ""), `"holders":[]`)
	require.NotContains(t, out.String(), "lastCheck", "no check: the field is left out")
}
