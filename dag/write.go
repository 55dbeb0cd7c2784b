package dag

import (
	"context"
	"errors"
	"fmt"

	"github.com/casd/casd/blockstore"
)

// write stores each batch, with the manifest blocks emitted meanwhile, and
// recycles the chunk buffers once they are no longer needed: at once when
// the putter stages blocks (see [BatchPutter]), else once durable.
func (a *adder) write(ctx context.Context, batches <-chan batch, pool chan<- *chunkBuf) error {
	if bp, ok := a.put.(BatchPutter); ok {
		return a.writeStaged(ctx, bp, batches, pool)
	}
	for bt := range batches {
		blocks := make([]blockstore.Block, 0, len(bt.chunks)+len(bt.manifests))
		for _, b := range bt.chunks {
			blocks = append(blocks, b.block)
		}
		blocks = append(blocks, bt.manifests...)
		if err := a.putMany(ctx, blocks); err != nil {
			return err
		}
		a.progress(bt.plain())
		for _, b := range bt.chunks {
			pool <- b // never blocks: the pool has room for every buffer
		}
	}
	return nil
}

// BatchPutter is implemented by block stores that can stage blocks and
// make them durable later (blockstore.Store): [Add] then reuses a chunk's
// buffer as soon as it is staged, while earlier batches are fsynced, so
// fsync latency does not stall sealing.
type BatchPutter interface {
	NewBatch() *blockstore.Batch
}

// commitBytes is how much a staged batch holds before it is committed.
const commitBytes = 32 << 20

// stagedBatch is a batch of staged blocks on its way to Commit.
type stagedBatch struct {
	b     *blockstore.Batch
	plain int64
	bytes int64
}

// writeStaged stages blocks as they come and commits them in batches of
// commitBytes, one commit running while the next batch is staged.
func (a *adder) writeStaged(ctx context.Context, bp BatchPutter, batches <-chan batch, pool chan<- *chunkBuf) (err error) {
	commits := make(chan stagedBatch, 1)
	committed := make(chan error, 1)
	go func() { committed <- a.commitAll(ctx, commits) }() // owned here: we wait on committed
	cur := stagedBatch{b: bp.NewBatch()}
	defer func() {
		if err != nil {
			err = errors.Join(err, cur.b.Discard())
		}
		close(commits)
		err = errors.Join(err, <-committed)
	}()
	for bt := range batches {
		cur.plain += bt.plain() // before the buffers go back to the reader
		for _, b := range bt.chunks {
			if err := cur.stage(ctx, b.block); err != nil {
				return err
			}
			pool <- b // never blocks: the pool has room for every buffer
		}
		for _, m := range bt.manifests {
			if err := cur.stage(ctx, m); err != nil {
				return err
			}
		}
		if cur.bytes >= commitBytes {
			select {
			case commits <- cur:
			case <-ctx.Done():
				return ctx.Err()
			}
			cur = stagedBatch{b: bp.NewBatch()}
		}
	}
	if cur.b.Len() > 0 {
		select {
		case commits <- cur:
		case <-ctx.Done():
			return ctx.Err()
		}
		cur = stagedBatch{b: bp.NewBatch()}
	}
	return nil
}

func (s *stagedBatch) stage(ctx context.Context, b blockstore.Block) error {
	if err := s.b.Stage(ctx, b); err != nil {
		return fmt.Errorf("store block %s: %w", b.Cid, err)
	}
	s.bytes += int64(len(b.Data))
	return nil
}

// commitAll commits staged batches in order until commits is closed. After
// a failure it discards the rest.
func (a *adder) commitAll(ctx context.Context, commits <-chan stagedBatch) error {
	var err error
	for sb := range commits {
		if err != nil {
			err = errors.Join(err, sb.b.Discard())
			continue
		}
		n := sb.b.Len()
		if cerr := sb.b.Commit(ctx); cerr != nil {
			err = fmt.Errorf("store %d blocks: %w", n, cerr)
			continue
		}
		a.blocks += n
		a.bytes += sb.bytes
		a.progress(sb.plain)
	}
	return err
}

func (a *adder) progress(plain int64) {
	a.plain += plain
	if a.opt.Progress != nil {
		a.opt.Progress(a.plain)
	}
}

func (bt *batch) plain() int64 {
	var n int64
	for _, b := range bt.chunks {
		n += int64(b.n)
	}
	return n
}

func (a *adder) putMany(ctx context.Context, blocks []blockstore.Block) error {
	if err := a.put.PutMany(ctx, blocks); err != nil {
		return fmt.Errorf("store %d blocks: %w", len(blocks), err)
	}
	for _, b := range blocks {
		a.blocks++
		a.bytes += int64(len(b.Data))
	}
	return nil
}
