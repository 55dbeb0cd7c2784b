package blockstore

import (
	"context"
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"

	"github.com/casd/casd/internal/fsutil"
)

// Rewrite replaces the stored copy of b with b.Data, durably, after
// checking that b.Data hashes to b.Cid (an error wrapping [ErrCorrupt] or
// [ErrBadCid] otherwise, and nothing is written). It is how a block found
// damaged on disk (a flipped bit, a bad sector) is repaired with a good
// copy fetched from a peer: unlike [Store.Put], it replaces a present file
// even when its length is right, since a damaged block usually keeps its
// length. The new file is written aside, fsynced and renamed over the old
// one, so a reader sees the old bytes or the new ones, never a mix, and a
// crash leaves one or the other. A block that is not present is stored as
// Put stores it. Rewrite does not retain b.Data. Rewriting a good block
// with its own bytes is harmless.
func (s *Store) Rewrite(ctx context.Context, b Block) error {
	p, err := s.preparePut(ctx, b)
	if err != nil {
		return fmt.Errorf("rewrite: %w", err)
	}
	if err := VerifyBlock(b.Cid, b.Data); err != nil {
		return fmt.Errorf("rewrite: %w", err)
	}
	if err := s.ensureShard(p.shard); err != nil {
		return fmt.Errorf("rewrite block %s: %w", b.Cid, err)
	}
	tmp, err := fsutil.WriteTemp(filepath.Join(s.dir, p.shard), tmpPrefix+"*", b.Data)
	if err != nil {
		return fmt.Errorf("rewrite block %s: %w", b.Cid, err)
	}
	if err := s.replace(p, tmp, int64(len(b.Data))); err != nil {
		return fmt.Errorf("rewrite block %s: %w", b.Cid, errors.Join(err, removeTemp(tmp)))
	}
	if err := s.syncShards([]string{p.shard}); err != nil {
		return fmt.Errorf("rewrite block %s: %w", b.Cid, err)
	}
	log.Infow("rewrote damaged block", "cid", b.Cid, "bytes", len(b.Data))
	return nil
}

// replace renames the fsynced temporary file tmp over p, whatever is
// there, under p's stripe lock, and updates the counters: a block present
// before keeps its count and changes its bytes by the difference in size.
// On success the caller must pass p's shard to syncShards, which releases
// the pending registration taken here.
func (s *Store) replace(p blockPath, tmp string, size int64) error {
	final := s.file(p)
	mu := s.stripe(p)
	mu.Lock()
	defer mu.Unlock()
	var old int64 = -1
	if info, err := os.Lstat(final); err == nil {
		old = info.Size()
	} else if !errors.Is(err, fs.ErrNotExist) {
		return err
	}
	return s.renameLocked(p, tmp, size, old)
}
