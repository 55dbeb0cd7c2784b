package config

import (
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"
)

// writeFile writes a file atomically. It is a variable so that white-box
// tests can inject failures into [Init] and [Repo.SaveConfig].
var writeFile = writeFileAtomic

// writeFileAtomic writes data to path with mode perm: a temporary file in
// the same directory is written, fsynced and renamed over path, then the
// directory is fsynced. A failed write removes its temporary file.
func writeFileAtomic(path string, data []byte, perm fs.FileMode) (err error) {
	dir, base := filepath.Split(path)
	f, err := os.CreateTemp(dir, "."+base+".tmp-*")
	if err != nil {
		return fmt.Errorf("write %s: %w", path, err)
	}
	tmp := f.Name()
	defer func() {
		if err != nil {
			err = errors.Join(err, removeIfExists(tmp))
		}
	}()
	if err := f.Chmod(perm); err != nil {
		_ = f.Close()
		return fmt.Errorf("write %s: chmod: %w", path, err)
	}
	if _, err := f.Write(data); err != nil {
		_ = f.Close()
		return fmt.Errorf("write %s: %w", path, err)
	}
	if err := f.Sync(); err != nil {
		_ = f.Close()
		return fmt.Errorf("write %s: fsync: %w", path, err)
	}
	if err := f.Close(); err != nil {
		return fmt.Errorf("write %s: close: %w", path, err)
	}
	if err := os.Rename(tmp, path); err != nil {
		return fmt.Errorf("write %s: rename: %w", path, err)
	}
	if err := syncDir(dir); err != nil {
		return fmt.Errorf("write %s: %w", path, err)
	}
	return nil
}

// syncDir fsyncs a directory so that renames and creations in it are durable.
func syncDir(dir string) error {
	if dir == "" {
		dir = "."
	}
	d, err := os.Open(dir)
	if err != nil {
		return fmt.Errorf("fsync dir %s: %w", dir, err)
	}
	err = d.Sync()
	return errors.Join(wrapIf(err, "fsync dir "+dir), d.Close())
}

func wrapIf(err error, op string) error {
	if err == nil {
		return nil
	}
	return fmt.Errorf("%s: %w", op, err)
}

// removeIfExists removes path, ignoring a missing file.
func removeIfExists(path string) error {
	if err := os.Remove(path); err != nil && !errors.Is(err, fs.ErrNotExist) {
		return err
	}
	return nil
}

// exists reports whether path exists (without following a final symlink).
func exists(path string) (bool, error) {
	_, err := os.Lstat(path)
	switch {
	case err == nil:
		return true, nil
	case errors.Is(err, fs.ErrNotExist):
		return false, nil
	default:
		return false, err
	}
}

// mkdirAllTracked creates dir and any missing parents with mode perm and
// returns the topmost directory it created ("" if dir already existed), so
// that a caller can undo exactly what it did.
func mkdirAllTracked(dir string, perm fs.FileMode) (created string, err error) {
	for p := dir; ; {
		ok, err := exists(p)
		if err != nil {
			return "", fmt.Errorf("mkdir %s: %w", dir, err)
		}
		if ok {
			break
		}
		created = p
		parent := filepath.Dir(p)
		if parent == p {
			break
		}
		p = parent
	}
	if err := os.MkdirAll(dir, perm); err != nil {
		return "", errors.Join(fmt.Errorf("mkdir %s: %w", dir, err), removeCreated(created))
	}
	return created, nil
}

func removeCreated(path string) error {
	if path == "" {
		return nil
	}
	return os.RemoveAll(path)
}
