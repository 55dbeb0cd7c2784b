package integration

import (
	"bytes"
	"context"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"testing"
	"time"
)

// TestConcurrentAddLocked starts a long add and, while it holds the repo
// lock, runs a second add on the same repo: the second one exits 5 with a
// message about the lock. Afterwards the first add has succeeded and the
// repo verifies clean.
func TestConcurrentAddLocked(t *testing.T) {
	t.Parallel()
	n := newNode(t)
	dir := t.TempDir()
	big := writeRandomFile(t, dir, "big.bin", 200*mib)
	small := writeFile(t, dir, "small.txt", []byte("second add\n"))

	ctx, cancel := context.WithTimeout(t.Context(), 10*time.Minute)
	defer cancel()
	first := n.command(ctx, runOpts{}, "add", "-q", big)
	var stdout, stderr bytes.Buffer
	first.Stdout = &stdout
	first.Stderr = &stderr
	noErr(t, first.Start(), "start first add")
	done := make(chan error, 1)
	go func() { done <- first.Wait() }()
	waited := false
	defer func() {
		if !waited {
			cancel()
			<-done
		}
	}()

	// Wait until the lock file names the first add's pid, or it ends.
	pid := strconv.Itoa(first.Process.Pid)
	lockPath := filepath.Join(n.repo, "repo.lock")
	tick := time.NewTicker(2 * time.Millisecond)
	defer tick.Stop()
	for locked := false; !locked; {
		select {
		case err := <-done:
			waited = true
			t.Fatalf("first add ended (err %v) before %s named its pid %s\nstdout: %s\nstderr: %s",
				err, lockPath, pid, stdout.String(), stderr.String())
		case <-tick.C:
			data, _ := os.ReadFile(lockPath)
			locked = containsField(string(data), pid)
		}
	}

	res := n.run(t, "add", small)
	msg := requireFail(t, res, exitBusy)
	check(t, mentionsAny(msg, []string{"lock", "busy"}), "message must say the repo is locked: %s", res)
	check(t, len(res.stdout) == 0, "the refused add wrote to stdout: %s", res)

	err := <-done
	waited = true
	if err != nil {
		t.Fatalf("first add failed: %v\nstderr: %s", err, stderr.String())
	}
	c := strings.TrimSpace(stdout.String())
	requireCID(t, c)

	res = n.run(t, "repo", "verify")
	n.requireOK(t, res)
	check(t, strings.HasPrefix(res.out(), "verified "), "repo verify output: %s", res)

	// The lock is free again: the second add now works.
	n.add(t, small)
	refs := n.refs(t, c)
	check(t, len(refs) >= 201, "a 200 MiB file has at least 200 chunks and a root, refs lists %d", len(refs))
}

// containsField reports whether s holds f as a whitespace- or
// punctuation-separated field (so pid 12 does not match 123).
func containsField(s, f string) bool {
	fields := strings.FieldsFunc(s, func(r rune) bool { return r < '0' || r > '9' })
	for _, x := range fields {
		if x == f {
			return true
		}
	}
	return false
}
