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

type lsOpts struct {
	json bool
}

func newLsCmd(g *globalOpts) *cobra.Command {
	var o lsOpts
	c := &cobra.Command{
		Use:   "ls",
		Short: "List this node's own files",
		Long: `List the files added on this node, one per line:
<cid> TAB <size> TAB <added, RFC 3339> TAB <name>.`,
		Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			return withBackend(cmd.Context(), g, func(b backend) error {
				return runLs(cmd.Context(), b, o, cmd.OutOrStdout())
			})
		},
	}
	c.Flags().BoolVar(&o.json, "json", false, "print a JSON array of {cid, name, size, added}")
	return c
}

func runLs(ctx context.Context, b core.Files, o lsOpts, stdout io.Writer) error {
	files, err := b.Ls(ctx)
	if err != nil {
		return fmt.Errorf("ls: %w", err)
	}
	if o.json {
		return writeJSON(stdout, orEmpty(files))
	}
	w := bufio.NewWriter(stdout)
	for _, f := range files {
		fmt.Fprintf(w, "%s\t%d\t%s\t%s\n", f.Cid, f.Size, f.Added.Format(time.RFC3339), printable(f.Name))
	}
	return w.Flush()
}
