package blockstore

import (
	"context"
	"fmt"
	"sync"

	bolt "go.etcd.io/bbolt"
)

// pinCounts counts the pins of each reason, so that a caller can cap the
// pins of one reason (a replica owner's) without scanning them all. Built
// by [Open] with one scan of the pins bucket and kept by Pin and Unpin after
// each commit. A reader may see a count one behind a Pin or Unpin that
// committed but has not returned yet; never one that did not commit.
type pinCounts struct {
	mu sync.Mutex // guards n
	// n maps a reason to its number of pins; a reason with none is absent.
	n map[string]int
}

// loadPinCounts scans the pins bucket of db once.
func loadPinCounts(db *bolt.DB) (*pinCounts, error) {
	pc := &pinCounts{n: make(map[string]int)}
	err := db.View(func(tx *bolt.Tx) error {
		return tx.Bucket(bucketPins).ForEach(func(k, v []byte) error {
			p, err := decodePin(k, v)
			if err != nil {
				return err
			}
			pc.n[p.Reason]++
			return nil
		})
	})
	if err != nil {
		return nil, fmt.Errorf("count pins: %w", err)
	}
	return pc, nil
}

func (pc *pinCounts) add(reason string, d int) {
	pc.mu.Lock()
	defer pc.mu.Unlock()
	if pc.n[reason] += d; pc.n[reason] <= 0 {
		delete(pc.n, reason)
	}
}

func (pc *pinCounts) get(reason string) int {
	pc.mu.Lock()
	defer pc.mu.Unlock()
	return pc.n[reason]
}

// PinCount returns the number of pins of reason, from a counter kept in
// memory: it costs no scan, whatever the number of pins.
func (s *Store) PinCount(ctx context.Context, reason string) (int, error) {
	if err := s.check(ctx); err != nil {
		return 0, fmt.Errorf("count pins: %w", err)
	}
	return s.counts.get(reason), nil
}
