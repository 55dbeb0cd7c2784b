package replicate

import (
	"testing"
	"time"

	"github.com/stretchr/testify/require"
)

// TestCheckTimeouts: a light audit gets auditTimeout, or half the check
// interval when checks are frequent, never less than minProbeTimeout; a
// tree audit gets 30 s plus the tree read at 4 MiB/s.
func TestCheckTimeouts(t *testing.T) {
	for _, tt := range []struct{ interval, want time.Duration }{
		{time.Hour, auditTimeout},
		{8 * time.Second, 4 * time.Second},
		{3 * time.Second, minProbeTimeout},
	} {
		r := &Replicator{cfg: Config{CheckInterval: tt.interval}}
		require.Equal(t, tt.want, r.probeTimeout(), "check interval %v", tt.interval)
	}
	require.Equal(t, treeAuditBase, treeAuditTimeout(0))
	require.Equal(t, treeAuditBase+16*time.Second, treeAuditTimeout(64<<20), "64 MiB at 4 MiB/s")
}
