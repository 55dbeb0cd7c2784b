//go:build unix

package main

import (
	"path/filepath"
	"syscall"
	"testing"
)

// nonRegularFile returns the path of a file that exists and is not a
// regular file: a FIFO in dir.
func nonRegularFile(tb testing.TB, dir string) string {
	tb.Helper()
	p := filepath.Join(dir, "fifo")
	if err := syscall.Mkfifo(p, 0o600); err != nil {
		tb.Fatal(err)
	}
	return p
}
