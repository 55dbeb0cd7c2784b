package api

import (
	"errors"
	"fmt"
	"net"
	"syscall"

	"golang.org/x/sys/windows"
)

// listen binds the socket at path. A socket file has no mode bits on
// Windows (os.Chmod would only toggle its read-only attribute), and access
// is governed by the ACL it inherits from the repo directory; see
// [ListenUnix].
func listen(path string) (net.Listener, error) {
	l, err := net.Listen("unix", path)
	if err != nil {
		return nil, fmt.Errorf("api: listen on %s: %w", path, err)
	}
	afterBind(path)
	return l, nil
}

// isConnRefused reports whether a dial error says that nobody listens on
// an existing socket file. Winsock reports WSAECONNREFUSED, which is not
// the syscall package's ECONNREFUSED (an invented errno on Windows).
func isConnRefused(err error) bool {
	return errors.Is(err, windows.WSAECONNREFUSED) || errors.Is(err, syscall.ECONNREFUSED)
}
