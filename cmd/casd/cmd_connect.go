package main

import (
	"context"
	"fmt"
	"io"

	"github.com/spf13/cobra"

	"github.com/casd/casd/core"
)

func newConnectCmd(g *globalOpts) *cobra.Command {
	return &cobra.Command{
		Use:   "connect MULTIADDR",
		Short: "Connect the daemon to a peer",
		Long: `Connect the running daemon to a peer by its multiaddr, which must end in
/p2p/<peer id> (relay addresses with /p2p-circuit work too).`,
		Example: `  casd connect /ip4/192.0.2.7/tcp/4001/p2p/12D3KooW...`,
		Args:    cobra.ExactArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			return withBackend(cmd.Context(), g, func(b backend) error {
				return runConnect(cmd.Context(), b, args[0], cmd.OutOrStdout())
			})
		},
	}
}

func runConnect(ctx context.Context, b core.Network, addr string, stdout io.Writer) error {
	if err := b.Connect(ctx, addr); err != nil {
		return fmt.Errorf("connect %s: %w", addr, err)
	}
	_, err := fmt.Fprintf(stdout, "connected %s\n", addr)
	return err
}
