package blockstore

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"runtime"
	"slices"
	"sync"

	"github.com/ipfs/go-cid"
	"golang.org/x/sync/errgroup"
)

// VerifyReport tells what Verify found.
type VerifyReport struct {
	// Checked is the number of blocks rehashed.
	Checked int
	// Corrupt lists blocks whose bytes do not hash to their CID, that
	// cannot be read, or (if reachable from a pin) whose links LinkFunc
	// cannot list. Sorted by CID bytes.
	Corrupt []cid.Cid
	// Missing lists blocks reachable from a pin that are not in the store.
	// Sorted by CID bytes.
	Missing []cid.Cid
}

// Verify rehashes every block and walks every pin, reading each block
// once: first the blocks reachable from pins (listing their children with
// links), then the rest, GOMAXPROCS at a time. A corrupt block's children
// are not walked, since its links cannot be trusted. Blocks deleted while
// Verify runs are not reported. Verify returns an error only if it cannot
// do its job (ctx ends, the store cannot be listed, the pins reach more
// distinct CIDs than every stored block plus [DefaultMaxWalkMissing]: an
// error wrapping [ErrTooManyBlocks]); what it finds wrong is in the report.
func (s *Store) Verify(ctx context.Context, links LinkFunc) (VerifyReport, error) {
	if err := s.check(ctx); err != nil {
		return VerifyReport{}, fmt.Errorf("verify: %w", err)
	}
	roots, err := s.pinnedRoots()
	if err != nil {
		return VerifyReport{}, fmt.Errorf("verify: list pins: %w", err)
	}
	var (
		mu  sync.Mutex // guards rep
		rep VerifyReport
	)
	corrupt := func(c cid.Cid, why error) {
		log.Debugw("corrupt block", "cid", c, "err", why)
		mu.Lock()
		rep.Corrupt = append(rep.Corrupt, c)
		mu.Unlock()
	}
	// Reachable blocks: verify, then descend.
	walked, err := s.walk(ctx, roots, s.walkLimit(0), func(c cid.Cid, data []byte, err error) ([]cid.Cid, bool, error) {
		if errors.Is(err, ErrNotFound) {
			mu.Lock()
			rep.Missing = append(rep.Missing, c)
			mu.Unlock()
			return nil, false, nil
		}
		mu.Lock()
		rep.Checked++
		mu.Unlock()
		if err == nil {
			err = VerifyBlock(c, data)
		}
		if err != nil {
			corrupt(c, err)
			return nil, false, nil
		}
		children, err := links(c, data)
		if err != nil {
			corrupt(c, fmt.Errorf("list links: %w", err))
			return nil, false, nil
		}
		return children, false, nil
	})
	if err != nil {
		return VerifyReport{}, fmt.Errorf("verify: walk pins: %w", err)
	}

	// The rest: a lister feeds workers.
	g, gctx := errgroup.WithContext(ctx)
	todo := make(chan cid.Cid)
	g.Go(func() error {
		defer close(todo)
		for c, err := range s.AllKeys(gctx) {
			if err != nil {
				if cerr := s.check(gctx); cerr != nil {
					return cerr
				}
				log.Warnw("verify: skipping entry", "err", err)
				continue
			}
			if _, ok := walked[c]; ok {
				continue
			}
			select {
			case todo <- c:
			case <-gctx.Done():
				return gctx.Err()
			}
		}
		return nil
	})
	for range runtime.GOMAXPROCS(0) {
		g.Go(func() error {
			for c := range todo {
				_, _, err := s.visitOne(gctx, c, func(c cid.Cid, data []byte, err error) ([]cid.Cid, bool, error) {
					if errors.Is(err, ErrNotFound) {
						return nil, false, nil // deleted meanwhile
					}
					mu.Lock()
					rep.Checked++
					mu.Unlock()
					if err == nil {
						err = VerifyBlock(c, data)
					}
					if err != nil {
						corrupt(c, err)
					}
					return nil, false, nil
				})
				if err != nil {
					return err
				}
			}
			return nil
		})
	}
	if err := g.Wait(); err != nil {
		return VerifyReport{}, fmt.Errorf("verify: %w", err)
	}
	byBytes := func(a, b cid.Cid) int { return bytes.Compare(a.Bytes(), b.Bytes()) }
	slices.SortFunc(rep.Corrupt, byBytes)
	slices.SortFunc(rep.Missing, byBytes)
	log.Infow("verify done", "checked", rep.Checked, "corrupt", len(rep.Corrupt), "missing", len(rep.Missing))
	return rep, nil
}
