package integration

import (
	"context"
	"os/exec"
	"strings"
	"testing"
	"time"
)

// TestProgressOnlyOnTerminal: `add` draws a progress bar when stderr is a
// terminal (a pseudo-terminal made by util-linux script(1)) and stays
// quiet when piped.
func TestProgressOnlyOnTerminal(t *testing.T) {
	n := newNode(t)
	path := writeRandomFile(t, t.TempDir(), "film.bin", 48*mib)

	res := n.run(t, "add", path)
	n.requireOK(t, res)
	check(t, len(res.stderr) == 0, "add wrote to stderr while piped: %s", res)

	scriptBin, err := exec.LookPath("script")
	noErr(t, err, "script(1) from util-linux is needed to give casd a terminal")
	ctx, cancel := context.WithTimeout(t.Context(), 2*time.Minute)
	defer cancel()
	line := quoteArgs([]string{casdBin, "add", "--progress=auto", path})
	cmd := exec.CommandContext(ctx, scriptBin, "-qefc", line, "/dev/null")
	cmd.Env = n.environ(nil)
	cmd.Dir = n.work
	out, err := cmd.CombinedOutput()
	noErr(t, err, "add on a terminal: "+string(out))
	check(t, strings.Contains(string(out), "adding film.bin"), "no progress bar on a terminal: %q", clip(out, 400))
	check(t, strings.Contains(string(out), "added "), "no result line on a terminal: %q", clip(out, 400))
}
