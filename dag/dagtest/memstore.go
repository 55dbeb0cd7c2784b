// Package dagtest provides an in-memory block store for tests of code that
// uses package dag.
package dagtest

import (
	"context"
	"fmt"
	"slices"
	"sync"

	"github.com/ipfs/go-cid"

	"github.com/casd/casd/blockstore"
)

// MemStore is an in-memory block store. It is safe for concurrent use.
// Get returns a copy, which the caller may modify.
type MemStore struct {
	mu     sync.Mutex // guards blocks and puts
	blocks map[cid.Cid][]byte
	puts   int
}

// NewMemStore returns an empty store.
func NewMemStore() *MemStore { return &MemStore{blocks: make(map[cid.Cid][]byte)} }

// PutMany stores copies of the blocks.
func (m *MemStore) PutMany(_ context.Context, bs []blockstore.Block) error {
	m.mu.Lock()
	defer m.mu.Unlock()
	for _, b := range bs {
		m.blocks[b.Cid] = slices.Clone(b.Data)
		m.puts++
	}
	return nil
}

// Get returns a copy of the block, or an error wrapping blockstore.ErrNotFound.
func (m *MemStore) Get(_ context.Context, c cid.Cid) ([]byte, error) {
	m.mu.Lock()
	defer m.mu.Unlock()
	d, ok := m.blocks[c]
	if !ok {
		return nil, fmt.Errorf("block %s: %w", c, blockstore.ErrNotFound)
	}
	return slices.Clone(d), nil
}

// Set replaces (or adds) a block's bytes as is, to simulate corruption.
func (m *MemStore) Set(c cid.Cid, data []byte) {
	m.mu.Lock()
	defer m.mu.Unlock()
	m.blocks[c] = slices.Clone(data)
}

// Delete removes a block.
func (m *MemStore) Delete(c cid.Cid) {
	m.mu.Lock()
	defer m.mu.Unlock()
	delete(m.blocks, c)
}

// Len returns the number of distinct blocks.
func (m *MemStore) Len() int {
	m.mu.Lock()
	defer m.mu.Unlock()
	return len(m.blocks)
}

// All returns a snapshot of every block.
func (m *MemStore) All() map[cid.Cid][]byte {
	m.mu.Lock()
	defer m.mu.Unlock()
	out := make(map[cid.Cid][]byte, len(m.blocks))
	for c, d := range m.blocks {
		out[c] = slices.Clone(d)
	}
	return out
}
