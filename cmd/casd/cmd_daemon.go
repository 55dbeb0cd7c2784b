package main

import (
	"context"
	"errors"
	"fmt"
	"io"
	"os"
	"time"

	logging "github.com/ipfs/go-log/v2"
	"github.com/spf13/cobra"

	"github.com/casd/casd/api"
	"github.com/casd/casd/node"
)

// shutdownTimeout bounds how long the daemon waits for API requests in
// flight when it stops.
const shutdownTimeout = 10 * time.Second

func newDaemonCmd(g *globalOpts) *cobra.Command {
	return &cobra.Command{
		Use:   "daemon",
		Short: "Run the node: libp2p host, DHT, replication and the local API",
		Long: `Run the node of the repo until SIGINT or SIGTERM.

The daemon takes the repo lock, starts the libp2p host (TCP, QUIC, WebSocket)
and the private DHT, serves /cas/store/1.0 and /cas/get/1.0 to peers, and the
local HTTP API on the unix socket api.sock inside the repo. Other casd
commands then go through it. Logs go to stderr (GOLOG_LOG_LEVEL sets the level).`,
		Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			g.started = true
			return runDaemon(cmd.Context(), g, cmd.OutOrStdout())
		},
	}
}

// runDaemon runs the node until ctx is cancelled, then stops it in order:
// the API first, then the network, then the store.
func runDaemon(ctx context.Context, g *globalOpts, out io.Writer) (err error) {
	if os.Getenv("GOLOG_LOG_LEVEL") == "" {
		_ = logging.SetLogLevelRegex("casd/.*", "info") // the pattern is constant and valid
	}
	repo, err := openRepo(g)
	if err != nil {
		return err
	}
	release, err := repo.Lock()
	if err != nil {
		return err
	}
	defer func() { err = errors.Join(err, release()) }()

	n, err := node.Open(ctx, repo, node.Options{Online: true, AgentVersion: agentVersion()})
	if err != nil {
		return fmt.Errorf("start node: %w", err)
	}
	defer func() { err = errors.Join(err, n.Close()) }()

	l, err := api.ListenUnix(repo.APISocketPath())
	if err != nil {
		return fmt.Errorf("listen on %s: %w", repo.APISocketPath(), err)
	}
	srv := api.NewServer(n)
	served := make(chan error, 1)
	go func() { served <- srv.Serve(l) }()

	if err := printReady(ctx, n, repo.APISocketPath(), out); err != nil {
		return errors.Join(err, stopServer(srv, served))
	}
	select {
	case <-ctx.Done():
		fmt.Fprintln(out, "shutting down")
	case err := <-served:
		return fmt.Errorf("API server stopped: %w", err)
	}
	return stopServer(srv, served)
}

// stopServer shuts the API down and waits for its Serve to return.
func stopServer(srv *api.Server, served <-chan error) error {
	ctx, cancel := context.WithTimeout(context.Background(), shutdownTimeout)
	defer cancel()
	err := srv.Shutdown(ctx)
	return errors.Join(err, <-served) // Serve returns nil after Shutdown
}

// printReady prints the peer ID and addresses, then "daemon is ready".
func printReady(ctx context.Context, n *node.Node, socket string, out io.Writer) error {
	id, err := n.ID(ctx)
	if err != nil {
		return err
	}
	fmt.Fprintf(out, "peer identity: %s\n", id.ID)
	for _, a := range id.Addrs {
		fmt.Fprintf(out, "swarm listening on %s\n", a)
	}
	fmt.Fprintf(out, "API listening on %s\n", socket)
	fmt.Fprintln(out, "daemon is ready")
	return nil
}
