package api

import (
	"errors"
	"fmt"
	"io/fs"
	"net"
	"os"
	"syscall"
	"time"
)

// dialTimeout bounds connecting to the socket; bodies have no timeout.
const dialTimeout = 10 * time.Second

// ListenUnix listens on the unix socket at path, readable and writable by
// the owner only (mode 0600). A socket file that nobody answers on is stale
// (a daemon that was killed) and is removed first; if a live daemon answers,
// ListenUnix returns an error wrapping [ErrDaemonRunning]. A file at path
// that is not a socket is left alone and is an error. Closing the listener
// removes the socket file.
//
// The socket exists with the process's umask for the moment between bind
// and chmod; it belongs in the repo directory, whose mode is 0700.
func ListenUnix(path string) (net.Listener, error) {
	if err := removeStale(path); err != nil {
		return nil, err
	}
	l, err := net.Listen("unix", path)
	if err != nil {
		return nil, fmt.Errorf("api: listen on %s: %w", path, err)
	}
	if err := os.Chmod(path, 0o600); err != nil {
		return nil, errors.Join(fmt.Errorf("api: chmod %s: %w", path, err), l.Close())
	}
	return l, nil
}

// removeStale removes the socket at path unless a daemon answers on it.
func removeStale(path string) error {
	fi, err := os.Lstat(path)
	if errors.Is(err, fs.ErrNotExist) {
		return nil
	}
	if err != nil {
		return fmt.Errorf("api: stat socket: %w", err)
	}
	if fi.Mode().Type() != fs.ModeSocket {
		return fmt.Errorf("api: %s exists and is not a socket", path)
	}
	conn, err := net.DialTimeout("unix", path, dialTimeout)
	if err == nil {
		_ = conn.Close()
		return fmt.Errorf("%w on %s", ErrDaemonRunning, path)
	}
	if !errors.Is(err, syscall.ECONNREFUSED) {
		return fmt.Errorf("api: probe socket: %w", err)
	}
	log.Infow("removing stale API socket", "path", path)
	if err := os.Remove(path); err != nil && !errors.Is(err, fs.ErrNotExist) {
		return fmt.Errorf("api: remove stale socket: %w", err)
	}
	return nil
}

// isNoDaemon reports whether a dial error means nothing listens.
func isNoDaemon(err error) bool {
	return errors.Is(err, syscall.ECONNREFUSED) || errors.Is(err, fs.ErrNotExist)
}
