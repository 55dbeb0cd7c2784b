package main

import (
	"bufio"
	"context"
	"errors"
	"fmt"
	"io"

	"github.com/spf13/cobra"

	"github.com/casd/casd/core"
)

func newRefsCmd(g *globalOpts) *cobra.Command {
	return &cobra.Command{
		Use:   "refs CID|CAPABILITY|-|@FILE",
		Short: "List the CIDs of all blocks of a file",
		Long:  `Print the CIDs of every block of a file, root first, one per line.`,
		Args:  cobra.ExactArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			ref, err := refArg(args[0], cmd.InOrStdin())
			if err != nil {
				return err
			}
			return withBackend(cmd.Context(), g, func(b backend) error {
				return runRefs(cmd.Context(), b, ref, cmd.OutOrStdout())
			})
		},
	}
}

func runRefs(ctx context.Context, b core.Files, ref string, stdout io.Writer) error {
	w := bufio.NewWriter(stdout)
	err := b.Refs(ctx, ref, func(cid string) error {
		_, err := fmt.Fprintln(w, cid)
		return err
	})
	if err = errors.Join(err, w.Flush()); err != nil {
		return fmt.Errorf("refs %s: %w", ref, err)
	}
	return nil
}
