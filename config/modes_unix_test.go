//go:build unix

package config_test

import (
	"bufio"
	"io/fs"
	"os"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"testing"

	logging "github.com/ipfs/go-log/v2"

	"github.com/casd/casd/config"
)

// Permission bits and the umask are unix notions: Windows keeps only a
// read-only bit, so this test runs on unix only.

func setUmask(m int) int { return syscall.Umask(m) }

func TestInitFileModes(t *testing.T) {
	old := setUmask(0o022)
	t.Cleanup(func() { setUmask(old) })
	dir := filepath.Join(t.TempDir(), "a", "repo")
	initRepo(t, dir, config.InitOptions{})
	equal(t, fs.FileMode(0o700), mode(t, dir), "repo dir")
	equal(t, fs.FileMode(0o700), mode(t, filepath.Join(dir, "keys")), "keys dir")
	for _, name := range []string{"keys/identity", "keys/master", "keys/convergence", "config"} {
		equal(t, fs.FileMode(0o600), mode(t, filepath.Join(dir, name)), name)
	}
	for _, name := range []string{"keys/master", "keys/convergence"} {
		fi, err := os.Stat(filepath.Join(dir, name))
		noErr(t, err)
		equal(t, int64(32), fi.Size(), name)
	}
	// Nothing else: no temp files, no directories owned by other packages.
	got := snapshot(t, dir)
	keys := make([]string, 0, len(got))
	for k := range got {
		keys = append(keys, k)
	}
	equal(t, 7, len(got), keys)
}

// captureWarnings collects what the casd/config logger logs at warn level
// and above until the returned function is called.
func captureWarnings(t *testing.T) func() []string {
	t.Helper()
	noErr(t, logging.SetLogLevel("casd/config", "warn"))
	pr := logging.NewPipeReader(logging.PipeLevel(logging.LevelWarn))
	var (
		mu    sync.Mutex
		lines []string
		wg    sync.WaitGroup
	)
	wg.Go(func() {
		// Drain until Close: the pipe blocks every logger while unread.
		sc := bufio.NewScanner(pr)
		for sc.Scan() {
			mu.Lock()
			lines = append(lines, sc.Text())
			mu.Unlock()
		}
	})
	stop := func() []string {
		_ = pr.Close()
		wg.Wait()
		mu.Lock()
		defer mu.Unlock()
		return slices.Clone(lines)
	}
	t.Cleanup(func() {
		stop()
		_ = logging.SetLogLevel("casd/config", "error")
	})
	return stop
}

// TestOpenWarnsAboutOpenSecrets checks that Open tells the operator when
// group or others can reach a key file or the keys directory, and stays
// quiet when they cannot. It still opens the repo.
func TestOpenWarnsAboutOpenSecrets(t *testing.T) {
	tests := []struct {
		name string
		path string // under the repo
		mode fs.FileMode
		warn bool
	}{
		{"private", "keys/master", 0o600, false},
		{"owner read-only", "keys/master", 0o400, false},
		{"master group-readable", "keys/master", 0o640, true},
		{"convergence world-readable", "keys/convergence", 0o604, true},
		{"identity group-writable", "keys/identity", 0o620, true},
		{"keys dir listable", "keys", 0o755, true},
		{"keys dir group-searchable", "keys", 0o710, true},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			dir := t.TempDir()
			initRepo(t, dir, config.InitOptions{})
			path := filepath.Join(dir, tt.path)
			noErr(t, os.Chmod(path, tt.mode))
			stop := captureWarnings(t)
			openRepo(t, dir)
			var warned []string
			for _, l := range stop() {
				if strings.Contains(l, "accessible to other users") {
					warned = append(warned, l)
				}
			}
			if !tt.warn {
				equal(t, 0, len(warned), "warnings", warned)
				return
			}
			isTrue(t, len(warned) == 1 && strings.Contains(warned[0], strconv.Quote(path)),
				"warnings %q, want one naming %s", warned, path)
		})
	}
}
