package config_test

import (
	"bufio"
	"io"
	"os"
	"os/exec"
	"runtime"
	"strconv"
	"strings"
	"testing"

	"github.com/casd/casd/config"
)

// lockHelperEnv names the repo that TestLockHelperProcess locks when the
// test binary runs as another process for TestLockAcrossProcesses.
const lockHelperEnv = "CASD_TEST_LOCK_HELPER_REPO"

// holderName is how a lock error names the holder with pid.
func holderName(pid int) string {
	if runtime.GOOS == "windows" {
		return "another process"
	}
	return "pid " + strconv.Itoa(pid)
}

// TestLockHelperProcess is not a test: run by TestLockAcrossProcesses in a
// child process, it takes the repo lock, says "locked" and holds the lock
// until its stdin closes.
func TestLockHelperProcess(t *testing.T) {
	dir := os.Getenv(lockHelperEnv)
	if dir == "" {
		t.Skip("helper process for TestLockAcrossProcesses")
	}
	r, err := config.Open(dir)
	noErr(t, err)
	release, err := r.Lock()
	noErr(t, err)
	if _, err := os.Stdout.WriteString("locked\n"); err != nil {
		t.Fatal(err)
	}
	_, _ = io.Copy(io.Discard, os.Stdin)
	noErr(t, release())
}

// lockInChild starts a process that holds dir's lock, and returns it with
// the pipe whose closing makes it release the lock and exit.
func lockInChild(t *testing.T, dir string) (*exec.Cmd, io.WriteCloser) {
	t.Helper()
	cmd := exec.Command(os.Args[0], "-test.run=^TestLockHelperProcess$", "-test.count=1")
	cmd.Env = append(os.Environ(), lockHelperEnv+"="+dir)
	cmd.Stderr = os.Stderr
	stdin, err := cmd.StdinPipe()
	noErr(t, err)
	stdout, err := cmd.StdoutPipe()
	noErr(t, err)
	noErr(t, cmd.Start())
	t.Cleanup(func() {
		_ = stdin.Close()
		_ = cmd.Process.Kill()
		_ = cmd.Wait()
	})
	line, err := bufio.NewReader(stdout).ReadString('\n')
	if err != nil || !strings.HasPrefix(line, "locked") {
		t.Fatalf("helper did not lock: %q, %v", line, err)
	}
	return cmd, stdin
}

// TestLockAcrossProcesses checks that the lock excludes another process,
// names it, and is free again once that process releases it or dies.
func TestLockAcrossProcesses(t *testing.T) {
	if testing.Short() {
		t.Skip("starts processes")
	}
	tests := []struct {
		name string
		end  func(t *testing.T, cmd *exec.Cmd, stdin io.WriteCloser)
	}{
		{"released", func(t *testing.T, cmd *exec.Cmd, stdin io.WriteCloser) {
			noErr(t, stdin.Close())
			noErr(t, cmd.Wait(), "helper")
		}},
		{"killed", func(t *testing.T, cmd *exec.Cmd, _ io.WriteCloser) {
			noErr(t, cmd.Process.Kill())
			_ = cmd.Wait()
		}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			dir := t.TempDir()
			r := initRepo(t, dir, config.InitOptions{})
			cmd, stdin := lockInChild(t, dir)

			_, err := r.Lock()
			errIs(t, err, config.ErrRepoLocked)
			errContains(t, err, "held by "+holderName(cmd.Process.Pid))

			tt.end(t, cmd, stdin)
			release, err := r.Lock()
			noErr(t, err, "lock after the other process ended")
			noErr(t, release())
		})
	}
}

// TestLockHolderRecord checks what the lock file says about its holder:
// this process's pid while locked, nothing once released, so that a
// stale pid is never reported.
func TestLockHolderRecord(t *testing.T) {
	if runtime.GOOS == "windows" {
		t.Skip("the lock file records no holder on Windows")
	}
	dir := t.TempDir()
	r := initRepo(t, dir, config.InitOptions{})
	for round := range 2 {
		release, err := r.Lock()
		noErr(t, err, "lock")
		b, err := os.ReadFile(r.LockPath())
		noErr(t, err)
		equal(t, strconv.Itoa(os.Getpid())+"\n", string(b), "round", round)
		noErr(t, release())
		b, err = os.ReadFile(r.LockPath())
		noErr(t, err)
		equal(t, "", string(b), "lock file after release, round", round)
	}
}

// TestLockHolderUnreadable checks that a lock file whose content is not a
// pid makes the error name "another process", never a made-up pid.
func TestLockHolderUnreadable(t *testing.T) {
	if runtime.GOOS == "windows" {
		t.Skip("the lock file records no holder on Windows")
	}
	for _, content := range []string{"", "\n", "casd\n", "0\n", "-7\n", strings.Repeat("9", 40) + "\n"} {
		t.Run(strconv.Quote(content), func(t *testing.T) {
			dir := t.TempDir()
			initRepo(t, dir, config.InitOptions{})
			a, b := openRepo(t, dir), openRepo(t, dir)
			release, err := a.Lock()
			noErr(t, err)
			defer func() { noErr(t, release()) }()
			// The lock is advisory: the file can be rewritten under it.
			noErr(t, os.WriteFile(a.LockPath(), []byte(content), 0o600))
			_, err = b.Lock()
			errIs(t, err, config.ErrRepoLocked)
			errContains(t, err, "held by another process")
		})
	}
}
