package config

import (
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"syscall"

	"github.com/casd/casd/internal/fsutil"
)

// The daemon marker.
//
// A command that finds the repo locked cannot tell from the lock whether
// its holder is a daemon that is starting, whose API answers within
// seconds, or another offline command, which may hold the lock for
// minutes. So a daemon records its pid in the file daemon.pid of the repo
// before it first tries to take the lock, and removes the file while it
// still holds the lock, after its API has stopped. Whoever then finds the
// lock held also finds the marker, if the holder is a daemon.
//
// The marker is a hint, never a lock: the lock alone decides who owns the
// repo. A daemon killed with SIGKILL leaves its marker behind, so a marker
// counts only while the process it names is alive (a pid reused since is
// taken for a daemon; callers must bound what they do on that belief).
// Pids mean nothing across pid namespaces: a repo shared by containers
// gets no help from the marker.
const daemonMarker = "daemon.pid"

// DaemonMarkerPath returns the path of the daemon marker file.
func (r *Repo) DaemonMarkerPath() string { return filepath.Join(r.Path, daemonMarker) }

// MarkDaemon records this process as the repo's daemon in the daemon
// marker and reports whether it did. Unless force is set, a marker that
// names another live process is left as it is. A daemon calls it with
// force false before it tries to take the lock, and with force true once
// it holds the lock, which makes it the rightful daemon.
func (r *Repo) MarkDaemon(force bool) (marked bool, err error) {
	if !force {
		if _, ok := r.DaemonPID(); ok {
			return false, nil
		}
	}
	// Atomic, so that a reader never sees an empty or partial pid.
	if err := fsutil.WriteFile(r.DaemonMarkerPath(), []byte(strconv.Itoa(os.Getpid())+"\n"), 0o600); err != nil {
		return false, fmt.Errorf("config: mark daemon: %w", err)
	}
	return true, nil
}

// UnmarkDaemon removes the daemon marker if it names this process. A
// daemon calls it while it still holds the lock (no other daemon can
// force its own marker in then) or when it gave up taking the lock.
func (r *Repo) UnmarkDaemon() error {
	pid, err := readDaemonPID(r.DaemonMarkerPath())
	if err != nil || pid != os.Getpid() {
		return nil // missing, unreadable or another process's: not ours to remove
	}
	if err := fsutil.RemoveIfExists(r.DaemonMarkerPath()); err != nil {
		return fmt.Errorf("config: unmark daemon: %w", err)
	}
	return nil
}

// DaemonPID returns the pid the daemon marker names, and whether that is
// a live process other than this one: a daemon that is waiting for the
// lock, starting, running or stopping.
func (r *Repo) DaemonPID() (pid int, ok bool) {
	pid, err := readDaemonPID(r.DaemonMarkerPath())
	if err != nil || pid == os.Getpid() {
		return 0, false
	}
	return pid, processAlive(pid)
}

func readDaemonPID(path string) (int, error) {
	b, err := os.ReadFile(path)
	if err != nil {
		return 0, err
	}
	if len(b) > 32 {
		return 0, fmt.Errorf("%s: %d bytes, not a pid", path, len(b))
	}
	pid, err := strconv.Atoi(strings.TrimSpace(string(b)))
	if err != nil || pid <= 0 {
		return 0, fmt.Errorf("%s: not a pid: %q", path, b)
	}
	return pid, nil
}

// processAlive reports whether a process with this pid exists. On Unix
// signal 0 probes it (ESRCH becomes ErrProcessDone; EPERM means it exists,
// under another user); on Windows FindProcess fails for a pid that does not
// exist, and Signal refuses signal 0 with another error.
func processAlive(pid int) bool {
	p, err := os.FindProcess(pid)
	if err != nil {
		return false
	}
	defer func() { _ = p.Release() }()
	err = p.Signal(syscall.Signal(0))
	return !errors.Is(err, os.ErrProcessDone)
}
