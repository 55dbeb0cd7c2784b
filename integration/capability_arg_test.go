package integration

import (
	"bytes"
	"os"
	"path/filepath"
	"strings"
	"testing"
)

// TestCapabilityFromStdinOrFile: a capability given as - (stdin) or
// @FILE reads the file like one given on the command line, so that it need
// not show in the process list; a file with anything but one token is bad
// input.
func TestCapabilityFromStdinOrFile(t *testing.T) {
	t.Parallel()
	n := newNode(t)
	dir := t.TempDir()
	data := randBytes(300_000)
	root := n.add(t, writeFile(t, dir, "report.pdf", data))
	capability := n.share(t, root)

	res := n.runIn(t, strings.NewReader(capability+"\n"), "cat", "-")
	n.requireOK(t, res)
	check(t, bytes.Equal(res.stdout, data), "cat - printed %d bytes, want the %d added", len(res.stdout), len(data))

	capFile := filepath.Join(dir, "cap.txt")
	noErr(t, os.WriteFile(capFile, []byte(capability+"\n"), 0o600), "write the capability file")
	out := filepath.Join(dir, "out.pdf")
	res = n.run(t, "get", "-o", out, "@"+capFile)
	n.requireOK(t, res)
	got, err := os.ReadFile(out)
	noErr(t, err, "read what get wrote")
	check(t, bytes.Equal(got, data), "get @FILE wrote %d bytes, want the %d added", len(got), len(data))

	noErr(t, os.WriteFile(capFile, []byte(capability+" "+capability), 0o600), "write two capabilities")
	res = n.run(t, "cat", "@"+capFile)
	requireCode(t, res, exitUsage)
	requireErrLine(t, res)
	check(t, strings.Contains(res.stderr, ": 2 words"), "cat @FILE of two tokens: %s", res)
}
