package main

import (
	"bufio"
	"context"
	"fmt"
	"io"

	"github.com/spf13/cobra"

	"github.com/casd/casd/core"
)

type repairOpts struct {
	json bool
}

func newRepairCmd(g *globalOpts) *cobra.Command {
	var o repairOpts
	c := &cobra.Command{
		Use:   "repair [CID]",
		Short: "Check a file's replicas now and replace the missing ones",
		Long: `Check the replicas of one of this node's files (of every one without a
CID) now, as the daemon does every Replication.CheckInterval: challenge
each replica, audit whole trees that are due, renew leases, and place the
file on new peers where fewer than the goal passed. Prints one line per
file: "<cid> <live>/<goal> replicas (+<added> new)". Exits 1 if a file is
left short of its goal.

On a node restored from the owner's key file ('casd init --restore'),
repair CID first fetches the file from peers and keeps it as its own.
Needs the daemon.`,
		Args: cobra.MaximumNArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			cid := ""
			if len(args) == 1 {
				cid = args[0]
			}
			return withBackend(cmd.Context(), g, func(b backend) error {
				return runRepair(cmd.Context(), b, o, cid, cmd.OutOrStdout())
			})
		},
	}
	c.Flags().BoolVar(&o.json, "json", false, "print JSON [{cid, goal, live, added, dropped}]")
	return c
}

func runRepair(ctx context.Context, b core.Network, o repairOpts, cid string, stdout io.Writer) error {
	reports, err := b.Repair(ctx, cid)
	if err != nil {
		if cid == "" {
			return fmt.Errorf("repair: %w", err)
		}
		return err // the node names the operation and the CID
	}
	if err := printRepair(stdout, o, reports); err != nil {
		return err
	}
	for _, r := range reports {
		if len(r.Live) < r.Goal {
			return fmt.Errorf("repair %s: %w: reached %d of %d replicas; the daemon keeps trying",
				r.Cid, core.ErrUnderReplicated, len(r.Live), r.Goal)
		}
	}
	return nil
}

func printRepair(stdout io.Writer, o repairOpts, reports []core.RepairReport) error {
	if o.json {
		for i := range reports {
			r := &reports[i]
			r.Live, r.Added, r.Dropped = orEmpty(r.Live), orEmpty(r.Added), orEmpty(r.Dropped)
		}
		return writeJSON(stdout, orEmpty(reports))
	}
	w := bufio.NewWriter(stdout)
	for _, r := range reports {
		fmt.Fprintf(w, "%s %d/%d replicas (+%d new)\n", r.Cid, len(r.Live), r.Goal, len(r.Added))
	}
	return w.Flush()
}
