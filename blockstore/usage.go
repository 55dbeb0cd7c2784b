package blockstore

import (
	"context"
	"errors"
	"fmt"

	"github.com/ipfs/go-cid"
)

// Usage returns, for each class of pin in [0, classes), the bytes of the
// blocks its pins reach, counting each block once, in the lowest class
// that reaches it: with classes "own" < "held for others", a block shared
// by an own file and a replica is own. class maps a pin reason to its
// class; a reason it maps outside [0, classes) counts in none (what only
// such pins keep is, like unpinned blocks, in no class). What the store
// holds beyond the sum is reached by no counted pin.
//
// The walk is GC's mark ([Store.GC], with the same links and options),
// run once per class over the marks of the lower ones, so it reads each
// distinct block at most once and stats every block it reaches (to size
// the chunks that [WithLeaves] spares it reading). It takes no GC lock: a
// block removed or added meanwhile may or may not be counted. Missing
// blocks count 0.
func (s *Store) Usage(ctx context.Context, links LinkFunc, class func(reason string) int, classes int, opts ...GCOption) ([]int64, error) {
	var o gcOptions
	for _, opt := range opts {
		opt(&o)
	}
	if err := s.check(ctx); err != nil {
		return nil, fmt.Errorf("usage: %w", err)
	}
	if classes < 0 {
		return nil, fmt.Errorf("usage: %d classes", classes)
	}
	pins, err := s.Pins(ctx)
	if err != nil {
		return nil, fmt.Errorf("usage: %w", err)
	}
	roots := make([][]cid.Cid, classes)
	for _, p := range pins {
		if k := class(p.Reason); k >= 0 && k < classes {
			roots[k] = append(roots[k], p.Root)
		}
	}
	sums := make([]int64, classes)
	marks := make(map[cid.Cid]byte)
	limit := s.walkLimit(o.missing)
	for k := range classes {
		var fresh []cid.Cid
		visit := markVisit(links, o.leaves)
		if err := s.walkFrom(ctx, marks, roots[k], limit, visit, func(c cid.Cid) { fresh = append(fresh, c) }); err != nil {
			return nil, fmt.Errorf("usage: mark class %d: %w", k, err)
		}
		if sums[k], err = s.sizeOf(ctx, fresh); err != nil {
			return nil, fmt.Errorf("usage: class %d: %w", k, err)
		}
	}
	return sums, nil
}

// sizeOf returns the total size of the blocks of cs that the store holds.
func (s *Store) sizeOf(ctx context.Context, cs []cid.Cid) (int64, error) {
	var total int64
	for _, c := range cs {
		n, err := s.GetSize(ctx, c)
		if errors.Is(err, ErrNotFound) {
			continue
		}
		if err != nil {
			return 0, err
		}
		total += int64(n)
	}
	return total, nil
}
