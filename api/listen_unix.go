//go:build unix

package api

import (
	"errors"
	"os"
	"syscall"
)

// restrictSocket makes the socket at path the owner's only.
func restrictSocket(path string) error { return os.Chmod(path, 0o600) }

// isConnRefused reports whether a dial error says that nobody listens on
// an existing socket file.
func isConnRefused(err error) bool { return errors.Is(err, syscall.ECONNREFUSED) }
