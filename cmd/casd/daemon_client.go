package main

import (
	"context"

	"github.com/casd/casd/api"
)

var _ backend = (*api.Client)(nil)

// errNoDaemon is wrapped by dialDaemon's error when no daemon serves the
// socket (no socket file, or a stale one).
var errNoDaemon = api.ErrNoDaemon

// dialDaemon connects to the daemon serving the API on socketPath and
// returns its client and the function that closes it.
func dialDaemon(ctx context.Context, socketPath string) (backend, func() error, error) {
	c, err := api.Dial(ctx, socketPath)
	if err != nil {
		return nil, nil, err
	}
	return c, c.Close, nil
}
