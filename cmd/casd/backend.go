package main

import (
	"context"
	"errors"
	"fmt"
	"io"
	"os"
	"time"

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

// Bounds of a command's wait for a daemon that holds the repo lock but does
// not answer on its API socket yet (or any more).
const (
	// daemonStartWait is how long a command waits. A daemon takes the lock
	// first and creates its API socket last; in between it may wait up to
	// defaultLockWait (10s) for a lock held by another command (its marker
	// is written before that wait), then starts its network, whose
	// bootstrap dials are bounded at 15s, before it listens. 30s covers
	// both with a margin for opening the store and the host; a daemon that
	// takes longer is stuck, and the command says so rather than hang.
	daemonStartWait = 30 * time.Second
	// waitNotice is how long a wait goes unmentioned: a daemon usually
	// starts in well under a second.
	waitNotice = time.Second
)

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
// A lock held by a daemon that is starting or stopping (see
// [config.Repo.DaemonPID]) is waited for, up to daemonStartWait, until
// either its API answers or the lock is free; see awaitDaemon.
//
// Errors: no repo or a newer one, a lock held by another offline command,
// and a daemon that holds the lock but did not start serving in time, are
// of kind busy.
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
		return awaitDaemon(ctx, repo, err, g.errOut())
	}
	if err != nil {
		return nil, nil, err
	}
	return openOffline(ctx, repo, release)
}

// openOffline opens the repo as an offline node under the lock that
// release releases.
func openOffline(ctx context.Context, repo *config.Repo, release func() error) (backend, func() error, error) {
	n, err := node.Open(ctx, repo, node.Options{AgentVersion: agentVersion()})
	if err != nil {
		return nil, nil, errors.Join(fmt.Errorf("open repo %s: %w", repo.Path, err), release())
	}
	log.Debugw("opened the repo offline", "repo", repo.Path)
	return n, func() error { return errors.Join(n.Close(), release()) }, nil
}

// awaitDaemon is openBackend's answer to a repo lock that another process
// holds (lockErr). If the daemon marker names a live daemon, that daemon
// is starting (it creates its API socket last) or stopping (it closes its
// API first), so awaitDaemon polls, with a short backoff and for at most
// daemonStartWait, until its API answers (it returns the client) or the
// lock is free (it opens the repo offline). Once it waits it keeps waiting
// until one of those or the deadline, whatever the marker says then: the
// daemon removes its marker just before it releases the lock.
//
// Without a daemon marker the holder is another offline command, which may
// hold the lock for minutes: awaitDaemon returns lockErr at once, as does
// a command that runs two commands on one repo at a time.
//
// A wait longer than waitNotice is said once on stderr.
func awaitDaemon(ctx context.Context, repo *config.Repo, lockErr error, stderr io.Writer) (backend, func() error, error) {
	pid, ok := repo.DaemonPID()
	// A daemon may have come up since we dialled: its API socket is
	// created after it takes the lock.
	if c, closeFn, err := dialDaemon(ctx, repo.APISocketPath()); err == nil {
		return c, closeFn, nil
	} else if !errors.Is(err, errNoDaemon) {
		return nil, nil, err
	}
	if !ok {
		return nil, nil, lockErr
	}
	log.Debugw("waiting for the daemon", "pid", pid, "repo", repo.Path)
	start := time.Now()
	noticed := false
	var delay backoff
	for {
		if !noticed && time.Since(start) >= waitNotice {
			fmt.Fprintf(stderr, "casd: waiting for the daemon (pid %d) to start, up to %v...\n", pid, daemonStartWait)
			noticed = true
		}
		if time.Since(start) >= daemonStartWait {
			return nil, nil, fmt.Errorf("the daemon (pid %d) holds the repo lock but its API did not answer within %v: %w",
				pid, daemonStartWait, lockErr)
		}
		if err := delay.wait(ctx); err != nil {
			return nil, nil, fmt.Errorf("wait for the daemon (pid %d): %w", pid, err)
		}
		if c, closeFn, err := dialDaemon(ctx, repo.APISocketPath()); err == nil {
			log.Debugw("using the daemon", "socket", repo.APISocketPath(), "waited", time.Since(start))
			return c, closeFn, nil
		} else if !errors.Is(err, errNoDaemon) {
			return nil, nil, err
		}
		release, err := repo.Lock()
		if err == nil {
			return openOffline(ctx, repo, release)
		}
		if !errors.Is(err, config.ErrRepoLocked) {
			return nil, nil, err
		}
		lockErr = err
	}
}

// Bounds of backoff.
const (
	minPoll = 10 * time.Millisecond
	maxPoll = 200 * time.Millisecond
)

// backoff is the delay between two polls of a condition that another
// process brings about (a lock released, a socket answering). It starts at
// minPoll, so that a lock held for milliseconds costs milliseconds, and
// doubles up to maxPoll, so that a long wait polls five times a second.
// The zero value is ready to use.
type backoff struct {
	next time.Duration
}

// wait sleeps for the next delay, or returns ctx's error if ctx ends first.
func (b *backoff) wait(ctx context.Context) error {
	if b.next == 0 {
		b.next = minPoll
	}
	t := time.NewTimer(b.next)
	defer t.Stop()
	b.next = min(2*b.next, maxPoll)
	select {
	case <-ctx.Done():
		return ctx.Err()
	case <-t.C:
		return nil
	}
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

// errOut is where g's command prints diagnostics: the stderr run was given.
func (g *globalOpts) errOut() io.Writer {
	if g.stderr == nil {
		return os.Stderr
	}
	return g.stderr
}
