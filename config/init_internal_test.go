package config

import (
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"
	"strings"
	"testing"
)

var errInjected = errors.New("injected write failure")

// failNthWrite makes the nth call to writeFile (1-based) fail; the calls
// before it write for real, so the caller has something to roll back.
func failNthWrite(tb testing.TB, n int) {
	tb.Helper()
	calls := 0
	writeFile = func(path string, data []byte, perm fs.FileMode) error {
		calls++
		if calls == n {
			return errInjected
		}
		return writeFileAtomic(path, data, perm)
	}
	tb.Cleanup(func() { writeFile = writeFileAtomic })
}

func listTree(tb testing.TB, dir string) []string {
	tb.Helper()
	var out []string
	err := filepath.WalkDir(dir, func(p string, d fs.DirEntry, err error) error {
		if err != nil {
			return err
		}
		rel, _ := filepath.Rel(dir, p)
		out = append(out, rel)
		return nil
	})
	if err != nil {
		tb.Fatal(err)
	}
	return out
}

// TestInitRollback checks that Init never leaves half a repo: whichever of
// its five file writes (identity, master, convergence, config, version)
// fails, the tree is as it was before.
func TestInitRollback(t *testing.T) {
	for n := 1; n <= 5; n++ {
		t.Run(fmt.Sprintf("write%d/new dir", n), func(t *testing.T) {
			parent := t.TempDir()
			failNthWrite(t, n)
			_, err := Init(filepath.Join(parent, "a", "repo"), InitOptions{})
			if !errors.Is(err, errInjected) {
				t.Fatalf("write %d: err = %v, want injected failure", n, err)
			}
			if got := listTree(t, parent); len(got) != 1 {
				t.Fatalf("write %d: left %q behind", n, got)
			}
		})
		t.Run(fmt.Sprintf("write%d/existing dir", n), func(t *testing.T) {
			dir := t.TempDir()
			if err := os.WriteFile(filepath.Join(dir, "other"), []byte("x"), 0o600); err != nil {
				t.Fatal(err)
			}
			failNthWrite(t, n)
			_, err := Init(dir, InitOptions{})
			if !errors.Is(err, errInjected) {
				t.Fatalf("write %d: err = %v, want injected failure", n, err)
			}
			if got := strings.Join(listTree(t, dir), ","); got != ".,other" {
				t.Fatalf("write %d: tree is %s, want .,other", n, got)
			}
			// The failed Init did not poison the dir.
			writeFile = writeFileAtomic
			if _, err := Init(dir, InitOptions{}); err != nil {
				t.Fatalf("Init after rollback: %v", err)
			}
		})
	}
}

func TestSaveConfigFailureKeepsOld(t *testing.T) {
	dir := t.TempDir()
	r, err := Init(dir, InitOptions{})
	if err != nil {
		t.Fatal(err)
	}
	before, err := os.ReadFile(r.ConfigPath())
	if err != nil {
		t.Fatal(err)
	}
	old := r.Config
	c, err := r.Config.Set("Replication.Factor", "9")
	if err != nil {
		t.Fatal(err)
	}
	failNthWrite(t, 1)
	if err := r.SaveConfig(c); !errors.Is(err, errInjected) {
		t.Fatalf("SaveConfig err = %v, want injected failure", err)
	}
	if r.Config != old {
		t.Fatal("failed SaveConfig replaced r.Config")
	}
	after, err := os.ReadFile(r.ConfigPath())
	if err != nil {
		t.Fatal(err)
	}
	if string(before) != string(after) {
		t.Fatal("failed SaveConfig changed the file")
	}
}

func TestWriteFileAtomicCleansUp(t *testing.T) {
	dir := t.TempDir()
	target := filepath.Join(dir, "target")
	// Renaming a file over a non-empty directory fails after the temp file
	// was written and synced.
	if err := os.MkdirAll(filepath.Join(target, "child"), 0o700); err != nil {
		t.Fatal(err)
	}
	if err := writeFileAtomic(target, []byte("data"), 0o600); err == nil {
		t.Fatal("write over a directory succeeded")
	}
	if got := strings.Join(listTree(t, dir), ","); got != ".,target,target/child" {
		t.Fatalf("tree is %s: temp file left behind", got)
	}

	// And a successful write replaces the old contents with the new mode.
	p := filepath.Join(dir, "f")
	if err := os.WriteFile(p, []byte("old"), 0o644); err != nil {
		t.Fatal(err)
	}
	if err := writeFileAtomic(p, []byte("new"), 0o600); err != nil {
		t.Fatal(err)
	}
	b, err := os.ReadFile(p)
	if err != nil {
		t.Fatal(err)
	}
	fi, err := os.Stat(p)
	if err != nil {
		t.Fatal(err)
	}
	if string(b) != "new" || fi.Mode().Perm() != 0o600 {
		t.Fatalf("got %q mode %v, want \"new\" 0600", b, fi.Mode().Perm())
	}
}
