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
	"github.com/casd/casd/config"
	"github.com/casd/casd/node"
)

// shutdownTimeout bounds how long the daemon waits for API requests in
// flight when it stops.
const shutdownTimeout = 10 * time.Second

// defaultLockWait is how long the daemon waits, by default, for a repo lock
// that another casd command holds: commands such as an offline `casd id`
// hold it for milliseconds, so a daemon started at the same time as one
// should not fail.
const defaultLockWait = 10 * time.Second

type daemonOpts struct {
	lockWait time.Duration // --lock-wait
}

func newDaemonCmd(g *globalOpts) *cobra.Command {
	o := daemonOpts{lockWait: defaultLockWait}
	c := &cobra.Command{
		Use:   "daemon",
		Short: "Run the node: libp2p host, DHT, replication and the local API",
		Long: `Run the node of the repo until SIGINT or SIGTERM.

The daemon takes the repo lock, starts the libp2p host (TCP, QUIC, WebSocket)
and the private DHT, serves /cas/store/1.0 and /cas/get/1.0 to peers, and the
local HTTP API on the unix socket api.sock inside the repo. Other casd
commands then go through it. Logs go to stderr (GOLOG_LOG_LEVEL sets the level).

If another casd command holds the repo lock, the daemon says so on stderr and
waits for it, up to --lock-wait (10s), then fails with exit code 5. It fails
at once if another daemon already serves the repo. A command run while the
daemon starts waits for its API (up to 30s) instead of failing.`,
		Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			g.started = true
			return runDaemon(cmd.Context(), g, o, cmd.OutOrStdout(), cmd.ErrOrStderr())
		},
	}
	c.Flags().DurationVar(&o.lockWait, "lock-wait", defaultLockWait,
		"how long to wait for a repo lock held by another casd command (0: do not wait)")
	return c
}

// runDaemon runs the node until ctx is cancelled, then stops it in order:
// the API first, then the network, then the store.
func runDaemon(ctx context.Context, g *globalOpts, o daemonOpts, out, stderr io.Writer) (err error) {
	if os.Getenv("GOLOG_LOG_LEVEL") == "" {
		_ = logging.SetLogLevelRegex("casd/.*", "info") // the pattern is constant and valid
	}
	if o.lockWait < 0 {
		return badInput(fmt.Errorf("daemon: --lock-wait %v is negative", o.lockWait))
	}
	repo, err := openRepo(g)
	if err != nil {
		return err
	}
	release, err := lockForDaemon(ctx, repo, o.lockWait, stderr)
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

// lockForDaemon takes the repo lock for the daemon and marks the repo as
// the daemon's (see [config.Repo.MarkDaemon]); release removes the mark,
// then unlocks.
//
// The mark comes first and the lock second, so that a command that finds
// the lock held always finds the mark too and waits for this daemon's API
// instead of failing. A lock held by another command is waited for, polling
// with a short backoff, for up to wait (said once on stderr), and ctx ends
// the wait. A lock held by a daemon that serves its API is not: that one
// runs until stopped. If the lock is still held at the end, the error is
// Lock's, of kind busy.
func lockForDaemon(ctx context.Context, repo *config.Repo, wait time.Duration, stderr io.Writer) (release func() error, err error) {
	marked, merr := repo.MarkDaemon(false)
	if merr != nil {
		// Only commands' patience depends on the mark, not the lock.
		log.Warnw("mark the repo as the daemon's", "err", merr)
	}
	defer func() {
		if err != nil {
			err = errors.Join(err, repo.UnmarkDaemon())
		}
	}()
	start := time.Now()
	noticed := false
	var delay backoff
	for {
		unlock, lerr := repo.Lock()
		if lerr == nil {
			// The lock holder is the repo's daemon: its pid goes in the
			// mark even if another daemon that lost the race wrote it.
			if _, merr := repo.MarkDaemon(true); merr != nil {
				log.Warnw("mark the repo as the daemon's", "err", merr)
			}
			// Unmark while still holding the lock: only a lock holder
			// overwrites a live daemon's mark, so the mark read and
			// removed is still this daemon's.
			return func() error { return errors.Join(repo.UnmarkDaemon(), unlock()) }, nil
		}
		if !errors.Is(lerr, config.ErrRepoLocked) || time.Since(start) >= wait || daemonServes(ctx, repo) {
			return nil, lerr
		}
		if !noticed {
			holder := "another casd command"
			if pid, ok := repo.DaemonPID(); ok {
				holder = fmt.Sprintf("another casd daemon (pid %d), starting or stopping", pid)
			}
			fmt.Fprintf(stderr, "casd daemon: repo locked by %s; waiting up to %v\n", holder, wait)
			noticed = true
		}
		if err := delay.wait(ctx); err != nil {
			return nil, fmt.Errorf("wait for the repo lock: %w", err)
		}
		if !marked {
			// The daemon named in the mark may have gone since.
			marked, _ = repo.MarkDaemon(false)
		}
	}
}

// daemonServes reports whether a daemon answers on the repo's API socket.
func daemonServes(ctx context.Context, repo *config.Repo) bool {
	_, closeFn, err := dialDaemon(ctx, repo.APISocketPath())
	if err != nil {
		return false
	}
	_ = closeFn()
	return true
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
