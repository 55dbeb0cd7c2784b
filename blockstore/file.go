package blockstore

import (
	"fmt"

	"github.com/casd/casd/internal/fsutil"
)

// removeTemp removes a temporary block file; a missing one is not an error.
func removeTemp(path string) error {
	if err := fsutil.RemoveIfExists(path); err != nil {
		return fmt.Errorf("remove temp file: %w", err)
	}
	return nil
}
