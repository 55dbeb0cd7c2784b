package blockstore

import (
	"context"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"sync"

	"golang.org/x/sync/errgroup"
)

// Batch stages blocks for one durable commit, decoupling the caller's
// buffers from fsync latency: [Batch.Stage] writes a block to a temporary
// file without syncing it, so the caller may reuse the block's Data as soon
// as Stage returns, and [Batch.Commit] then fsyncs every staged file
// (concurrently), renames each into place and fsyncs each shard directory
// once. Until Commit returns nil no staged block is guaranteed to survive a
// crash, and a crash leaves only temporary files, which [Open] removes.
//
// A Batch is not safe for concurrent use, but Stage and Commit may be
// called from different goroutines one after the other. A Batch whose
// Commit was not called (or failed) must be discarded with [Batch.Discard].
type Batch struct {
	s      *Store
	staged []staged
}

// staged is one block of a batch: a temporary file still open, or a block
// that was already present.
type staged struct {
	p    blockPath
	f    *os.File // nil if the block was present when staged
	size int64
}

// commitWorkers bounds how many staged files a Commit fsyncs at once: the
// disk here sustains its best fsynced rate with about eight in flight.
const commitWorkers = 8

// NewBatch returns an empty batch of s.
func (s *Store) NewBatch() *Batch { return &Batch{s: s} }

// Len returns the number of blocks staged.
func (b *Batch) Len() int { return len(b.staged) }

// Stage writes blk to a temporary file. It does not retain blk.Data.
func (b *Batch) Stage(ctx context.Context, blk Block) error {
	p, err := b.s.preparePut(ctx, blk)
	if err != nil {
		return err
	}
	if info, err := os.Lstat(b.s.file(p)); err == nil && info.Size() == int64(len(blk.Data)) {
		b.staged = append(b.staged, staged{p: p, size: info.Size()})
		return nil
	}
	if err := b.s.ensureShard(p.shard); err != nil {
		return fmt.Errorf("stage block %s: %w", blk.Cid, err)
	}
	f, err := os.CreateTemp(filepath.Join(b.s.dir, p.shard), tmpPrefix+"*")
	if err != nil {
		return fmt.Errorf("stage block %s: create temp file: %w", blk.Cid, err)
	}
	if _, err := f.Write(blk.Data); err != nil {
		return fmt.Errorf("stage block %s: write temp file: %w", blk.Cid, errors.Join(err, f.Close(), removeTemp(f.Name())))
	}
	b.staged = append(b.staged, staged{p: p, f: f, size: int64(len(blk.Data))})
	return nil
}

// Commit makes every staged block durable; see [Batch]. On error some
// blocks may be stored, and the rest are removed.
func (b *Batch) Commit(ctx context.Context) error {
	var (
		mu     sync.Mutex // guards shards
		shards []string
	)
	g, gctx := errgroup.WithContext(ctx)
	g.SetLimit(commitWorkers)
	for i := range b.staged {
		st := &b.staged[i]
		g.Go(func() error {
			shard, err := b.commitOne(gctx, st)
			if shard != "" {
				mu.Lock()
				shards = append(shards, shard)
				mu.Unlock()
			}
			return err
		})
	}
	werr := g.Wait()
	b.staged = nil
	return errors.Join(werr, b.s.syncShards(shards))
}

// commitOne syncs and renames one staged file, or registers a present
// block's shard for syncing, as putOne does.
func (b *Batch) commitOne(ctx context.Context, st *staged) (string, error) {
	if st.f == nil {
		return b.s.presentShard(st.p.shard), nil
	}
	tmp := st.f.Name()
	f := st.f
	st.f = nil
	if err := ctx.Err(); err != nil {
		return "", errors.Join(err, f.Close(), removeTemp(tmp))
	}
	if err := f.Sync(); err != nil {
		return "", fmt.Errorf("commit block %s: sync: %w", st.p.name, errors.Join(err, f.Close(), removeTemp(tmp)))
	}
	if err := f.Close(); err != nil {
		return "", fmt.Errorf("commit block %s: close: %w", st.p.name, errors.Join(err, removeTemp(tmp)))
	}
	shard, err := b.s.commit(st.p, tmp, st.size)
	if err != nil {
		return shard, fmt.Errorf("commit block %s: %w", st.p.name, errors.Join(err, removeTemp(tmp)))
	}
	return shard, nil
}

// Discard removes the temporary files of blocks not committed.
func (b *Batch) Discard() error {
	var errs []error
	for _, st := range b.staged {
		if st.f != nil {
			errs = append(errs, st.f.Close(), removeTemp(st.f.Name()))
		}
	}
	b.staged = nil
	return errors.Join(errs...)
}
