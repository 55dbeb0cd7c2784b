//go:build unix

package config_test

import (
	"io/fs"
	"os"
	"path/filepath"
	"syscall"
	"testing"

	"github.com/casd/casd/config"
)

// Permission bits and the umask are unix notions: Windows keeps only a
// read-only bit, so this test runs on unix only.

func setUmask(m int) int { return syscall.Umask(m) }

func TestInitFileModes(t *testing.T) {
	old := setUmask(0o022)
	t.Cleanup(func() { setUmask(old) })
	dir := filepath.Join(t.TempDir(), "a", "repo")
	initRepo(t, dir, config.InitOptions{})
	equal(t, fs.FileMode(0o700), mode(t, dir), "repo dir")
	equal(t, fs.FileMode(0o700), mode(t, filepath.Join(dir, "keys")), "keys dir")
	for _, name := range []string{"keys/identity", "keys/master", "keys/convergence", "config"} {
		equal(t, fs.FileMode(0o600), mode(t, filepath.Join(dir, name)), name)
	}
	for _, name := range []string{"keys/master", "keys/convergence"} {
		fi, err := os.Stat(filepath.Join(dir, name))
		noErr(t, err)
		equal(t, int64(32), fi.Size(), name)
	}
	// Nothing else: no temp files, no directories owned by other packages.
	got := snapshot(t, dir)
	keys := make([]string, 0, len(got))
	for k := range got {
		keys = append(keys, k)
	}
	equal(t, 7, len(got), keys)
}
