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

func newCatCmd(g *globalOpts) *cobra.Command {
	return &cobra.Command{
		Use:   "cat CID|CAPABILITY|-|@FILE",
		Short: "Write a file's bytes to stdout",
		Long: `Write the bytes of a file to stdout. A CID opens this node's own files
(or those of the owner whose keys were restored); anyone else's file needs
its capability (see 'casd share'). Every block is verified before a byte of
it is written.

A capability given as - is read from stdin, and as @FILE from FILE, so that
it does not show in the process list.`,
		Args: cobra.ExactArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			ref, err := refArg(args[0], cmd.InOrStdin())
			if err != nil {
				return err
			}
			return withBackend(cmd.Context(), g, func(b backend) error {
				return runCat(cmd.Context(), b, ref, cmd.OutOrStdout())
			})
		},
	}
}

func runCat(ctx context.Context, b core.Files, ref string, stdout io.Writer) error {
	w := bufio.NewWriterSize(stdout, 256<<10)
	err := b.Cat(ctx, ref, func(core.FileInfo) (io.Writer, error) { return w, nil })
	// Flush what was verified and written even on a late failure: the
	// error line on stderr and the exit code say the output is short.
	err = errors.Join(err, w.Flush())
	if err != nil {
		return fmt.Errorf("cat %s: %w", ref, err)
	}
	return nil
}
