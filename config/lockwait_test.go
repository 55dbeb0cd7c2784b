package config_test

import (
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"testing"

	"github.com/casd/casd/config"
)

// deadPID returns the pid of a process that has exited: the test binary
// run once more with no test selected.
func deadPID(t *testing.T) int {
	t.Helper()
	cmd := exec.Command(os.Args[0], "-test.run=^$")
	noErr(t, cmd.Run(), "child")
	return cmd.Process.Pid
}

func writeMarker(t *testing.T, r *config.Repo, data string) {
	t.Helper()
	noErr(t, os.WriteFile(r.DaemonMarkerPath(), []byte(data), 0o600))
}

func readMarker(t *testing.T, r *config.Repo) (string, bool) {
	t.Helper()
	b, err := os.ReadFile(r.DaemonMarkerPath())
	if os.IsNotExist(err) {
		return "", false
	}
	noErr(t, err)
	return string(b), true
}

func pidLine(pid int) string { return strconv.Itoa(pid) + "\n" }

// TestDaemonPID checks which markers a waiting command takes for a live
// daemon: only a well-formed pid of a live process other than its own.
func TestDaemonPID(t *testing.T) {
	other := os.Getppid() // alive for as long as the test runs
	dead := deadPID(t)
	tests := []struct {
		name    string
		marker  string // "" leaves no marker
		wantPID int
		wantOK  bool
	}{
		{"no marker", "", 0, false},
		{"live process", pidLine(other), other, true},
		{"without newline, padded", "  " + strconv.Itoa(other) + " \r\n", other, true},
		{"dead process", pidLine(dead), dead, false},
		{"this process", pidLine(os.Getpid()), 0, false},
		{"garbage", "casd\n", 0, false},
		{"empty", "\n", 0, false},
		{"zero", "0\n", 0, false},
		{"negative", "-1\n", 0, false},
		{"oversize", strings.Repeat(" ", 1<<10) + pidLine(other), 0, false},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			r := initRepo(t, t.TempDir(), config.InitOptions{})
			if tt.marker != "" {
				writeMarker(t, r, tt.marker)
			}
			pid, ok := r.DaemonPID()
			equal(t, tt.wantPID, pid, "pid")
			equal(t, tt.wantOK, ok, "ok")
		})
	}
}

func TestMarkDaemon(t *testing.T) {
	self := pidLine(os.Getpid())
	other := pidLine(os.Getppid())
	dead := pidLine(deadPID(t))
	tests := []struct {
		name       string
		marker     string // "" leaves no marker
		force      bool
		wantMarked bool
		want       string // marker content after
	}{
		{"no marker", "", false, true, self},
		{"dead daemon's marker", dead, false, true, self},
		{"garbage marker", "x", false, true, self},
		{"own marker", self, false, true, self},
		{"live daemon's marker kept", other, false, false, other},
		{"live daemon's marker forced", other, true, true, self},
		{"forced without marker", "", true, true, self},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			r := initRepo(t, t.TempDir(), config.InitOptions{})
			equal(t, filepath.Join(r.Path, "daemon.pid"), r.DaemonMarkerPath())
			if tt.marker != "" {
				writeMarker(t, r, tt.marker)
			}
			marked, err := r.MarkDaemon(tt.force)
			noErr(t, err)
			equal(t, tt.wantMarked, marked, "marked")
			got, ok := readMarker(t, r)
			isTrue(t, ok, "no marker after MarkDaemon")
			equal(t, tt.want, got, "marker")
		})
	}

	t.Run("write failure", func(t *testing.T) {
		r := initRepo(t, t.TempDir(), config.InitOptions{})
		// A directory in the marker's place makes the write fail.
		noErr(t, os.Mkdir(r.DaemonMarkerPath(), 0o700))
		marked, err := r.MarkDaemon(true)
		errContains(t, err, "config: mark daemon")
		equal(t, false, marked, "marked")
	})
}

// TestUnmarkDaemon checks that a daemon removes its own marker and nobody
// else's.
func TestUnmarkDaemon(t *testing.T) {
	other := pidLine(os.Getppid())
	tests := []struct {
		name   string
		marker string // "" leaves no marker
		keep   bool
	}{
		{"own marker", pidLine(os.Getpid()), false},
		{"another process's marker", other, true},
		{"garbage", "x\n", true},
		{"no marker", "", false},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			r := initRepo(t, t.TempDir(), config.InitOptions{})
			if tt.marker != "" {
				writeMarker(t, r, tt.marker)
			}
			noErr(t, r.UnmarkDaemon())
			got, ok := readMarker(t, r)
			equal(t, tt.keep, ok, "marker present")
			if tt.keep {
				equal(t, tt.marker, got, "marker")
			}
		})
	}

	t.Run("mark then unmark", func(t *testing.T) {
		r := initRepo(t, t.TempDir(), config.InitOptions{})
		marked, err := r.MarkDaemon(false)
		noErr(t, err)
		isTrue(t, marked, "not marked")
		noErr(t, r.UnmarkDaemon())
		_, ok := readMarker(t, r)
		isTrue(t, !ok, "marker left after UnmarkDaemon")
	})
}
