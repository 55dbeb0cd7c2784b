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
		Short: "List the daemon's connected peers, or every peer it knows",
		Long: `List the peers the daemon is connected to, one per line: <peer id> <address>.
With --all, also every peer it knows an address of, connected or not.

With --json, a JSON array of objects, sorted by id:
  id          the peer ID
  addrs       its connections' addresses, else those known for it
  connected   whether the daemon is connected to it now
  sources     how the daemon learned of it: any of "dht", "gossip", "mdns",
              "bootstrap", "remembered", "inbound" (it connected to us);
              [] if it does not know
  last_seen   when the daemon last heard of it (RFC 3339): now for a
              connected peer, "0001-01-01T00:00:00Z" if never`,
		Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			return withBackend(cmd.Context(), g, func(b backend) error {
				return runPeers(cmd.Context(), b, o, cmd.OutOrStdout())
			})
		},
	}
	c.Flags().BoolVar(&o.all, "all", false, "list every known peer, connected or not")
	c.Flags().BoolVar(&o.json, "json", false, "print a JSON array of {id, addrs, connected, sources, last_seen}")
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
			peers[i].Sources = orEmpty(peers[i].Sources)
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
