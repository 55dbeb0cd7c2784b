package main

import (
	"context"
	"strings"
	"testing"

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
