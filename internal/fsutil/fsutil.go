package fsutil

import (
	"errors"
	"fmt"
	"io/fs"
	"path/filepath"
	"unicode/utf8"
)

// WriteFile atomically replaces path with a file holding data, with
// permission bits perm: readers see either the old file or the new one,
// and after a crash path is one of them. When WriteFile returns nil the new
// file and its name are durable. On error the temporary file is removed and
// path is as it was, except that an error from the final directory fsync
// leaves the new file in place, maybe not yet durable.
func WriteFile(path string, data []byte, perm fs.FileMode) error {
	return writeFile(osFS{}, path, data, perm)
}

func writeFile(fsys fileSystem, path string, data []byte, perm fs.FileMode) error {
	f, err := create(fsys, path, perm)
	if err != nil {
		return err
	}
	if _, err := f.Write(data); err != nil {
		return errors.Join(fmt.Errorf("write %s: %w", path, err), f.Abort())
	}
	return f.Commit()
}

// WriteTemp writes data to a new file in dir whose name follows pattern, as
// in [os.CreateTemp], fsyncs and closes it, and returns its path. The file
// has mode 0600. On error nothing is left behind. WriteTemp is the first
// half of an atomic write for callers that rename the file themselves, and
// then must [SyncDir] dir.
func WriteTemp(dir, pattern string, data []byte) (path string, err error) {
	return writeTemp(osFS{}, dir, pattern, data)
}

func writeTemp(fsys fileSystem, dir, pattern string, data []byte) (path string, err error) {
	f, err := fsys.CreateTemp(dir, pattern)
	if err != nil {
		return "", fmt.Errorf("create temp file: %w", err)
	}
	path = f.Name()
	if _, err := f.Write(data); err != nil {
		return "", errors.Join(fmt.Errorf("write temp file: %w", err), f.Close(), removeIfExists(fsys, path))
	}
	if err := f.Sync(); err != nil {
		return "", errors.Join(fmt.Errorf("fsync temp file: %w", err), f.Close(), removeIfExists(fsys, path))
	}
	if err := f.Close(); err != nil {
		return "", errors.Join(fmt.Errorf("close temp file: %w", err), removeIfExists(fsys, path))
	}
	return path, nil
}

// SyncDir fsyncs the directory dir ("" is the current directory), making
// the creations, renames and removals of its entries durable. On Windows it
// does nothing and returns nil (see the package doc).
func SyncDir(dir string) error {
	return osFS{}.SyncDir(dir)
}

// RemoveIfExists removes the file or empty directory at path; a path that
// does not exist is not an error.
func RemoveIfExists(path string) error {
	return removeIfExists(osFS{}, path)
}

func removeIfExists(fsys fileSystem, path string) error {
	if err := fsys.Remove(path); err != nil && !errors.Is(err, fs.ErrNotExist) {
		return err
	}
	return nil
}

// maxTempBase bounds how much of the target's name goes into its temporary
// file's name, so that a target whose name is near the file system's limit
// (255 bytes) still gets a temporary file.
const maxTempBase = 64

// tempPattern returns the [os.CreateTemp] pattern of the temporary file of
// the target named base: ".<base>.tmp-*", base cut to maxTempBase bytes at
// a character boundary.
func tempPattern(base string) string {
	if len(base) > maxTempBase {
		n := maxTempBase
		for n > 0 && !utf8.RuneStart(base[n]) {
			n--
		}
		base = base[:n]
	}
	return "." + base + ".tmp-*"
}

// splitPath returns the directory and the name of path; the directory of a
// bare name is ".".
func splitPath(path string) (dir, base string) {
	return filepath.Dir(path), filepath.Base(path)
}
