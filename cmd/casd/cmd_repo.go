package main

import (
	"bufio"
	"context"
	"fmt"
	"io"

	"github.com/spf13/cobra"

	"github.com/casd/casd/core"
)

func newRepoCmd(g *globalOpts) *cobra.Command {
	return newGroupCmd("repo", "Verify, garbage-collect and inspect the repo",
		newRepoVerifyCmd(g),
		newRepoGCCmd(g),
		newRepoStatCmd(g),
	)
}

func newRepoVerifyCmd(g *globalOpts) *cobra.Command {
	return &cobra.Command{
		Use:   "verify",
		Short: "Check every block against its CID",
		Long: `Check that every block the repo knows of is present and matches its CID.
Prints "verified <n> blocks" when all are good; otherwise prints one line per
bad block, "corrupt <cid>" or "missing <cid>", and exits with code 4.`,
		Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			return withBackend(cmd.Context(), g, func(b backend) error {
				return runRepoVerify(cmd.Context(), b, cmd.OutOrStdout())
			})
		},
	}
}

func runRepoVerify(ctx context.Context, b core.Repo, stdout io.Writer) error {
	rep, err := b.RepoVerify(ctx)
	if err != nil {
		return fmt.Errorf("repo verify: %w", err)
	}
	if len(rep.Corrupt) == 0 && len(rep.Missing) == 0 {
		_, err := fmt.Fprintf(stdout, "verified %d blocks\n", rep.Checked)
		return err
	}
	w := bufio.NewWriter(stdout)
	for _, c := range rep.Corrupt {
		fmt.Fprintf(w, "corrupt %s\n", c)
	}
	for _, c := range rep.Missing {
		fmt.Fprintf(w, "missing %s\n", c)
	}
	if err := w.Flush(); err != nil {
		return err
	}
	return integrityError(fmt.Errorf("repo verify: %d corrupt, %d missing blocks", len(rep.Corrupt), len(rep.Missing)))
}

func newRepoGCCmd(g *globalOpts) *cobra.Command {
	return &cobra.Command{
		Use:   "gc",
		Short: "Remove blocks that no pin holds",
		Args:  cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			return withBackend(cmd.Context(), g, func(b backend) error {
				return runRepoGC(cmd.Context(), b, cmd.OutOrStdout())
			})
		},
	}
}

func runRepoGC(ctx context.Context, b core.Repo, stdout io.Writer) error {
	res, err := b.RepoGC(ctx)
	if err != nil {
		return fmt.Errorf("repo gc: %w", err)
	}
	_, err = fmt.Fprintf(stdout, "removed %d blocks (%d bytes)\n", res.Removed, res.Freed)
	return err
}

type repoStatOpts struct {
	json bool
}

func newRepoStatCmd(g *globalOpts) *cobra.Command {
	var o repoStatOpts
	c := &cobra.Command{
		Use:   "stat",
		Short: "Print the repo's size and counts",
		Long: `Print the repo's size and counts, and how its bytes divide: own (the
node's own files), offered (replicas held for other owners, capped by
Storage.Quota), cached (the rest: blocks that no such pin keeps), and what
is left of the quota (free to offer). Each block counts once, own first.`,
		Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			return withBackend(cmd.Context(), g, func(b backend) error {
				return runRepoStat(cmd.Context(), b, o, cmd.OutOrStdout())
			})
		},
	}
	c.Flags().BoolVar(&o.json, "json", false, "print JSON {path, version, blocks, bytes, pins, files, own, offered, cached, quota, freeToOffer}")
	return c
}

func runRepoStat(ctx context.Context, b core.Repo, o repoStatOpts, stdout io.Writer) error {
	st, err := b.RepoStat(ctx)
	if err != nil {
		return fmt.Errorf("repo stat: %w", err)
	}
	if o.json {
		return writeJSON(stdout, st)
	}
	_, err = fmt.Fprintf(stdout, "path: %s\nversion: %d\nblocks: %d\nbytes: %d\npins: %d\nfiles: %d\n"+
		"own: %d\noffered: %d\ncached: %d\nquota: %d\nfree to offer: %d\n",
		st.Path, st.Version, st.Blocks, st.Bytes, st.Pins, st.Files,
		st.Own, st.Offered, st.Cached, st.Quota, st.FreeToOffer)
	return err
}
