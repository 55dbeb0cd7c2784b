package integration

import (
	"context"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"
)

// TestKillDuringAdd: a `kill -9` in the middle of an offline add, once some
// blocks are committed and more are being staged, leaves a repo that
// verifies clean (every committed block checked), no temporary file after
// the next command opens the repo, no file listed (the root is written
// last), and a re-add that completes and reads back exactly.
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

	// Kill it once a batch of blocks is committed (renamed to their CIDs),
	// but before it ends. Blocks are staged as temporary files first, so
	// files alone do not mean committed blocks.
	blocks := filepath.Join(n.repo, "blocks")
	tick := time.NewTicker(2 * time.Millisecond)
	defer tick.Stop()
	for killed := false; !killed; {
		select {
		case err := <-done:
			committed, temps := blockFiles(t, blocks)
			t.Fatalf("add ended (err %v) before it was killed; %d blocks committed, %d temporary files", err, committed, temps)
		case <-tick.C:
			if committed, _ := blockFiles(t, blocks); committed > 0 {
				noErr(t, add.Process.Kill(), "kill add")
				killed = true
			}
		}
	}
	<-done
	committed, temps := blockFiles(t, blocks)
	t.Logf("killed with %d blocks committed and %d temporary files", committed, temps)
	check(t, committed > 0, "no committed block after the kill")

	res := n.run(t, "repo", "verify")
	n.requireOK(t, res)
	check(t, res.out() == fmt.Sprintf("verified %d blocks\n", committed),
		"verify after a crash must check the %d committed blocks: %s", committed, res)
	after, temps := blockFiles(t, blocks)
	check(t, temps == 0, "%d temporary files left after the repo was opened again", temps)
	check(t, after == committed, "%d blocks after verify, %d before", after, committed)
	res = n.run(t, "ls")
	n.requireOK(t, res)
	check(t, res.out() == "", "a killed add must not list a file: %s", res)

	c := n.add(t, path)
	requireSameBytes(t, data, n.cat(t, c), "re-added file")
	n.requireOK(t, n.run(t, "repo", "verify"))
}

// blockFiles counts the regular files under a blocks dir (none if it does
// not exist): committed blocks, and the temporary files (".tmp-*") of
// blocks not yet committed.
func blockFiles(t testing.TB, dir string) (committed, temps int) {
	t.Helper()
	err := filepath.WalkDir(dir, func(_ string, d os.DirEntry, err error) error {
		if err != nil {
			if os.IsNotExist(err) {
				return nil // a temporary file renamed or removed meanwhile
			}
			return err
		}
		if !d.Type().IsRegular() {
			return nil
		}
		if strings.HasPrefix(d.Name(), ".tmp-") {
			temps++
		} else {
			committed++
		}
		return nil
	})
	if err != nil {
		t.Fatalf("walk %s: %v", dir, err)
	}
	return committed, temps
}
