package blockstore

import (
	"context"
	"errors"
	"fmt"
	"io"
	"iter"
	"os"
	"path/filepath"

	"github.com/ipfs/go-cid"
)

// readDirBatch bounds how many directory entries AllKeys holds at once.
const readDirBatch = 1024

// AllKeys iterates over the CIDs of all stored blocks, in no particular
// order. It skips temporary files. A file whose name is not a CID stored in
// its right shard yields an error item (cid.Undef, err) and iteration goes
// on; a directory that cannot be read, or ctx ending, yields an error item
// and ends the iteration. Blocks put or deleted during the iteration may or
// may not be seen; every block present throughout is seen exactly once.
func (s *Store) AllKeys(ctx context.Context) iter.Seq2[cid.Cid, error] {
	return func(yield func(cid.Cid, error) bool) {
		if err := s.check(ctx); err != nil {
			yield(cid.Undef, fmt.Errorf("list blocks: %w", err))
			return
		}
		top, err := os.ReadDir(s.dir)
		if err != nil {
			yield(cid.Undef, fmt.Errorf("list blocks: %w", err))
			return
		}
		for _, e := range top {
			if !e.IsDir() {
				if !yield(cid.Undef, fmt.Errorf("list blocks: unexpected file %q in blocks dir", e.Name())) {
					return
				}
				continue
			}
			if !s.listShard(ctx, e.Name(), yield) {
				return
			}
		}
	}
}

// listShard yields the blocks of one shard and reports whether to go on.
func (s *Store) listShard(ctx context.Context, shard string, yield func(cid.Cid, error) bool) bool {
	d, err := os.Open(filepath.Join(s.dir, shard))
	if err != nil {
		yield(cid.Undef, fmt.Errorf("list blocks: %w", err))
		return false
	}
	defer d.Close()
	for {
		if err := s.check(ctx); err != nil {
			yield(cid.Undef, fmt.Errorf("list blocks: %w", err))
			return false
		}
		names, err := d.Readdirnames(readDirBatch)
		for _, name := range names {
			if isTemp(name) {
				continue
			}
			c, perr := parseName(shard, name)
			if perr != nil {
				perr = fmt.Errorf("list blocks: %w", perr)
			}
			if !yield(c, perr) {
				return false
			}
		}
		if errors.Is(err, io.EOF) {
			return true
		}
		if err != nil {
			yield(cid.Undef, fmt.Errorf("list blocks: read shard %s: %w", shard, err))
			return false
		}
	}
}
