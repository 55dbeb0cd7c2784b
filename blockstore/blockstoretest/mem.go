package blockstoretest

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"iter"
	"sync"

	"github.com/ipfs/go-cid"

	"github.com/casd/casd/blockstore"
)

// Mem is an in-memory [Blockstore] for unit tests of code that stores
// blocks. It keeps CIDs as given (a CIDv0 and its CIDv1 are different keys)
// and has no pins. The zero value is empty and ready to use; Mem is safe
// for concurrent use.
type Mem struct {
	mu     sync.Mutex // guards blocks
	blocks map[cid.Cid][]byte
}

var _ Blockstore = (*Mem)(nil)

// Has reports whether c is stored.
func (m *Mem) Has(ctx context.Context, c cid.Cid) (bool, error) {
	if err := ctx.Err(); err != nil {
		return false, err
	}
	m.mu.Lock()
	defer m.mu.Unlock()
	_, ok := m.blocks[c]
	return ok, nil
}

// Get returns a copy of c's bytes or an error wrapping
// [blockstore.ErrNotFound].
func (m *Mem) Get(ctx context.Context, c cid.Cid) ([]byte, error) {
	if err := ctx.Err(); err != nil {
		return nil, err
	}
	m.mu.Lock()
	defer m.mu.Unlock()
	data, ok := m.blocks[c]
	if !ok {
		return nil, fmt.Errorf("get block %s: %w", c, blockstore.ErrNotFound)
	}
	return bytes.Clone(data), nil
}

// GetSize returns the size of c or an error wrapping
// [blockstore.ErrNotFound].
func (m *Mem) GetSize(ctx context.Context, c cid.Cid) (int, error) {
	if err := ctx.Err(); err != nil {
		return 0, err
	}
	m.mu.Lock()
	defer m.mu.Unlock()
	data, ok := m.blocks[c]
	if !ok {
		return 0, fmt.Errorf("get size of block %s: %w", c, blockstore.ErrNotFound)
	}
	return len(data), nil
}

// Put stores a copy of b.
func (m *Mem) Put(ctx context.Context, b blockstore.Block) error {
	return m.PutMany(ctx, []blockstore.Block{b})
}

// PutMany stores copies of bs, or none if one is too large.
func (m *Mem) PutMany(ctx context.Context, bs []blockstore.Block) error {
	if err := ctx.Err(); err != nil {
		return err
	}
	for _, b := range bs {
		if !b.Cid.Defined() {
			return errors.New("put block: undefined CID")
		}
		if len(b.Data) > blockstore.MaxBlockSize {
			return fmt.Errorf("put block %s: %w", b.Cid, blockstore.ErrTooLarge)
		}
	}
	m.mu.Lock()
	defer m.mu.Unlock()
	if m.blocks == nil {
		m.blocks = make(map[cid.Cid][]byte)
	}
	for _, b := range bs {
		if _, ok := m.blocks[b.Cid]; !ok {
			m.blocks[b.Cid] = bytes.Clone(b.Data)
		}
	}
	return nil
}

// Delete removes c; removing a missing block is not an error.
func (m *Mem) Delete(ctx context.Context, c cid.Cid) error {
	if err := ctx.Err(); err != nil {
		return err
	}
	m.mu.Lock()
	defer m.mu.Unlock()
	delete(m.blocks, c)
	return nil
}

// AllKeys iterates over a snapshot of the stored CIDs.
func (m *Mem) AllKeys(ctx context.Context) iter.Seq2[cid.Cid, error] {
	return func(yield func(cid.Cid, error) bool) {
		m.mu.Lock()
		keys := make([]cid.Cid, 0, len(m.blocks))
		for c := range m.blocks {
			keys = append(keys, c)
		}
		m.mu.Unlock()
		for _, c := range keys {
			if err := ctx.Err(); err != nil {
				yield(cid.Undef, err)
				return
			}
			if !yield(c, nil) {
				return
			}
		}
	}
}
