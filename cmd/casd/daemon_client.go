package main

import (
	"context"
	"errors"
)

// errNoDaemon is returned by dialDaemon when no daemon serves the socket.
var errNoDaemon = errors.New("no daemon is running")

// dialDaemon connects to the daemon serving the API on socketPath. It
// returns an error wrapping errNoDaemon when none runs there.
//
// TODO(api): the api package's client is not available yet; until it is,
// every command opens the repo offline (and fails with "repo is locked"
// while a daemon holds it).
func dialDaemon(ctx context.Context, socketPath string) (backend, func() error, error) {
	return nil, nil, errNoDaemon
}
