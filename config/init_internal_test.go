package config

import (
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/casd/casd/internal/fsutil"
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
		return fsutil.WriteFile(path, data, perm)
	}
	tb.Cleanup(func() { writeFile = fsutil.WriteFile })
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
			// A clean-up that worked adds nothing to the error.
			if strings.Contains(err.Error(), "clean up") || strings.Contains(err.Error(), "\n") {
				t.Fatalf("write %d: err = %q, want the write failure alone", n, err)
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
			writeFile = fsutil.WriteFile
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
