package blockstore

import (
	"encoding/binary"
	"path/filepath"
	"testing"
	"time"

	bolt "go.etcd.io/bbolt"
)

// TestOldPinValueNeverExpires: a repo of schema version 1, whose pin
// values are 8 bytes (a creation time), opens; its pins decode as never
// expiring, are counted, can be extended (then written in 16 bytes), and
// the schema version moves to 2 so that an older casd refuses the file.
func TestOldPinValueNeverExpires(t *testing.T) {
	dir := t.TempDir()
	blocks, meta := filepath.Join(dir, "blocks"), filepath.Join(dir, "meta.db")
	root := rawBlock([]byte("old root")).Cid
	created := time.Unix(1_700_000_000, 0)
	db, err := bolt.Open(meta, filePerm, nil)
	if err != nil {
		t.Fatal(err)
	}
	err = db.Update(func(tx *bolt.Tx) error {
		m, err := tx.CreateBucket(bucketMeta)
		if err != nil {
			return err
		}
		if err := m.Put(keyVersion, binary.BigEndian.AppendUint32(nil, 1)); err != nil {
			return err
		}
		p, err := tx.CreateBucket(bucketPins)
		if err != nil {
			return err
		}
		return p.Put(pinKey(root, "replica:k1"), binary.BigEndian.AppendUint64(nil, uint64(created.UnixNano())))
	})
	if err != nil {
		t.Fatal(err)
	}
	if err := db.Close(); err != nil {
		t.Fatal(err)
	}

	s, err := Open(blocks, meta)
	if err != nil {
		t.Fatalf("Open of a version 1 repo: %v", err)
	}
	defer s.Close()
	ctx := t.Context()
	pins, err := s.Pins(ctx)
	if err != nil || len(pins) != 1 {
		t.Fatalf("Pins = %v, %v; want the old pin", pins, err)
	}
	if p := pins[0]; !p.Created.Equal(created) || !p.Expires.IsZero() {
		t.Fatalf("old pin decoded as created %v, expires %v; want %v, never", p.Created, p.Expires, created)
	}
	if n, _ := s.PinCount(ctx, "replica:k1"); n != 1 {
		t.Fatalf("PinCount = %d, want 1", n)
	}
	if gone, err := s.UnpinExpired(ctx, time.Now().Add(1000*time.Hour)); err != nil || len(gone) != 0 {
		t.Fatalf("UnpinExpired removed an old never-expiring pin: %v, %v", gone, err)
	}
	if err := s.PinUntil(ctx, root, "replica:k1", time.Now()); err != nil {
		t.Fatal(err)
	}
	err = s.db.View(func(tx *bolt.Tx) error {
		if v := tx.Bucket(bucketMeta).Get(keyVersion); binary.BigEndian.Uint32(v) != 2 {
			t.Errorf("schema version %x after Open, want 2", v)
		}
		if v := tx.Bucket(bucketPins).Get(pinKey(root, "replica:k1")); len(v) != 16 {
			t.Errorf("pin value of %d bytes after PinUntil, want 16", len(v))
		}
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
	if pins, _ := s.Pins(ctx); !pins[0].Expires.IsZero() || !pins[0].Created.Equal(created) {
		t.Fatalf("PinUntil changed an old never-expiring pin: %+v", pins[0])
	}
}
