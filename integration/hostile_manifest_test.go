package integration

import (
	"bytes"
	"path/filepath"
	"testing"

	"github.com/casd/casd/dag"
	"github.com/casd/casd/dag/dagtest"
)

// TestHostileManifestSizes (hostile peers, point 9): a stranger seals a
// file whose root says it has 4 KiB while its three chunk entries record
// 12 KiB in all, stores it on the victim's daemon, and hands the victim
// its capability. `casd cat` writes at most the 4 KiB the manifest
// promises and fails as an integrity error; `casd get` fails the same way
// and leaves nothing in the target folder, neither the file nor a part of
// it.
func TestHostileManifestSizes(t *testing.T) {
	t.Parallel()
	n := newNode(t)
	d := startDaemon(t, n)
	const size = 4096
	chunks := [][]byte{bytes.Repeat([]byte("a"), size), bytes.Repeat([]byte("b"), size), bytes.Repeat([]byte("c"), size)}
	blocks, key, err := dagtest.ForgeSizes("invoice.pdf", size, chunks...)
	noErr(t, err, "forge")
	root := blocks[len(blocks)-1].Cid
	noErr(t, newAdversary(t, d).store(t, root, blocks), "store the forged file on the victim")
	token := dag.Capability{Root: root, Key: key}.String()

	res := n.run(t, "cat", token)
	requireFail(t, res, exitIntegrity)
	check(t, len(res.stdout) <= size, "cat wrote %d bytes of a file that says it has %d", len(res.stdout), size)
	check(t, bytes.Equal(res.stdout, chunks[0][:len(res.stdout)]), "cat wrote bytes that are not the file's first chunk")
	t.Logf("cat wrote %d of the %d bytes the manifest promises, then: %s", len(res.stdout), size, requireErrLine(t, res))

	dir := t.TempDir()
	requireFail(t, n.runDir(t, dir, "get", token), exitIntegrity)
	requireFail(t, n.runDir(t, dir, "get", "-o", filepath.Join(dir, "out.pdf"), token), exitIntegrity)
	check(t, len(listDir(t, dir)) == 0, "get left %q behind", listDir(t, dir))
}
