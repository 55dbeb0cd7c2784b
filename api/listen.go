package api

import (
	"errors"
	"fmt"
	"io/fs"
	"net"
	"os"
	"time"
)

// dialTimeout bounds connecting to the socket; bodies have no timeout.
const dialTimeout = 10 * time.Second

// ListenUnix listens on the unix socket at path, which belongs in the repo
// directory. On unix the socket is readable and writable by the owner only
// (mode 0600), and nobody else can reach it at any moment: it is bound in
// a fresh directory of mode 0700 beside path, made 0600 there, then renamed
// to path, so the process's umask never shows (the umask is per process,
// and changing it around the bind would change it for every file that the
// node's other goroutines create meanwhile). On Windows (10 and later, which have AF_UNIX) a socket file has
// no mode bits: who may connect is decided by its ACL, inherited from the
// repo directory, which is in the user's profile by default and so open to
// that user (and to SYSTEM and administrators) only.
//
// A socket file that nobody answers on is stale (a daemon that was killed)
// and is removed first; if a live daemon answers, ListenUnix returns an
// error wrapping [ErrDaemonRunning]. A file at path that is not a socket is
// left alone and is an error. Closing the listener removes the socket file.
func ListenUnix(path string) (net.Listener, error) {
	if err := removeStale(path); err != nil {
		return nil, err
	}
	return listen(path)
}

// afterBind is called with the path that the socket was bound to, before
// its mode is restricted: a test looks for a window there.
var afterBind = func(string) {}

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
	if !isConnRefused(err) {
		return fmt.Errorf("api: probe socket: %w", err)
	}
	log.Infow("removing stale API socket", "path", path)
	if err := os.Remove(path); err != nil && !errors.Is(err, fs.ErrNotExist) {
		return fmt.Errorf("api: remove stale socket: %w", err)
	}
	return nil
}

// isNoDaemon reports whether a dial error means nothing listens: the
// socket file is stale or missing.
func isNoDaemon(err error) bool {
	return isConnRefused(err) || errors.Is(err, fs.ErrNotExist) || socketMissing(err)
}

// socketMissing reports whether err is from dialling a unix socket whose
// file does not exist, whatever error the platform gives for that.
func socketMissing(err error) bool {
	var oe *net.OpError
	if !errors.As(err, &oe) {
		return false
	}
	a, ok := oe.Addr.(*net.UnixAddr)
	if !ok || a.Name == "" {
		return false
	}
	_, serr := os.Lstat(a.Name)
	return errors.Is(serr, fs.ErrNotExist)
}
