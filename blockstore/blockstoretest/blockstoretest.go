// Package blockstoretest is a conformance kit for block stores: [Verify]
// checks any [Blockstore] (a decorator, an in-memory fake, a fault
// injector), and [RunSuite] checks a [*blockstore.Store] in full, pins,
// GC, verification and accounting included. [Mem] is an in-memory
// Blockstore for unit tests of code above the store. Helpers make blocks
// and small trees whose links [Links] can list.
//
//	func TestStore(t *testing.T) {
//		blockstoretest.RunSuite(t, func(tb testing.TB) *blockstore.Store { ... })
//	}
package blockstoretest

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"iter"
	"math/rand/v2"
	"testing"

	"github.com/ipfs/go-cid"
	"github.com/multiformats/go-multihash"

	"github.com/casd/casd/blockstore"
)

// Blockstore is the block half of [blockstore.Store]: what [Verify]
// checks. Implementations must be safe for concurrent use.
type Blockstore interface {
	Has(ctx context.Context, c cid.Cid) (bool, error)
	// Get returns a slice the caller owns, or an error wrapping
	// blockstore.ErrNotFound.
	Get(ctx context.Context, c cid.Cid) ([]byte, error)
	GetSize(ctx context.Context, c cid.Cid) (int, error)
	Put(ctx context.Context, b blockstore.Block) error
	PutMany(ctx context.Context, bs []blockstore.Block) error
	Delete(ctx context.Context, c cid.Cid) error
	AllKeys(ctx context.Context) iter.Seq2[cid.Cid, error]
}

var _ Blockstore = (*blockstore.Store)(nil)

// NewBlock returns data as a block named by its CIDv1 (codec raw,
// sha2-256), the kind casd stores.
func NewBlock(data []byte) blockstore.Block {
	h, err := multihash.Sum(data, multihash.SHA2_256, -1)
	if err != nil {
		panic(fmt.Sprintf("blockstoretest: sha2-256: %v", err)) // cannot happen: sha2-256 is always registered
	}
	return blockstore.Block{Cid: cid.NewCidV1(cid.Raw, h), Data: data}
}

// RandomBlock returns a block of size pseudo-random bytes from rng.
func RandomBlock(rng *rand.Rand, size int) blockstore.Block {
	data := make([]byte, size)
	for i := 0; i < size; i += 8 {
		v := rng.Uint64()
		for j := 0; j < 8 && i+j < size; j++ {
			data[i+j] = byte(v >> (8 * j))
		}
	}
	return NewBlock(data)
}

// NewRand returns a deterministic random source for tests.
func NewRand(seed uint64) *rand.Rand {
	return rand.New(rand.NewPCG(seed, seed^0x9e3779b97f4a7c15))
}

// nodeMagic starts the data of a block made by Node.
var nodeMagic = []byte("blockstoretest-node\n")

// Node returns a toy interior block whose data is a marker followed by the
// bytes of its children's CIDs, so that [Links] can list them.
func Node(children ...cid.Cid) blockstore.Block {
	data := bytes.Clone(nodeMagic)
	for _, c := range children {
		data = append(data, c.Bytes()...)
	}
	return NewBlock(data)
}

// Links is a [blockstore.LinkFunc] for blocks made by [Node]: it lists the
// children of a node and none for any other block.
func Links(c cid.Cid, data []byte) ([]cid.Cid, error) {
	rest, ok := bytes.CutPrefix(data, nodeMagic)
	if !ok {
		return nil, nil
	}
	var out []cid.Cid
	for len(rest) > 0 {
		n, child, err := cid.CidFromBytes(rest)
		if err != nil {
			return nil, fmt.Errorf("toy node %s: %w", c, err)
		}
		out = append(out, child)
		rest = rest[n:]
	}
	return out, nil
}

// Tree is a toy tree made by [MakeTree].
type Tree struct {
	Root   cid.Cid
	Blocks []blockstore.Block // every block, root last
}

// Cids returns the CIDs of t's blocks.
func (t Tree) Cids() []cid.Cid {
	out := make([]cid.Cid, len(t.Blocks))
	for i, b := range t.Blocks {
		out[i] = b.Cid
	}
	return out
}

// MakeTree returns a tree of the given depth (1 is a lone leaf) where each
// interior node has fanout children and leaves hold leafSize random bytes.
func MakeTree(rng *rand.Rand, depth, fanout, leafSize int) Tree {
	var t Tree
	var build func(d int) cid.Cid
	build = func(d int) cid.Cid {
		if d <= 1 {
			b := RandomBlock(rng, leafSize)
			t.Blocks = append(t.Blocks, b)
			return b.Cid
		}
		children := make([]cid.Cid, fanout)
		for i := range children {
			children[i] = build(d - 1)
		}
		b := Node(children...)
		t.Blocks = append(t.Blocks, b)
		return b.Cid
	}
	t.Root = build(depth)
	return t
}

// Keys collects s.AllKeys, failing tb on any error item.
func Keys(tb testing.TB, s Blockstore) map[cid.Cid]bool {
	tb.Helper()
	out := make(map[cid.Cid]bool)
	for c, err := range s.AllKeys(tb.Context()) {
		if err != nil {
			tb.Fatalf("AllKeys: %v", err)
		}
		if out[c] {
			tb.Fatalf("AllKeys yielded %s twice", c)
		}
		out[c] = true
	}
	return out
}

// MustPut puts blocks into s, failing tb on error.
func MustPut(tb testing.TB, s Blockstore, bs ...blockstore.Block) {
	tb.Helper()
	if err := s.PutMany(tb.Context(), bs); err != nil {
		tb.Fatalf("PutMany: %v", err)
	}
}

// requireBlock checks that s holds b.
func requireBlock(tb testing.TB, s Blockstore, b blockstore.Block) {
	tb.Helper()
	ctx := tb.Context()
	got, err := s.Get(ctx, b.Cid)
	if err != nil {
		tb.Fatalf("Get(%s): %v", b.Cid, err)
	}
	if !bytes.Equal(got, b.Data) {
		tb.Fatalf("Get(%s) = %d bytes that differ from the %d put", b.Cid, len(got), len(b.Data))
	}
	n, err := s.GetSize(ctx, b.Cid)
	if err != nil || n != len(b.Data) {
		tb.Fatalf("GetSize(%s) = %d, %v; want %d", b.Cid, n, err, len(b.Data))
	}
	ok, err := s.Has(ctx, b.Cid)
	if err != nil || !ok {
		tb.Fatalf("Has(%s) = %v, %v; want true", b.Cid, ok, err)
	}
}

// requireAbsent checks that s does not hold c and says so with ErrNotFound.
func requireAbsent(tb testing.TB, s Blockstore, c cid.Cid) {
	tb.Helper()
	ctx := tb.Context()
	if _, err := s.Get(ctx, c); !errors.Is(err, blockstore.ErrNotFound) {
		tb.Fatalf("Get(%s) error = %v; want ErrNotFound", c, err)
	}
	if _, err := s.GetSize(ctx, c); !errors.Is(err, blockstore.ErrNotFound) {
		tb.Fatalf("GetSize(%s) error = %v; want ErrNotFound", c, err)
	}
	ok, err := s.Has(ctx, c)
	if err != nil || ok {
		tb.Fatalf("Has(%s) = %v, %v; want false", c, ok, err)
	}
}
