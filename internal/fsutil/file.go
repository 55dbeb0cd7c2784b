package fsutil

import (
	"errors"
	"fmt"
	"io/fs"
)

// errDone is returned by a [File] used after Commit, CommitNew or Abort.
var errDone = errors.New("fsutil: file already committed or aborted")

// File is a temporary file that becomes its target only when complete:
// written, fsynced, then renamed or linked into place by [File.Commit] or
// [File.CommitNew]. Until then the target is untouched, and a File that
// fails or is aborted leaves nothing behind. A File is not safe for
// concurrent use.
type File struct {
	fsys   fileSystem
	tmp    file
	target string
	perm   fs.FileMode
	done   bool // committed or aborted; tmp is closed
}

// Create starts an atomic write of path, whose mode will be perm: a
// temporary file in path's directory, which the caller writes and then
// commits or aborts. A deferred [File.Abort] cleans up on every error path.
func Create(path string, perm fs.FileMode) (*File, error) {
	return create(osFS{}, path, perm)
}

func create(fsys fileSystem, path string, perm fs.FileMode) (*File, error) {
	dir, base := splitPath(path)
	f, err := fsys.CreateTemp(dir, tempPattern(base))
	if err != nil {
		return nil, fmt.Errorf("write %s: create temp file: %w", path, err)
	}
	return &File{fsys: fsys, tmp: f, target: path, perm: perm}, nil
}

// Write writes p to the temporary file, as [io.Writer] does.
func (f *File) Write(p []byte) (int, error) {
	if f.done {
		return 0, errDone
	}
	return f.tmp.Write(p)
}

// Commit makes the file's content the target, replacing any file there,
// and fsyncs the target's directory. An existing directory is never
// replaced. On error the temporary file is removed; an error from the
// final directory fsync leaves the new file in place, maybe not yet
// durable.
func (f *File) Commit() error {
	return f.commit(true)
}

// CommitNew is [File.Commit] for a target that must not exist yet: if it
// does, even if it appeared while the file was being written, CommitNew
// fails with an error matching [fs.ErrExist] and leaves it alone. On a file
// system without hard links a target that appears at the very moment of the
// final rename may still be replaced.
func (f *File) CommitNew() error {
	return f.commit(false)
}

func (f *File) commit(overwrite bool) (err error) {
	if f.done {
		return errDone
	}
	f.done = true
	name := f.tmp.Name()
	defer func() {
		if err != nil {
			err = fmt.Errorf("write %s: %w", f.target, errors.Join(err, removeIfExists(f.fsys, name)))
		}
	}()
	if err := f.tmp.Sync(); err != nil {
		return errors.Join(fmt.Errorf("fsync: %w", err), f.tmp.Close())
	}
	if err := f.tmp.Chmod(f.perm); err != nil {
		return errors.Join(fmt.Errorf("chmod: %w", err), f.tmp.Close())
	}
	if err := f.tmp.Close(); err != nil {
		return fmt.Errorf("close: %w", err)
	}
	if fi, err := f.fsys.Lstat(f.target); err == nil {
		if fi.IsDir() {
			return fmt.Errorf("%s is a directory", f.target)
		}
		if !overwrite {
			return &fs.PathError{Op: "create", Path: f.target, Err: fs.ErrExist}
		}
	}
	if overwrite {
		err = f.fsys.Rename(name, f.target)
	} else {
		err = f.linkNew(name)
	}
	if err != nil {
		return err
	}
	dir, _ := splitPath(f.target)
	return f.fsys.SyncDir(dir)
}

// linkNew moves the temporary file name to the target unless the target
// exists. A hard link is atomic about it; on a file system without hard
// links the check made before it is the best we can do.
func (f *File) linkNew(name string) error {
	err := f.fsys.Link(name, f.target)
	switch {
	case err == nil:
		return f.fsys.Remove(name)
	case errors.Is(err, fs.ErrExist):
		return err
	}
	if _, serr := f.fsys.Lstat(f.target); serr == nil {
		return &fs.PathError{Op: "create", Path: f.target, Err: fs.ErrExist}
	}
	return f.fsys.Rename(name, f.target)
}

// Abort closes and removes the temporary file. It does nothing after
// Commit, CommitNew or an earlier Abort, so it can be deferred.
func (f *File) Abort() error {
	if f.done {
		return nil
	}
	f.done = true
	return errors.Join(f.tmp.Close(), removeIfExists(f.fsys, f.tmp.Name()))
}
