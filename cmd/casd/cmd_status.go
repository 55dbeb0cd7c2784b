package main

import (
	"bufio"
	"context"
	"fmt"
	"io"
	"time"

	"github.com/spf13/cobra"

	"github.com/casd/casd/core"
)

type statusOpts struct {
	json bool
}

func newStatusCmd(g *globalOpts) *cobra.Command {
	var o statusOpts
	c := &cobra.Command{
		Use:   "status CID",
		Short: "Show which peers hold a file",
		Long: `Show how many peers hold a complete copy of a file against the
replication goal: "<cid>: <n>/<goal> replicas", then one line per peer:
its ID and, on the owner's node once its repair loop checked the file,
the time of its last audit, of its last whole-tree audit and the end of
its lease. The owner answers from its last check ("last check: <time>");
another node that holds the file challenges each peer and lists only
those that prove holding it; a node that does not cannot check, and marks
the list "(unverified)".`,
		Args: cobra.ExactArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			return withBackend(cmd.Context(), g, func(b backend) error {
				return runStatus(cmd.Context(), b, o, args[0], cmd.OutOrStdout())
			})
		},
	}
	c.Flags().BoolVar(&o.json, "json", false, "print JSON {cid, goal, replicas, verified, lastCheck, holders}")
	return c
}

func runStatus(ctx context.Context, b core.Network, o statusOpts, cid string, stdout io.Writer) error {
	st, err := b.Status(ctx, cid)
	if err != nil {
		return fmt.Errorf("status %s: %w", cid, err)
	}
	if o.json {
		v := *st
		v.Replicas = orEmpty(v.Replicas)
		v.Holders = orEmpty(v.Holders)
		return writeJSON(stdout, v)
	}
	w := bufio.NewWriter(stdout)
	fmt.Fprintf(w, "%s: %d/%d replicas", st.Cid, len(st.Replicas), st.Goal)
	if !st.Verified && len(st.Replicas) > 0 {
		fmt.Fprint(w, " (unverified)")
	}
	fmt.Fprintln(w)
	if !st.LastCheck.IsZero() {
		fmt.Fprintf(w, "last check: %s\n", stamp(st.LastCheck))
	}
	holders := make(map[string]core.HolderInfo, len(st.Holders))
	for _, h := range st.Holders {
		holders[h.ID] = h
	}
	for _, p := range st.Replicas {
		fmt.Fprint(w, p)
		if h := holders[p]; !h.LastAudit.IsZero() {
			fmt.Fprintf(w, " audited %s, tree %s, lease until %s",
				stamp(h.LastAudit), stamp(h.LastTreeAudit), stamp(h.LeaseExpires))
		}
		fmt.Fprintln(w)
	}
	return w.Flush()
}

// stamp prints a time of status in UTC to the second, "never" for zero.
func stamp(t time.Time) string {
	if t.IsZero() {
		return "never"
	}
	return t.UTC().Format(time.RFC3339)
}
