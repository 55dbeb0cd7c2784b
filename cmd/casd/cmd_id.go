package main

import (
	"context"
	"fmt"
	"io"

	"github.com/spf13/cobra"

	"github.com/casd/casd/core"
)

type idOpts struct {
	json bool
}

func newIDCmd(g *globalOpts) *cobra.Command {
	var o idOpts
	c := &cobra.Command{
		Use:   "id",
		Short: "Print this node's peer ID",
		Long: `Print this node's peer ID; with --json also its addresses (none when the
daemon does not run), agent version and protocols.`,
		Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			return withBackend(cmd.Context(), g, func(b backend) error {
				return runID(cmd.Context(), b, o, cmd.OutOrStdout())
			})
		},
	}
	c.Flags().BoolVar(&o.json, "json", false, "print JSON {id, addrs, agentVersion, protocols}")
	return c
}

func runID(ctx context.Context, b core.Network, o idOpts, stdout io.Writer) error {
	info, err := b.ID(ctx)
	if err != nil {
		return fmt.Errorf("id: %w", err)
	}
	if o.json {
		v := *info
		v.Addrs = orEmpty(v.Addrs)
		v.Protocols = orEmpty(v.Protocols)
		return writeJSON(stdout, v)
	}
	_, err = fmt.Fprintln(stdout, info.ID)
	return err
}
