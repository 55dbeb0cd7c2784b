//go:build unix

package main

import (
	"syscall"
	"testing"

	"github.com/stretchr/testify/require"
)

// TestProcessUmask: processUmask reports the umask and leaves it as it was.
func TestProcessUmask(t *testing.T) {
	old := syscall.Umask(0o027)
	t.Cleanup(func() { syscall.Umask(old) })
	require.Equal(t, 0o027, int(processUmask()))
	require.Equal(t, 0o027, syscall.Umask(0o027), "umask restored")
}
