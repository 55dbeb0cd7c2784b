package blockstore

import (
	"context"
	"fmt"
	"slices"
	"time"

	"github.com/ipfs/go-cid"
	bolt "go.etcd.io/bbolt"
)

// Pins with an expiry hold a replica under a lease: the holder extends
// the expiry when the owner renews, and drops the pins that lapsed. Each
// change is one bbolt transaction, so a renewal and a sweep of the same
// pin cannot interleave: the sweep removes the pin only if it is still
// expired when it commits, and a renewal extends only a pin that still
// exists (it never brings back one the sweep removed, whose blocks GC may
// already have taken).

// PinUntil pins root for reason until expires (zero: never), durably. An
// existing (root, reason) pin keeps its creation time and is extended to
// the later of its expiry and expires: a pin is never shortened, and one
// that never expires stays so.
func (s *Store) PinUntil(ctx context.Context, root cid.Cid, reason string, expires time.Time) error {
	if _, err := s.extendPin(ctx, root, reason, expires, true); err != nil {
		return fmt.Errorf("pin %s until %s: %w", root, expires.UTC().Format(time.RFC3339), err)
	}
	return nil
}

// RenewPin extends the existing (root, reason) pin like [Store.PinUntil]
// and reports whether it exists; it creates no pin.
func (s *Store) RenewPin(ctx context.Context, root cid.Cid, reason string, expires time.Time) (held bool, err error) {
	held, err = s.extendPin(ctx, root, reason, expires, false)
	if err != nil {
		return false, fmt.Errorf("renew pin %s: %w", root, err)
	}
	return held, nil
}

// extendPin extends the (root, reason) pin to expires, or, with create,
// makes it if it does not exist. It reports whether the pin exists now.
func (s *Store) extendPin(ctx context.Context, root cid.Cid, reason string, expires time.Time, create bool) (bool, error) {
	if err := s.check(ctx); err != nil {
		return false, err
	}
	root = normalize(root)
	if err := checkPin(root, reason); err != nil {
		return false, err
	}
	k := pinKey(root, reason)
	now := time.Now()
	var held, added bool
	err := s.db.Update(func(tx *bolt.Tx) error {
		b := tx.Bucket(bucketPins)
		v := b.Get(k)
		if v == nil {
			if !create {
				return nil
			}
			held, added = true, true
			return b.Put(k, pinValue(now, expires))
		}
		held = true
		p, err := decodePin(k, v)
		if err != nil {
			return err
		}
		if later := laterExpiry(p.Expires, expires); !later.Equal(p.Expires) || len(v) != 16 {
			return b.Put(k, pinValue(p.Created, later))
		}
		return nil
	})
	if err != nil {
		return false, err
	}
	if added {
		s.counts.add(reason, 1)
	}
	return held, nil
}

// laterExpiry returns the later of two expiries, where zero (never) is
// later than any time.
func laterExpiry(a, b time.Time) time.Time {
	if a.IsZero() || b.IsZero() {
		return time.Time{}
	}
	if b.After(a) {
		return b
	}
	return a
}

// expired reports whether p has lapsed at now.
func (p Pin) expired(now time.Time) bool {
	return !p.Expires.IsZero() && !p.Expires.After(now)
}

// ExpiredPins returns the pins whose expiry is at or before now, ordered
// like [Store.Pins].
func (s *Store) ExpiredPins(ctx context.Context, now time.Time) ([]Pin, error) {
	pins, err := s.Pins(ctx)
	if err != nil {
		return nil, fmt.Errorf("expired pins: %w", err)
	}
	out := pins[:0]
	for _, p := range pins {
		if p.expired(now) {
			out = append(out, p)
		}
	}
	return out, nil
}

// NextExpiry returns the earliest expiry among the pins, and false if no
// pin expires.
func (s *Store) NextExpiry(ctx context.Context) (time.Time, bool, error) {
	pins, err := s.Pins(ctx)
	if err != nil {
		return time.Time{}, false, fmt.Errorf("next expiry: %w", err)
	}
	var next time.Time
	for _, p := range pins {
		if !p.Expires.IsZero() && (next.IsZero() || p.Expires.Before(next)) {
			next = p.Expires
		}
	}
	return next, !next.IsZero(), nil
}

// UnpinExpired removes, in one transaction, every pin whose expiry is at
// or before now, and returns them ordered like [Store.Pins]. Their blocks
// stay until GC removes them.
func (s *Store) UnpinExpired(ctx context.Context, now time.Time) ([]Pin, error) {
	if err := s.check(ctx); err != nil {
		return nil, fmt.Errorf("unpin expired: %w", err)
	}
	var gone []Pin
	err := s.db.Update(func(tx *bolt.Tx) error {
		gone = nil // a retried transaction starts over
		b := tx.Bucket(bucketPins)
		var keys [][]byte
		err := b.ForEach(func(k, v []byte) error {
			p, err := decodePin(k, v)
			if err != nil {
				return err
			}
			if p.expired(now) {
				gone = append(gone, p)
				keys = append(keys, pinKey(p.Root, p.Reason))
			}
			return nil
		})
		if err != nil {
			return err
		}
		// Deleted after the scan: bbolt's cursor skips keys when one is
		// deleted under it.
		for _, k := range keys {
			if err := b.Delete(k); err != nil {
				return err
			}
		}
		return nil
	})
	if err != nil {
		return nil, fmt.Errorf("unpin expired: %w", err)
	}
	for _, p := range gone {
		s.counts.add(p.Reason, -1)
	}
	slices.SortFunc(gone, comparePins)
	return gone, nil
}
