package api

import (
	"errors"
	"syscall"

	"golang.org/x/sys/windows"
)

// restrictSocket does nothing on Windows: a socket file has no mode bits
// there (os.Chmod would only toggle its read-only attribute), and access
// is governed by the ACL it inherits from the repo directory; see
// [ListenUnix].
func restrictSocket(string) error { return nil }

// isConnRefused reports whether a dial error says that nobody listens on
// an existing socket file. Winsock reports WSAECONNREFUSED, which is not
// the syscall package's ECONNREFUSED (an invented errno on Windows).
func isConnRefused(err error) bool {
	return errors.Is(err, windows.WSAECONNREFUSED) || errors.Is(err, syscall.ECONNREFUSED)
}
