package main

import (
	"context"
	"fmt"
	"io"

	"github.com/spf13/cobra"

	"github.com/casd/casd/core"
)

func newShareCmd(g *globalOpts) *cobra.Command {
	return &cobra.Command{
		Use:   "share CID",
		Short: "Print a capability that lets anyone read a file",
		Long: `Print the capability of one of this node's files: a token (CID and file
key) that 'casd cat' and 'casd get' accept on any node. Whoever holds it can
read the file; keep it as secret as the file.`,
		Args: cobra.ExactArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			return withBackend(cmd.Context(), g, func(b backend) error {
				return runShare(cmd.Context(), b, args[0], cmd.OutOrStdout())
			})
		},
	}
}

func runShare(ctx context.Context, b core.Files, cid string, stdout io.Writer) error {
	capability, err := b.Share(ctx, cid)
	if err != nil {
		return err // the node names the operation and the CID
	}
	_, err = fmt.Fprintln(stdout, capability)
	return err
}
