package integration

import (
	"context"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"
)

// TestKillDuringAdd: a `kill -9` in the middle of an offline add leaves a
// repo that verifies clean, no file (the root is written last), and a
// re-add that completes and reads back exactly.
func TestKillDuringAdd(t *testing.T) {
	n := newNode(t)
	dir := t.TempDir()
	data := randBytes(96 * mib)
	path := writeFile(t, dir, "big.bin", data)

	ctx, cancel := context.WithTimeout(t.Context(), 5*time.Minute)
	defer cancel()
	add := n.command(ctx, runOpts{}, "add", "-q", "--progress=false", path)
	noErr(t, add.Start(), "start add")
	done := make(chan error, 1)
	go func() { done <- add.Wait() }()

	// Kill it once some blocks are on disk, but before it ends.
	blocks := filepath.Join(n.repo, "blocks")
	tick := time.NewTicker(2 * time.Millisecond)
	defer tick.Stop()
	for killed := false; !killed; {
		select {
		case err := <-done:
			t.Fatalf("add ended (err %v) before any block was seen", err)
		case <-tick.C:
			if countFiles(t, blocks) >= 8 {
				noErr(t, add.Process.Kill(), "kill add")
				killed = true
			}
		}
	}
	<-done

	res := n.run(t, "repo", "verify")
	n.requireOK(t, res)
	check(t, strings.HasPrefix(res.out(), "verified "), "verify after a crash: %s", res)
	res = n.run(t, "ls")
	n.requireOK(t, res)
	check(t, res.out() == "", "a killed add must not list a file: %s", res)

	c := n.add(t, path)
	requireSameBytes(t, data, n.cat(t, c), "re-added file")
	n.requireOK(t, n.run(t, "repo", "verify"))
}

// countFiles counts the regular files under dir (0 if it does not exist).
func countFiles(t testing.TB, dir string) int {
	t.Helper()
	count := 0
	err := filepath.WalkDir(dir, func(_ string, d os.DirEntry, err error) error {
		if err != nil {
			return err
		}
		if d.Type().IsRegular() {
			count++
		}
		return nil
	})
	if err != nil && !os.IsNotExist(err) {
		t.Fatalf("walk %s: %v", dir, err)
	}
	return count
}
