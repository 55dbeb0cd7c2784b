package config

import (
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"

	"github.com/casd/casd/internal/fsutil"
)

// writeFile writes a file atomically ([fsutil.WriteFile]). It is a
// variable so that white-box tests can inject failures into [Init] and
// [Repo.SaveConfig].
var writeFile = fsutil.WriteFile

func wrapIf(err error, op string) error {
	if err == nil {
		return nil
	}
	return fmt.Errorf("%s: %w", op, err)
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
