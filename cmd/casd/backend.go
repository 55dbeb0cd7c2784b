package main

import (
	"context"
	"errors"
	"fmt"

	"github.com/casd/casd/config"
	"github.com/casd/casd/core"
	"github.com/casd/casd/node"
)

// backend is what the commands need from a node: the running daemon's API
// client or an offline [node.Node] opened by this process (both implement
// [core.Backend]). Both return errors that [core.KindOf] classifies the same
// way.
type backend = core.Backend

var _ backend = (*node.Node)(nil)

// openRepo resolves the repo directory of g and opens the repo, without
// taking its lock.
func openRepo(g *globalOpts) (*config.Repo, error) {
	dir, err := config.ResolvePath(g.repo)
	if err != nil {
		return nil, err
	}
	return config.Open(dir)
}

// openBackend returns the backend for the repo of g: the client of the
// repo's daemon if one answers on the API socket, else an offline node
// that holds the repo lock. closeFn releases the backend (the node, then the
// lock) and must be called once.
//
// Errors: no repo or a newer one, and a lock held by another process
// (a daemon that is starting, another offline command), are of kind busy.
func openBackend(ctx context.Context, g *globalOpts) (b backend, closeFn func() error, err error) {
	repo, err := openRepo(g)
	if err != nil {
		return nil, nil, err
	}
	if c, closeFn, err := dialDaemon(ctx, repo.APISocketPath()); err == nil {
		log.Debugw("using the daemon", "socket", repo.APISocketPath())
		return c, closeFn, nil
	} else if !errors.Is(err, errNoDaemon) {
		return nil, nil, err
	}

	release, err := repo.Lock()
	if errors.Is(err, config.ErrRepoLocked) {
		// A daemon may have come up since we dialled: its API socket is
		// created after it takes the lock.
		if c, closeFn, derr := dialDaemon(ctx, repo.APISocketPath()); derr == nil {
			return c, closeFn, nil
		}
	}
	if err != nil {
		return nil, nil, err
	}
	n, err := node.Open(ctx, repo, node.Options{AgentVersion: agentVersion()})
	if err != nil {
		return nil, nil, errors.Join(fmt.Errorf("open repo %s: %w", repo.Path, err), release())
	}
	log.Debugw("opened the repo offline", "repo", repo.Path)
	return n, func() error { return errors.Join(n.Close(), release()) }, nil
}

// withBackend runs fn with the backend of g and closes it afterwards; a
// failure to close is reported too.
func withBackend(ctx context.Context, g *globalOpts, fn func(b backend) error) (err error) {
	b, closeFn, err := openBackend(ctx, g)
	if err != nil {
		return err
	}
	defer func() { err = errors.Join(err, closeFn()) }()
	return fn(b)
}
