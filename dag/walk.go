package dag

import (
	"context"
	"errors"
	"fmt"

	"github.com/ipfs/go-cid"
)

// DefaultMaxWalkBlocks is the most distinct blocks [Walk] visits unless
// [WithMaxBlocks] says otherwise: 1<<22, a 4 TiB file at the default chunk
// size (1 TiB at [MinChunkSize]); a 5 GiB file at 1 MiB chunks has about
// 5,200 blocks. The visited set costs on the order of 100 bytes a block, so the bound
// also caps a walk's memory (about 400 MiB at the bound).
const DefaultMaxWalkBlocks = 1 << 22

// ErrTooManyBlocks is returned by [Walk] for a file of more distinct blocks
// than its bound: a hostile root, or a file far larger than any casd writes.
var ErrTooManyBlocks = errors.New("dag: file has too many blocks to walk")

// WalkOption tunes [Walk].
type WalkOption func(*walkConfig)

type walkConfig struct{ max int }

// WithMaxBlocks bounds a walk to n distinct blocks (n > 0; otherwise
// [DefaultMaxWalkBlocks]): the walk returns [ErrTooManyBlocks] on reaching
// block n+1.
func WithMaxBlocks(n int) WalkOption { return func(c *walkConfig) { c.max = n } }

// Walk calls fn with the CID of every distinct block of the file rooted at
// root, root first, then depth-first in file order; a block linked more
// than once (the same chunk twice in a file, or a hostile manifest that
// links one block many times) is passed to fn, and descended into, only
// the first time. It needs no key: links are in the clear. Manifest
// blocks are fetched and verified; chunks are not fetched (the height in
// the clear says which links are chunks). A root that is a chunk gives
// [ErrNotFile].
//
// A walk visits each distinct block once and looks each link up once,
// whatever the manifest claims (a bomb whose levels each link 1,024 times
// to one block costs 1,024 lookups a level, not 1,024 to the height), and
// stops with an error wrapping [ErrTooManyBlocks] past its bound
// ([DefaultMaxWalkBlocks], or [WithMaxBlocks]), or with ctx's error once
// ctx ends.
func Walk(ctx context.Context, get BlockGetter, root cid.Cid, fn func(c cid.Cid, kind byte) error, opts ...WalkOption) error {
	cfg := walkConfig{max: DefaultMaxWalkBlocks}
	for _, opt := range opts {
		opt(&cfg)
	}
	if cfg.max <= 0 {
		cfg.max = DefaultMaxWalkBlocks
	}
	if err := ctx.Err(); err != nil {
		return err
	}
	m, err := getRoot(ctx, get, root)
	if err != nil {
		return err
	}
	w := &walker{ctx: ctx, get: get, fn: fn, root: root, max: cfg.max, seen: make(map[cid.Cid]struct{})}
	if _, err := w.visit(root, KindRoot); err != nil {
		return err
	}
	return w.links(m)
}

// walker is the state of one [Walk].
type walker struct {
	ctx  context.Context
	get  BlockGetter
	fn   func(c cid.Cid, kind byte) error
	root cid.Cid
	max  int
	seen map[cid.Cid]struct{} // blocks passed to fn
}

// visit passes c to fn unless it was passed before, and reports whether
// it did.
func (w *walker) visit(c cid.Cid, kind byte) (first bool, err error) {
	if err := w.ctx.Err(); err != nil {
		return false, err
	}
	if _, ok := w.seen[c]; ok {
		return false, nil
	}
	if len(w.seen) >= w.max {
		return false, fmt.Errorf("walk %s: %w: more than %d", w.root, ErrTooManyBlocks, w.max)
	}
	w.seen[c] = struct{}{}
	return true, w.fn(c, kind)
}

func (w *walker) links(m *manifestBlock) error {
	for _, c := range m.links {
		kind := KindNode
		if m.height == 0 {
			kind = KindChunk
		}
		first, err := w.visit(c, kind)
		if err != nil {
			return err
		}
		if !first || kind == KindChunk {
			continue
		}
		data, err := getVerified(w.ctx, w.get, c)
		if err != nil {
			return err
		}
		child, err := parseManifestBlock(data)
		if err != nil {
			return fmt.Errorf("walk %s: %w", c, err)
		}
		if child.kind != KindNode || child.height != m.height-1 {
			return fmt.Errorf("walk %s: %w: kind %d height %d under height %d", c, ErrMalformed, child.kind, child.height, m.height)
		}
		if err := w.links(child); err != nil {
			return err
		}
	}
	return nil
}
