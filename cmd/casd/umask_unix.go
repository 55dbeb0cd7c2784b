//go:build unix

package main

import (
	"io/fs"
	"syscall"
)

// processUmask returns the process umask. Reading it means setting it, so
// it is set back at once; call it before the command starts goroutines
// that create files.
func processUmask() fs.FileMode {
	old := syscall.Umask(0o077)
	syscall.Umask(old)
	return fs.FileMode(old) & fs.ModePerm
}
