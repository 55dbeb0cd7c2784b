package blockstore

import (
	"errors"
	"fmt"
	"io/fs"
	"os"
)

// writeTemp writes data to a new temporary file in dir, fsyncs and closes
// it, and returns its path. On error it removes the file.
func writeTemp(dir string, data []byte) (path string, err error) {
	f, err := os.CreateTemp(dir, tmpPrefix+"*")
	if err != nil {
		return "", fmt.Errorf("create temp file: %w", err)
	}
	path = f.Name()
	defer func() {
		if err != nil {
			err = errors.Join(err, removeTemp(path))
		}
	}()
	if _, err := f.Write(data); err != nil {
		return "", errors.Join(fmt.Errorf("write temp file: %w", err), f.Close())
	}
	if err := f.Sync(); err != nil {
		return "", errors.Join(fmt.Errorf("sync temp file: %w", err), f.Close())
	}
	if err := f.Close(); err != nil {
		return "", fmt.Errorf("close temp file: %w", err)
	}
	return path, nil
}

func removeTemp(path string) error {
	if err := os.Remove(path); err != nil && !errors.Is(err, fs.ErrNotExist) {
		return fmt.Errorf("remove temp file: %w", err)
	}
	return nil
}

// syncDir fsyncs a directory, making renames and creations in it durable.
func syncDir(dir string) error {
	d, err := os.Open(dir)
	if err != nil {
		return fmt.Errorf("sync dir: %w", err)
	}
	if err := d.Sync(); err != nil {
		return errors.Join(fmt.Errorf("sync dir %s: %w", dir, err), d.Close())
	}
	if err := d.Close(); err != nil {
		return fmt.Errorf("sync dir %s: %w", dir, err)
	}
	return nil
}
