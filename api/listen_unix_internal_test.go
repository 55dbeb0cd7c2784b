//go:build unix

package api

import (
	"fmt"
	"io/fs"
	"net"
	"os"
	"path/filepath"
	"syscall"
	"testing"

	"github.com/stretchr/testify/require"
)

// TestListenUnixNoWindow: with the most permissive umask (0) and a repo
// directory that others may enter (0755, as one made by hand), the socket
// is at no moment reachable by another user: between bind and chmod
// (where a socket bound at path would be 0777) it sits in a directory of
// mode 0700, and path appears only once it is 0600.
func TestListenUnixNoWindow(t *testing.T) {
	old := syscall.Umask(0)
	t.Cleanup(func() { syscall.Umask(old) })
	dir := t.TempDir()
	require.NoError(t, os.Chmod(dir, 0o755))
	path := filepath.Join(dir, "api.sock")
	var exposed []string
	afterBind = func(bound string) {
		sock, err := os.Lstat(bound)
		require.NoError(t, err)
		parent, err := os.Stat(filepath.Dir(bound))
		require.NoError(t, err)
		if sock.Mode().Perm()&0o066 != 0 && parent.Mode().Perm()&0o011 != 0 {
			exposed = append(exposed, fmt.Sprintf("%s is %v in a directory of %v", bound, sock.Mode().Perm(), parent.Mode().Perm()))
		}
		if fi, err := os.Lstat(path); err == nil && fi.Mode().Perm()&0o077 != 0 {
			exposed = append(exposed, fmt.Sprintf("%s is already there, %v", path, fi.Mode().Perm()))
		}
	}
	t.Cleanup(func() { afterBind = func(string) {} })

	l, err := ListenUnix(path)
	require.NoError(t, err)
	require.Empty(t, exposed, "the socket was reachable by others before its mode was restricted")
	fi, err := os.Lstat(path)
	require.NoError(t, err)
	require.Equal(t, fs.ModeSocket, fi.Mode().Type())
	require.Equal(t, fs.FileMode(0o600), fi.Mode().Perm())
	require.Equal(t, path, l.Addr().String())
	entries, err := os.ReadDir(dir)
	require.NoError(t, err)
	require.Len(t, entries, 1, "only the socket is left in the repo directory")

	accepted := make(chan error, 1)
	go func() {
		c, err := l.Accept()
		if err == nil {
			err = c.Close()
		}
		accepted <- err
	}()
	c, err := net.Dial("unix", path)
	require.NoError(t, err, "the renamed socket answers at path")
	require.NoError(t, c.Close())
	require.NoError(t, <-accepted)
	require.NoError(t, l.Close())
	_, err = os.Lstat(path)
	require.ErrorIs(t, err, fs.ErrNotExist, "Close removes the socket")
}
