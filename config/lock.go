package config

import (
	"errors"
	"fmt"
	"io"
	"os"
	"strconv"
	"strings"
	"sync"

	"golang.org/x/sys/unix"
)

// Lock takes the repo lock: a non-blocking exclusive flock(2) on repo.lock,
// which then holds this process's pid. A daemon holds it for its lifetime;
// offline commands hold it while they use the repo. If another holder has
// it, Lock returns an error wrapping [ErrRepoLocked] that names the holder's
// pid. The lock belongs to the open file, not the process, so two Locks in
// one process conflict too; the kernel drops it if the process dies.
//
// release unlocks and may be called more than once; later calls return the
// first call's result.
func (r *Repo) Lock() (release func() error, err error) {
	path := r.LockPath()
	f, err := os.OpenFile(path, os.O_RDWR|os.O_CREATE, 0o600)
	if err != nil {
		return nil, fmt.Errorf("config: lock %s: %w", path, err)
	}
	if err := flock(f, unix.LOCK_EX|unix.LOCK_NB); err != nil {
		holder := readHolder(f)
		_ = f.Close()
		if errors.Is(err, unix.EWOULDBLOCK) {
			return nil, fmt.Errorf("config: lock %s: held by %s: %w", path, holder, ErrRepoLocked)
		}
		return nil, fmt.Errorf("config: lock %s: %w", path, err)
	}
	// Record the holder for the error message of whoever comes next. A
	// failure here does not weaken the lock, so it is only logged.
	if err := writeHolder(f); err != nil {
		log.Warnw("record lock holder", "path", path, "err", err)
	}
	log.Debugw("locked repo", "path", r.Path)

	var once sync.Once
	var relErr error
	return func() error {
		once.Do(func() {
			// Clear the pid first, so a stale pid is never reported, then
			// unlock by closing. The file stays: removing it would let a
			// waiter lock an unlinked inode while a newcomer locks a new one.
			terr := f.Truncate(0)
			uerr := flock(f, unix.LOCK_UN)
			relErr = errors.Join(wrapIf(terr, "clear lock holder"), wrapIf(uerr, "unlock"), f.Close())
			if relErr != nil {
				relErr = fmt.Errorf("config: release lock %s: %w", path, relErr)
			}
			log.Debugw("unlocked repo", "path", r.Path)
		})
		return relErr
	}, nil
}

func flock(f *os.File, how int) error {
	for {
		err := unix.Flock(int(f.Fd()), how)
		if !errors.Is(err, unix.EINTR) {
			return err
		}
	}
}

func writeHolder(f *os.File) error {
	if err := f.Truncate(0); err != nil {
		return err
	}
	_, err := f.WriteAt([]byte(strconv.Itoa(os.Getpid())+"\n"), 0)
	return err
}

// readHolder describes the process named in the lock file.
func readHolder(f *os.File) string {
	b, err := io.ReadAll(io.NewSectionReader(f, 0, 32))
	if err != nil {
		return "another process"
	}
	pid, err := strconv.Atoi(strings.TrimSpace(string(b)))
	if err != nil || pid <= 0 {
		return "another process"
	}
	if pid == os.Getpid() {
		return fmt.Sprintf("pid %d (this process)", pid)
	}
	return fmt.Sprintf("pid %d", pid)
}
