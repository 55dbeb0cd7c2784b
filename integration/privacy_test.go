package integration

import (
	"bytes"
	"io/fs"
	"os"
	"path/filepath"
	"strings"
	"testing"
)

// TestNothingReadableOnDisk adds files whose content and name carry unique
// markers, uses them the way a user does, and then requires that no file
// under the repo (blocks, metadata database, config, logs, anything) holds
// either marker: everything on disk is ciphertext, the names included.
func TestNothingReadableOnDisk(t *testing.T) {
	t.Parallel()
	n := newNode(t)
	contentMarker := "content-marker-" + randHex(16)
	nameMarker := "name-marker-" + randHex(16)
	dir := t.TempDir()

	// A small text file made of the marker, and a multi-chunk file with the
	// marker at the start, across a chunk boundary and at the end.
	small := []byte(strings.Repeat("secret line "+contentMarker+"\n", 50))
	big := randBytes(3*mib + 100)
	copy(big, contentMarker)
	copy(big[mib-10:], contentMarker)
	copy(big[len(big)-len(contentMarker):], contentMarker)

	files := map[string][]byte{
		"small-" + nameMarker + ".txt": small,
		"big " + nameMarker + ".bin":   big,
	}
	for name, data := range files {
		c := n.add(t, writeFile(t, dir, name, data))
		requireSameBytes(t, data, n.cat(t, c), "cat "+name)
		out := t.TempDir()
		n.requireOK(t, n.runDir(t, out, "get", c))
		n.share(t, c)
		n.refs(t, c)
	}
	res := n.run(t, "ls")
	n.requireOK(t, res)
	check(t, strings.Count(res.out(), nameMarker) == len(files), "ls must show both names: %s", res)
	n.requireOK(t, n.run(t, "ls", "--json"))
	n.requireOK(t, n.run(t, "repo", "verify"))
	n.requireOK(t, n.run(t, "repo", "stat", "--json"))

	var scanned int
	err := filepath.WalkDir(n.repo, func(p string, d fs.DirEntry, err error) error {
		if err != nil {
			return err
		}
		if strings.Contains(p, nameMarker) {
			t.Errorf("a path under the repo holds the name marker: %s", p)
		}
		if !d.Type().IsRegular() {
			return nil
		}
		data, err := os.ReadFile(p)
		if err != nil {
			return err
		}
		scanned++
		for _, m := range []string{contentMarker, nameMarker} {
			if bytes.Contains(data, []byte(m)) {
				t.Errorf("%s holds the plaintext marker %q", p, m)
			}
		}
		return nil
	})
	noErr(t, err, "walk repo")
	check(t, scanned > 0, "no files under the repo %s", n.repo)
}
