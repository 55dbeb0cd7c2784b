//go:build !windows

package fsutil

import (
	"errors"
	"fmt"
	"os"
)

func syncDir(dir string) error {
	if dir == "" {
		dir = "."
	}
	d, err := os.Open(dir)
	if err != nil {
		return fmt.Errorf("fsync dir: %w", err)
	}
	if err := d.Sync(); err != nil {
		return errors.Join(fmt.Errorf("fsync dir %s: %w", dir, err), d.Close())
	}
	if err := d.Close(); err != nil {
		return fmt.Errorf("fsync dir %s: %w", dir, err)
	}
	return nil
}
