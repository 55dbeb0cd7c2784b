package integration

import (
	"os"
	"path/filepath"
	"testing"
)

// TestDedup adds the same 8 MiB file twice: the CID is the same and the repo
// does not grow by another copy. A copy under another name shares its chunks.
func TestDedup(t *testing.T) {
	t.Parallel()
	n := newNode(t)
	dir := t.TempDir()
	src := writeRandomFile(t, dir, "eight.bin", 8*mib)

	c1 := n.add(t, src)
	size1 := dirSize(t, n.repo)
	check(t, size1 >= 8*mib, "repo holds %d bytes after adding 8 MiB", size1)

	c2 := n.add(t, src)
	size2 := dirSize(t, n.repo)
	check(t, c1 == c2, "same file added twice: CIDs %s and %s differ", c1, c2)
	check(t, size2-size1 < mib, "second add of the same file grew the repo by %d bytes (from %d to %d)", size2-size1, size1, size2)

	// Same content, other name: the chunks are the same blocks.
	data, err := os.ReadFile(src)
	noErr(t, err)
	other := writeFile(t, dir, "renamed copy.bin", data)
	c3 := n.add(t, other)
	size3 := dirSize(t, n.repo)
	check(t, size3-size2 < mib, "add of the same content under another name grew the repo by %d bytes", size3-size2)
	refs1, refs3 := n.refs(t, c1), n.refs(t, c3)
	check(t, len(refs1) == len(refs3), "refs of the copy: %d blocks, of the original: %d", len(refs3), len(refs1))
	shared := 0
	in1 := map[string]bool{}
	for _, r := range refs1 {
		in1[r] = true
	}
	for _, r := range refs3 {
		if in1[r] {
			shared++
		}
	}
	check(t, shared >= 8, "the renamed copy shares %d chunk blocks with the original, want all 8", shared)

	// Both read back.
	out := t.TempDir()
	n.requireOK(t, n.run(t, "get", c3, "-o", filepath.Join(out, "x")))
	got, err := os.ReadFile(filepath.Join(out, "x"))
	noErr(t, err)
	requireSameBytes(t, data, got, "get of the renamed copy")
}
