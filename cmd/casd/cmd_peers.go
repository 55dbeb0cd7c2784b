package main

import (
	"bufio"
	"context"
	"fmt"
	"io"

	"github.com/spf13/cobra"

	"github.com/casd/casd/core"
)

type peersOpts struct {
	all  bool
	json bool
}

func newPeersCmd(g *globalOpts) *cobra.Command {
	var o peersOpts
	c := &cobra.Command{
		Use:   "peers",
		Short: "List the daemon's connected peers",
		Long:  `List the peers the daemon is connected to, one per line: <peer id> <address>.`,
		Args:  cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			return withBackend(cmd.Context(), g, func(b backend) error {
				return runPeers(cmd.Context(), b, o, cmd.OutOrStdout())
			})
		},
	}
	c.Flags().BoolVar(&o.all, "all", false, "list every known peer, connected or not")
	c.Flags().BoolVar(&o.json, "json", false, "print a JSON array of {id, addrs, connected}")
	return c
}

func runPeers(ctx context.Context, b core.Network, o peersOpts, stdout io.Writer) error {
	peers, err := b.Peers(ctx, o.all)
	if err != nil {
		return fmt.Errorf("peers: %w", err)
	}
	if o.json {
		for i := range peers {
			peers[i].Addrs = orEmpty(peers[i].Addrs)
		}
		return writeJSON(stdout, orEmpty(peers))
	}
	w := bufio.NewWriter(stdout)
	for _, p := range peers {
		if len(p.Addrs) == 0 {
			fmt.Fprintln(w, p.ID)
			continue
		}
		fmt.Fprintf(w, "%s %s\n", p.ID, p.Addrs[0])
	}
	return w.Flush()
}
