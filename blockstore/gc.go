package blockstore

import (
	"context"
	"errors"
	"fmt"
	"io"
	"os"
	"runtime"
	"sync"

	"github.com/ipfs/go-cid"
	"golang.org/x/sync/errgroup"
)

// LinkFunc lists the children of block c from its bytes. GC and Verify call
// it concurrently from several goroutines, so it must be safe for
// concurrent use, and it must not retain data after it returns. A block
// without children returns (nil, nil).
type LinkFunc func(c cid.Cid, data []byte) ([]cid.Cid, error)

// LeafFunc reports, from the bytes of block c, that none of c's children
// has children of its own. GC then marks those children live without
// reading them, which spares it reading every chunk of a large file; a
// child that another block reaches as an inner block is read all the same,
// since the bytes of c may come from a peer that lies.
type LeafFunc func(c cid.Cid, data []byte) bool

// GCOption tunes [Store.GC].
type GCOption func(*gcOptions)

type gcOptions struct {
	leaves  LeafFunc
	missing int
}

// WithLeaves lets GC skip reading blocks that f says are leaves. A block
// that one parent calls a leaf is still read if another reaches it as an
// inner block, so a pin that lies about its children (any peer may store
// one) cannot make GC skip what another pin keeps alive.
func WithLeaves(f LeafFunc) GCOption { return func(o *gcOptions) { o.leaves = f } }

// WithMaxMissing bounds GC's walk to every block in the store plus n
// distinct CIDs that it lacks (n > 0; otherwise [DefaultMaxWalkMissing]).
func WithMaxMissing(n int) GCOption { return func(o *gcOptions) { o.missing = n } }

// DefaultMaxWalkMissing bounds the CIDs that the walks of [Store.GC] and
// [Store.Verify] reach beyond the blocks the store holds: links to absent
// blocks cost memory (about 100 bytes each) but no disk, so a stored
// manifest full of made-up links would otherwise grow the walk's set at no
// cost to its author. 1<<22 is dag's bound on the blocks of one file; a
// walk past the bound ends with [ErrTooManyBlocks].
const DefaultMaxWalkMissing = 1 << 22

// ErrTooManyBlocks is returned when the pins reach more distinct blocks
// than a walk's bound.
var ErrTooManyBlocks = errors.New("blockstore: pins reach too many blocks")

// GCResult tells what a GC removed.
type GCResult struct {
	Removed int   // blocks removed
	Freed   int64 // bytes removed
}

// GCGuard keeps GC from running until release is called. A writer that
// adds a tree holds it from before its first Put until its root is pinned;
// GC waits for all holders, and holds new ones off only while it runs
// (marks and sweeps): a GC that is still waiting for a guard, say one held
// by a slow transfer, never delays a new guard. Guards are shared: any
// number of writers may hold one at once. Calling release more than once is
// harmless.
func (s *Store) GCGuard() (release func()) {
	s.gc.rlock()
	var once sync.Once
	return func() { once.Do(s.gc.runlock) }
}

// GC removes every block that no pin reaches, walking from each pinned root
// with links; blocks missing from the store are skipped. It first waits for
// every [Store.GCGuard] to be released, or for ctx to end (then it
// returns ctx's error and removes nothing). If links fails for a reachable block, GC removes nothing and
// returns the error, since it cannot tell what that block keeps alive;
// likewise if the pins reach more distinct CIDs than every stored block
// plus [DefaultMaxWalkMissing] ([ErrTooManyBlocks]; see [WithMaxMissing]).
// Each distinct block is read at most once, however often it is linked.
// Blocks put without a guard during a GC may be removed.
func (s *Store) GC(ctx context.Context, links LinkFunc, opts ...GCOption) (GCResult, error) {
	var o gcOptions
	for _, opt := range opts {
		opt(&o)
	}
	if err := s.check(ctx); err != nil {
		return GCResult{}, fmt.Errorf("gc: %w", err)
	}
	if err := s.gc.lock(ctx); err != nil {
		return GCResult{}, fmt.Errorf("gc: wait for adds and transfers to finish: %w", err)
	}
	defer s.gc.unlock()

	roots, err := s.pinnedRoots()
	if err != nil {
		return GCResult{}, fmt.Errorf("gc: list pins: %w", err)
	}
	live, err := s.walk(ctx, roots, s.walkLimit(o.missing), markVisit(links, o.leaves))
	if err != nil {
		return GCResult{}, fmt.Errorf("gc: mark: %w", err)
	}

	var res GCResult
	for c, err := range s.AllKeys(ctx) {
		if err != nil {
			if ctxErr := s.check(ctx); ctxErr != nil {
				return res, fmt.Errorf("gc: sweep: %w", ctxErr)
			}
			// A stray file is left alone: GC only removes blocks.
			log.Warnw("gc: skipping entry", "err", err)
			continue
		}
		if _, ok := live[c]; ok {
			continue
		}
		p, err := s.pathOf(c)
		if err != nil {
			return res, fmt.Errorf("gc: sweep: %w", err)
		}
		freed, err := s.remove(p)
		if err != nil {
			return res, fmt.Errorf("gc: remove %s: %w", c, err)
		}
		if freed >= 0 {
			res.Removed++
			res.Freed += freed
		}
	}
	log.Infow("gc done", "roots", len(roots), "live", len(live), "removed", res.Removed, "freed", res.Freed)
	return res, nil
}

// markVisit is the visit of GC's mark, which [Store.Usage] shares: it
// skips missing blocks, lists the children of the others with links, and
// with leaves marks the children of a block that leaves calls a leaf
// without reading them.
func markVisit(links LinkFunc, leaves LeafFunc) visitFunc {
	return func(c cid.Cid, data []byte, err error) ([]cid.Cid, bool, error) {
		if errors.Is(err, ErrNotFound) {
			return nil, false, nil
		}
		if err != nil {
			return nil, false, err
		}
		children, err := links(c, data)
		if err != nil {
			return nil, false, fmt.Errorf("list links of %s: %w", c, err)
		}
		return children, leaves != nil && leaves(c, data), nil
	}
}

// visitFunc is called once per block reached by walk, with the block's
// bytes or the error reading them (wrapping ErrNotFound if it is missing).
// It returns the children to walk next, or, with leaves, children to mark
// as reached without visiting them. data is only valid during the call.
type visitFunc func(c cid.Cid, data []byte, err error) (children []cid.Cid, leaves bool, err2 error)

// Marks of walk, per CID.
const (
	markedLeaf  byte = 1 + iota // reached only as a leaf: live, not visited
	markedVisit                 // queued or visited
)

// walk visits every block reachable from roots once, level by level,
// reading up to GOMAXPROCS blocks at once. It returns the set of CIDs
// reached (in CIDv1 form), present or not, visited or marked as leaves,
// with its mark.
//
// A block that one parent calls a leaf is still visited if another
// reaches it as an inner block: what one pin claims (any peer may store a
// pin) never hides what another pin keeps alive. The first error from
// visit ends the walk, as does reaching more than limit distinct CIDs
// (ErrTooManyBlocks) or the end of ctx.
func (s *Store) walk(ctx context.Context, roots []cid.Cid, limit int, visit visitFunc) (map[cid.Cid]byte, error) {
	marks := make(map[cid.Cid]byte)
	if err := s.walkFrom(ctx, marks, roots, limit, visit, nil); err != nil {
		return nil, err
	}
	return marks, nil
}

// walkFrom is walk continued from the marks of earlier walks: a CID
// already visited is not visited again, one marked as a leaf is visited
// if reached as an inner block. marked, if set, is told each CID that
// this walk marks first (under the walk's lock).
func (s *Store) walkFrom(ctx context.Context, marks map[cid.Cid]byte, roots []cid.Cid, limit int, visit visitFunc, marked func(cid.Cid)) error {
	var level []cid.Cid
	add := func(cs []cid.Cid, visit bool) error {
		for _, c := range cs {
			if !c.Defined() {
				continue
			}
			c = normalize(c)
			m, ok := marks[c]
			if !ok && len(marks) >= limit {
				return fmt.Errorf("%w: more than %d", ErrTooManyBlocks, limit)
			}
			if !ok && marked != nil {
				marked(c)
			}
			switch {
			case visit && m != markedVisit:
				marks[c] = markedVisit
				level = append(level, c)
			case !ok:
				marks[c] = markedLeaf
			}
		}
		return nil
	}
	if err := add(roots, true); err != nil {
		return err
	}
	for len(level) > 0 {
		if err := ctx.Err(); err != nil {
			return err
		}
		cur := level
		level = nil
		var mu sync.Mutex // guards marks and level (through add)
		g, gctx := errgroup.WithContext(ctx)
		g.SetLimit(runtime.GOMAXPROCS(0))
		for _, c := range cur {
			if gctx.Err() != nil {
				break
			}
			g.Go(func() error {
				children, leaves, err := s.visitOne(gctx, c, visit)
				if err != nil {
					return err
				}
				mu.Lock()
				defer mu.Unlock()
				return add(children, !leaves)
			})
		}
		if err := g.Wait(); err != nil {
			return err
		}
		if err := ctx.Err(); err != nil {
			return err
		}
	}
	return nil
}

// walkLimit is the bound of a walk from every pin: every block the store
// holds, plus up to extra CIDs that it lacks.
func (s *Store) walkLimit(extra int) int {
	if extra <= 0 {
		extra = DefaultMaxWalkMissing
	}
	return int(s.blocks.Load()) + extra
}

// visitOne reads c into a pooled buffer and calls visit.
func (s *Store) visitOne(ctx context.Context, c cid.Cid, visit visitFunc) ([]cid.Cid, bool, error) {
	if err := s.check(ctx); err != nil {
		return nil, false, err
	}
	p, err := s.pathOf(c)
	if err != nil {
		return nil, false, err
	}
	bp := s.bufPool.Get().(*[]byte)
	defer s.bufPool.Put(bp)
	data, err := readInto(s.file(p), (*bp)[:0])
	if err != nil {
		err = fmt.Errorf("read block %s: %w", c, notFound(err))
	}
	return visit(c, data, err)
}

// readInto reads the file at path into buf, which has MaxBlockSize
// capacity. A file longer than that is an error wrapping ErrTooLarge.
func readInto(path string, buf []byte) ([]byte, error) {
	f, err := os.Open(path)
	if err != nil {
		return nil, err
	}
	defer f.Close()
	for {
		n, err := f.Read(buf[len(buf):cap(buf)])
		buf = buf[:len(buf)+n]
		if errors.Is(err, io.EOF) {
			return buf, nil
		}
		if err != nil {
			return nil, err
		}
		if len(buf) == cap(buf) {
			var one [1]byte
			if n, _ := f.Read(one[:]); n > 0 {
				return nil, fmt.Errorf("block file %s exceeds %d bytes: %w", path, MaxBlockSize, ErrTooLarge)
			}
			return buf, nil
		}
	}
}
