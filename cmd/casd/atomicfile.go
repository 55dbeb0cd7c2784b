package main

import (
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"
)

// atomicFile is a temporary file that becomes the target file only when
// complete: written, fsynced, then linked or renamed into place. Until
// commit succeeds the target is untouched, and a failed or aborted
// atomicFile leaves nothing behind.
type atomicFile struct {
	*os.File
	done bool // committed or aborted
}

// createTemp creates an atomicFile in dir, which must be the directory of
// the target so that the final rename stays within one file system. Its
// name follows pattern, as in [os.CreateTemp].
func createTemp(dir, pattern string) (*atomicFile, error) {
	f, err := os.CreateTemp(dir, pattern)
	if err != nil {
		return nil, err
	}
	return &atomicFile{File: f}, nil
}

// commit makes the file's content the target with permission bits perm.
// Unless overwrite is set, an existing target is never replaced: commit
// fails with an error matching [fs.ErrExist], even if the target appeared
// while the file was being written. An existing directory is never
// replaced. On failure the temporary file is removed.
func (a *atomicFile) commit(target string, perm fs.FileMode, overwrite bool) (err error) {
	if a.done {
		return errors.New("commit: file already committed or aborted")
	}
	a.done = true
	tmp := a.Name()
	defer func() {
		if err != nil {
			_ = os.Remove(tmp)
		}
	}()
	if err := a.Sync(); err != nil {
		_ = a.Close()
		return err
	}
	if err := a.Chmod(perm); err != nil {
		_ = a.Close()
		return err
	}
	if err := a.Close(); err != nil {
		return err
	}
	if fi, err := os.Lstat(target); err == nil {
		if fi.IsDir() {
			return fmt.Errorf("%s is a directory", target)
		}
		if !overwrite {
			return &fs.PathError{Op: "create", Path: target, Err: fs.ErrExist}
		}
	}
	if overwrite {
		err = os.Rename(tmp, target)
	} else {
		err = linkNoClobber(tmp, target)
	}
	if err != nil {
		return err
	}
	return syncDir(filepath.Dir(target))
}

// linkNoClobber moves tmp to target unless target exists. A hard link is
// atomic about it; on a file system without hard links the check above
// the rename is the best we can do.
func linkNoClobber(tmp, target string) error {
	err := os.Link(tmp, target)
	switch {
	case err == nil:
		return os.Remove(tmp)
	case errors.Is(err, fs.ErrExist):
		return err
	}
	if _, serr := os.Lstat(target); serr == nil {
		return &fs.PathError{Op: "create", Path: target, Err: fs.ErrExist}
	}
	return os.Rename(tmp, target)
}

// abort closes and removes the temporary file; it does nothing after
// commit, so it can be deferred.
func (a *atomicFile) abort() {
	if a.done {
		return
	}
	a.done = true
	_ = a.Close()
	_ = os.Remove(a.Name())
}

// syncDir fsyncs a directory so that a rename in it is durable.
func syncDir(dir string) error {
	d, err := os.Open(dir)
	if err != nil {
		return err
	}
	return errors.Join(d.Sync(), d.Close())
}
