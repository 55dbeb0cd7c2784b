//go:build windows

package main

import "testing"

// nonRegularFile returns the path of a file that exists and is not a
// regular file: Windows has no FIFOs in the file system, but its null
// device stats as a character device.
func nonRegularFile(testing.TB, string) string { return "NUL" }
