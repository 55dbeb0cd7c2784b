//go:build unix

package api

import (
	"errors"
	"fmt"
	"io/fs"
	"net"
	"os"
	"path/filepath"
	"sync"
	"syscall"
)

// listen binds the socket in a fresh directory of mode 0700 beside path
// (so that no one else can look it up), makes it 0600, and renames it to
// path: at path it is never reachable by anyone else, whatever the umask.
func listen(path string) (net.Listener, error) {
	dir, err := os.MkdirTemp(filepath.Dir(path), ".s") // 0700; short, for the 104-byte limit of socket paths
	if err != nil {
		return nil, fmt.Errorf("api: private directory for the socket: %w", err)
	}
	defer os.Remove(dir) // empty once the socket is renamed out, or removed
	bound := filepath.Join(dir, "s")
	l, err := net.ListenUnix("unix", &net.UnixAddr{Name: bound, Net: "unix"})
	if err != nil {
		return nil, fmt.Errorf("api: listen on %s: %w", path, err)
	}
	l.SetUnlinkOnClose(false) // it moves to path, which Close removes
	afterBind(bound)
	if err := os.Chmod(bound, 0o600); err != nil {
		return nil, errors.Join(fmt.Errorf("api: chmod %s: %w", bound, err), l.Close(), os.Remove(bound))
	}
	if err := os.Rename(bound, path); err != nil {
		return nil, errors.Join(fmt.Errorf("api: move the socket to %s: %w", path, err), l.Close(), os.Remove(bound))
	}
	return &socketListener{UnixListener: l, path: path}, nil
}

// socketListener is a unix listener whose socket file was renamed to path:
// Addr names path, and Close removes it.
type socketListener struct {
	*net.UnixListener
	path string
	once sync.Once
}

func (l *socketListener) Addr() net.Addr { return &net.UnixAddr{Name: l.path, Net: "unix"} }

func (l *socketListener) Close() error {
	err := l.UnixListener.Close()
	l.once.Do(func() {
		if rerr := os.Remove(l.path); rerr != nil && !errors.Is(rerr, fs.ErrNotExist) {
			err = errors.Join(err, fmt.Errorf("api: remove socket: %w", rerr))
		}
	})
	return err
}

// isConnRefused reports whether a dial error says that nobody listens on
// an existing socket file.
func isConnRefused(err error) bool { return errors.Is(err, syscall.ECONNREFUSED) }
