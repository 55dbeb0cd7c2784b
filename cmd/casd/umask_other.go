//go:build !unix

package main

import "io/fs"

// processUmask returns 0: there is no umask outside Unix (on Windows file
// permissions are ACLs, and only the read-only bit follows the mode).
func processUmask() fs.FileMode { return 0 }
