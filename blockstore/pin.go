package blockstore

import (
	"bytes"
	"context"
	"encoding/binary"
	"errors"
	"fmt"
	"slices"
	"time"

	"github.com/ipfs/go-cid"
	bolt "go.etcd.io/bbolt"
	bolterrors "go.etcd.io/bbolt/errors"
)

// MaxReasonLen is the longest pin reason Pin accepts, in bytes.
const MaxReasonLen = 1024

// metaVersion is the version of the metadata schema below. Open refuses a
// database written by a newer version, and moves one of version 1 (pin
// values of 8 bytes, which version 2 still reads) to 2, so that an older
// casd refuses a database whose pins it could not decode instead of
// failing on its first 16-byte pin value.
const metaVersion = 2

var (
	bucketMeta = []byte("meta")
	bucketPins = []byte("pins")
	keyVersion = []byte("version")
)

// Pin keeps a root and every block reachable from it out of GC.
type Pin struct {
	Root    cid.Cid
	Reason  string    // why the root is kept: "owner", "replica:<owner-key>", ...
	Created time.Time // when the (Root, Reason) pin was first made
	// Expires is when the pin lapses (a replica's lease); zero: never.
	// The store only records it: [Store.UnpinExpired] removes lapsed pins
	// when its caller asks, and until then they keep their blocks.
	Expires time.Time
}

// The pins bucket maps root bytes followed by the reason bytes to the
// creation time and the expiry in Unix nanoseconds (8 bytes each,
// big-endian; an expiry of 0 is none). A value of 8 bytes, written by
// schema version 1, is a creation time alone: a pin that never expires.
// CID bytes are self-delimiting, so a key splits back without a
// separator, and a prefix scan over one root's bytes yields exactly that
// root's pins.

func pinKey(root cid.Cid, reason string) []byte {
	rb := root.Bytes()
	k := make([]byte, 0, len(rb)+len(reason))
	return append(append(k, rb...), reason...)
}

func decodePin(k, v []byte) (Pin, error) {
	n, root, err := cid.CidFromBytes(k)
	if err != nil {
		return Pin{}, fmt.Errorf("decode pin key: %w", err)
	}
	if len(v) != 8 && len(v) != 16 {
		return Pin{}, fmt.Errorf("decode pin %s: value of %d bytes, want 8 or 16", root, len(v))
	}
	p := Pin{Root: root, Reason: string(k[n:]), Created: time.Unix(0, int64(binary.BigEndian.Uint64(v)))}
	if len(v) == 16 {
		if e := int64(binary.BigEndian.Uint64(v[8:])); e != 0 {
			p.Expires = time.Unix(0, e)
		}
	}
	return p, nil
}

// pinValue encodes a pin's creation time and expiry (zero: never).
func pinValue(created, expires time.Time) []byte {
	v := binary.BigEndian.AppendUint64(make([]byte, 0, 16), uint64(created.UnixNano()))
	var e int64
	if !expires.IsZero() {
		if e = expires.UnixNano(); e == 0 {
			e = 1 // 0 encodes "never"
		}
	}
	return binary.BigEndian.AppendUint64(v, uint64(e))
}

func openMeta(path string) (*bolt.DB, error) {
	db, err := bolt.Open(path, filePerm, &bolt.Options{Timeout: lockTimeout})
	if err != nil {
		if errors.Is(err, bolterrors.ErrTimeout) {
			return nil, fmt.Errorf("open metadata %s: %w: %w", path, ErrLocked, err)
		}
		return nil, fmt.Errorf("open metadata %s: %w", path, err)
	}
	err = db.Update(func(tx *bolt.Tx) error {
		meta, err := tx.CreateBucketIfNotExists(bucketMeta)
		if err != nil {
			return err
		}
		if _, err := tx.CreateBucketIfNotExists(bucketPins); err != nil {
			return err
		}
		v := meta.Get(keyVersion)
		if v != nil && (len(v) != 4 || binary.BigEndian.Uint32(v) > metaVersion) {
			return fmt.Errorf("metadata schema version %x is newer than this casd supports (%d)", v, metaVersion)
		}
		if v == nil || binary.BigEndian.Uint32(v) < metaVersion {
			return meta.Put(keyVersion, binary.BigEndian.AppendUint32(nil, metaVersion))
		}
		return nil
	})
	if err != nil {
		return nil, errors.Join(fmt.Errorf("open metadata %s: %w", path, err), db.Close())
	}
	return db, nil
}

// normalize returns the CIDv1 form of c, under which it is stored.
func normalize(c cid.Cid) cid.Cid {
	if c.Defined() && c.Version() == 0 {
		return cid.NewCidV1(c.Type(), c.Hash())
	}
	return c
}

func checkPin(root cid.Cid, reason string) error {
	if !root.Defined() {
		return errUndefinedCid
	}
	if reason == "" {
		return errors.New("blockstore: empty pin reason")
	}
	if len(reason) > MaxReasonLen {
		return fmt.Errorf("blockstore: pin reason of %d bytes exceeds %d", len(reason), MaxReasonLen)
	}
	return nil
}

// Pin pins root for reason, durably. Pinning an existing (root, reason)
// again is a no-op that keeps its first creation time. Pin does not check
// that root is present. To pin blocks that are already stored, hold
// [Store.GCGuard] from before checking that they are present until Pin
// returns, or a concurrent GC may remove them in between.
func (s *Store) Pin(ctx context.Context, root cid.Cid, reason string) error {
	if err := s.check(ctx); err != nil {
		return fmt.Errorf("pin %s: %w", root, err)
	}
	root = normalize(root)
	if err := checkPin(root, reason); err != nil {
		return fmt.Errorf("pin %s: %w", root, err)
	}
	k := pinKey(root, reason)
	now := time.Now()
	added := false
	err := s.db.Update(func(tx *bolt.Tx) error {
		b := tx.Bucket(bucketPins)
		if b.Get(k) != nil {
			return nil
		}
		added = true
		return b.Put(k, pinValue(now, time.Time{}))
	})
	if err != nil {
		return fmt.Errorf("pin %s: %w", root, err)
	}
	if added {
		s.counts.add(reason, 1)
	}
	return nil
}

// Unpin removes the pin (root, reason), durably. Removing a pin that does
// not exist is a no-op. The root's blocks stay until GC removes them.
func (s *Store) Unpin(ctx context.Context, root cid.Cid, reason string) error {
	if err := s.check(ctx); err != nil {
		return fmt.Errorf("unpin %s: %w", root, err)
	}
	root = normalize(root)
	if err := checkPin(root, reason); err != nil {
		return fmt.Errorf("unpin %s: %w", root, err)
	}
	k := pinKey(root, reason)
	removed := false
	err := s.db.Update(func(tx *bolt.Tx) error {
		b := tx.Bucket(bucketPins)
		if b.Get(k) == nil {
			return nil
		}
		removed = true
		return b.Delete(k)
	})
	if err != nil {
		return fmt.Errorf("unpin %s: %w", root, err)
	}
	if removed {
		s.counts.add(reason, -1)
	}
	return nil
}

// Pins returns every pin, ordered by creation time, then root, then
// reason.
func (s *Store) Pins(ctx context.Context) ([]Pin, error) {
	if err := s.check(ctx); err != nil {
		return nil, fmt.Errorf("list pins: %w", err)
	}
	pins, err := s.scanPins(nil)
	if err != nil {
		return nil, fmt.Errorf("list pins: %w", err)
	}
	return pins, nil
}

// PinsOf returns the pins of root, ordered like [Store.Pins]. It returns
// an empty slice if root is not pinned.
func (s *Store) PinsOf(ctx context.Context, root cid.Cid) ([]Pin, error) {
	if err := s.check(ctx); err != nil {
		return nil, fmt.Errorf("list pins of %s: %w", root, err)
	}
	if !root.Defined() {
		return nil, fmt.Errorf("list pins: %w", errUndefinedCid)
	}
	pins, err := s.scanPins(normalize(root).Bytes())
	if err != nil {
		return nil, fmt.Errorf("list pins of %s: %w", root, err)
	}
	return pins, nil
}

// scanPins returns the sorted pins whose key starts with prefix.
func (s *Store) scanPins(prefix []byte) ([]Pin, error) {
	pins := []Pin{}
	err := s.db.View(func(tx *bolt.Tx) error {
		c := tx.Bucket(bucketPins).Cursor()
		for k, v := c.Seek(prefix); k != nil && bytes.HasPrefix(k, prefix); k, v = c.Next() {
			p, err := decodePin(k, v)
			if err != nil {
				return err
			}
			pins = append(pins, p)
		}
		return nil
	})
	if err != nil {
		return nil, err
	}
	slices.SortFunc(pins, comparePins)
	return pins, nil
}

func comparePins(a, b Pin) int {
	if c := a.Created.Compare(b.Created); c != 0 {
		return c
	}
	if c := bytes.Compare(a.Root.Bytes(), b.Root.Bytes()); c != 0 {
		return c
	}
	if a.Reason < b.Reason {
		return -1
	}
	if a.Reason > b.Reason {
		return 1
	}
	return 0
}

// pinnedRoots returns the distinct pinned roots.
func (s *Store) pinnedRoots() ([]cid.Cid, error) {
	pins, err := s.scanPins(nil)
	if err != nil {
		return nil, err
	}
	roots := make([]cid.Cid, 0, len(pins))
	seen := make(map[cid.Cid]bool, len(pins))
	for _, p := range pins {
		if !seen[p.Root] {
			seen[p.Root] = true
			roots = append(roots, p.Root)
		}
	}
	return roots, nil
}

func (s *Store) countPins() (int, error) {
	var n int
	err := s.db.View(func(tx *bolt.Tx) error {
		n = tx.Bucket(bucketPins).Stats().KeyN
		return nil
	})
	return n, err
}
