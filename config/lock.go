package config

import (
	"errors"
	"fmt"
	"io"
	"os"
	"runtime"
	"strconv"
	"strings"
	"sync"

	"github.com/gofrs/flock"
)

// recordHolder says whether the lock file records its holder's pid. On
// Windows the lock is LockFileEx on the file's first byte, which is
// mandatory: no other handle may read or write it, not even one of the
// holder's own, so the pid cannot be written there, nor read by whoever
// comes next. The error then says "another process".
const recordHolder = runtime.GOOS != "windows"

// Lock takes the repo lock: a non-blocking, exclusive lock on repo.lock
// (flock(2) on unix, LockFileEx on Windows, through github.com/gofrs/flock),
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
	fl := flock.New(path, flock.SetFlag(os.O_RDWR|os.O_CREATE), flock.SetPermissions(0o600))
	ok, err := fl.TryLock()
	if err != nil {
		return nil, fmt.Errorf("config: lock %s: %w", path, err)
	}
	if !ok {
		return nil, fmt.Errorf("config: lock %s: held by %s: %w", path, readHolder(path), ErrRepoLocked)
	}
	// Record the holder for the error message of whoever comes next. A
	// failure here does not weaken the lock, so it is only logged.
	holder, err := writeHolder(path)
	if err != nil {
		log.Warnw("record lock holder", "path", path, "err", err)
	}
	log.Debugw("locked repo", "path", r.Path)

	var once sync.Once
	var relErr error
	return func() error {
		once.Do(func() {
			// Clear the pid first, so a stale pid is never reported, then
			// unlock. The file stays: removing it would let a waiter lock an
			// unlinked inode while a newcomer locks a new one.
			var cerr error
			if holder != nil {
				cerr = errors.Join(wrapIf(holder.Truncate(0), "clear lock holder"), holder.Close())
			}
			relErr = errors.Join(cerr, wrapIf(fl.Unlock(), "unlock"))
			if relErr != nil {
				relErr = fmt.Errorf("config: release lock %s: %w", path, relErr)
			}
			log.Debugw("unlocked repo", "path", r.Path)
		})
		return relErr
	}, nil
}

// writeHolder writes this process's pid into the lock file at path, which
// this process has locked, through a handle of its own (the lock's is not
// exposed), and returns that handle for clearing the pid at release. It
// returns nil, nil where the lock file records no holder.
func writeHolder(path string) (*os.File, error) {
	if !recordHolder {
		return nil, nil
	}
	f, err := os.OpenFile(path, os.O_WRONLY, 0)
	if err != nil {
		return nil, err
	}
	if err := f.Truncate(0); err != nil {
		return nil, errors.Join(err, f.Close())
	}
	if _, err := f.WriteAt([]byte(strconv.Itoa(os.Getpid())+"\n"), 0); err != nil {
		return nil, errors.Join(err, f.Close())
	}
	return f, nil
}

// readHolder describes the process named in the lock file at path.
func readHolder(path string) string {
	const unknown = "another process"
	if !recordHolder {
		return unknown
	}
	f, err := os.Open(path)
	if err != nil {
		return unknown
	}
	defer f.Close()
	b, err := io.ReadAll(io.LimitReader(f, 32))
	if err != nil {
		return unknown
	}
	pid, err := strconv.Atoi(strings.TrimSpace(string(b)))
	if err != nil || pid <= 0 {
		return unknown
	}
	if pid == os.Getpid() {
		return fmt.Sprintf("pid %d (this process)", pid)
	}
	return fmt.Sprintf("pid %d", pid)
}
