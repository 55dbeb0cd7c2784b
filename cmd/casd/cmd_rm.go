package main

import (
	"context"
	"fmt"
	"io"

	"github.com/spf13/cobra"

	"github.com/casd/casd/core"
	"github.com/casd/casd/node"
)

func newRmCmd(g *globalOpts) *cobra.Command {
	return &cobra.Command{
		Use:   "rm CID",
		Short: "Delete one of this node's files, here and on its replicas",
		Long: `Delete one of this node's files: unpin it, ask every peer known to hold
a replica to drop it (a signed removal), and free its blocks. Without the
daemon the file is deleted locally only, and its replicas free it when
their leases end.`,
		Args: cobra.ExactArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			return withBackend(cmd.Context(), g, func(b backend) error {
				return runRm(cmd.Context(), b, args[0], g.errOut())
			})
		},
	}
}

// runRm removes cid; an offline node says on stderr what happens to the
// replicas.
func runRm(ctx context.Context, b core.Files, cid string, stderr io.Writer) error {
	if err := b.Remove(ctx, cid); err != nil {
		return err // the node names the operation and the CID
	}
	if n, ok := b.(*node.Node); ok && !n.Online() {
		_, err := fmt.Fprintf(stderr, "rm %s: removed locally; without the daemon no replica was told, and each frees it when its lease ends\n", cid)
		return err
	}
	return nil
}
