package protocol_test

import (
	"context"
	"encoding/binary"
	"fmt"
	"slices"
	"testing"

	"github.com/ipfs/go-cid"

	"github.com/casd/casd/blockstore"
	"github.com/casd/casd/crypt"
	"github.com/casd/casd/dag"
	"github.com/casd/casd/dag/dagtest"
)

// A store receiver reads only the clear part of the blocks it gets
// (docs/format.md): version, kind, height and links. These helpers build
// trees of such blocks whose sealed parts are filler, so that tests choose
// every size and shape; TestTreeHelpers checks that dag.Walk takes them
// for files.

// chunkBlock returns a chunk block (kind 1) of n bytes in all (n >= 2).
func chunkBlock(tb testing.TB, n int, tag string) blockstore.Block {
	tb.Helper()
	data := make([]byte, n)
	for i := range data {
		data[i] = byte(i*7 + len(tag))
	}
	copy(data[2:], tag)
	data[0], data[1] = dag.FormatVersion, dag.KindChunk
	return makeBlock(tb, data)
}

// manifestBlock returns a manifest block of kind (dag.KindNode or
// dag.KindRoot) and height that links links, with filler for the wrapped
// key (root) and the sealed body.
func manifestBlock(tb testing.TB, kind byte, height int, links []cid.Cid, tag string) blockstore.Block {
	tb.Helper()
	data := []byte{dag.FormatVersion, kind}
	data = binary.AppendUvarint(data, uint64(height))
	data = binary.AppendUvarint(data, uint64(len(links)))
	for _, l := range links {
		data = binary.AppendUvarint(data, uint64(l.ByteLen()))
		data = append(data, l.Bytes()...)
	}
	if kind == dag.KindRoot {
		data = append(data, make([]byte, crypt.WrappedKeySize)...)
	}
	sealed := fmt.Appendf(make([]byte, 0, crypt.Overhead+len(tag)), "%-*s", crypt.Overhead, tag)
	return makeBlock(tb, append(data, sealed...))
}

// treeNode is a block of a test tree and its children.
type treeNode struct {
	b    blockstore.Block
	kids []*treeNode
}

// treeOf returns the blocks of a file of the given chunks under manifest
// blocks of at most fanout links: root first, then depth-first in file
// order, each block once, as dag.Walk visits them and a sender sends them.
func treeOf(tb testing.TB, chunks []blockstore.Block, fanout int, tag string) []blockstore.Block {
	tb.Helper()
	level := make([]*treeNode, len(chunks))
	for i, c := range chunks {
		level[i] = &treeNode{b: c}
	}
	height := 0
	for len(level) > fanout {
		var up []*treeNode
		for i := 0; i < len(level); i += fanout {
			kids := level[i:min(i+fanout, len(level))]
			up = append(up, &treeNode{b: manifestBlock(tb, dag.KindNode, height, nodeCids(kids),
				fmt.Sprintf("%s-node-%d-%d", tag, height, i)), kids: kids})
		}
		level, height = up, height+1
	}
	root := &treeNode{b: manifestBlock(tb, dag.KindRoot, height, nodeCids(level), tag+"-root"), kids: level}
	var out []blockstore.Block
	seen := map[cid.Cid]bool{}
	var visit func(n *treeNode)
	visit = func(n *treeNode) {
		if seen[n.b.Cid] {
			return
		}
		seen[n.b.Cid] = true
		out = append(out, n.b)
		for _, k := range n.kids {
			visit(k)
		}
	}
	visit(root)
	return out
}

func nodeCids(ns []*treeNode) []cid.Cid {
	out := make([]cid.Cid, len(ns))
	for i, n := range ns {
		out[i] = n.b.Cid
	}
	return out
}

// fileTree returns the blocks of a file of n chunk blocks of size bytes,
// root first (see treeOf).
func fileTree(tb testing.TB, n, size, fanout int, tag string) []blockstore.Block {
	tb.Helper()
	chunks := make([]blockstore.Block, n)
	for i := range chunks {
		chunks[i] = chunkBlock(tb, size, fmt.Sprintf("%s-%d", tag, i))
	}
	return treeOf(tb, chunks, fanout, tag)
}

// completeOn registers bs (root first) as one tree in backend, so that
// Complete reports the root complete once every block is there.
func completeOn(backend *memBackend, bs []blockstore.Block) {
	children := make([]cid.Cid, 0, len(bs)-1)
	for _, b := range bs[1:] {
		children = append(children, b.Cid)
	}
	backend.setTree(bs[0].Cid, children...)
}

// TestTreeHelpers checks the fixtures against package dag: dag.Walk takes
// their trees for files and visits their blocks in the order treeOf
// returns them, which is the order a sender (replicate's treeBlocks, a
// dag.Walk) sends them in.
func TestTreeHelpers(t *testing.T) {
	for _, tc := range []struct{ chunks, fanout int }{{0, 4}, {1, 4}, {4, 4}, {5, 4}, {40, 3}, {17, 1024}} {
		bs := fileTree(t, tc.chunks, 100, tc.fanout, fmt.Sprint("walk-", tc.chunks))
		st := dagtest.NewMemStore()
		if err := st.PutMany(context.Background(), bs); err != nil {
			t.Fatal(err)
		}
		var walked []cid.Cid
		err := dag.Walk(context.Background(), st, bs[0].Cid, func(c cid.Cid, _ byte) error {
			walked = append(walked, c)
			return nil
		})
		if err != nil {
			t.Fatalf("%d chunks, fanout %d: %v", tc.chunks, tc.fanout, err)
		}
		want := make([]cid.Cid, len(bs))
		for i, b := range bs {
			want[i] = b.Cid
		}
		if !slices.Equal(walked, want) {
			t.Fatalf("%d chunks, fanout %d: walk visits %d blocks in another order than the %d of treeOf",
				tc.chunks, tc.fanout, len(walked), len(want))
		}
	}
}

// largeChunks are chunk blocks of the sizes around which the sender
// switches to writing a block's data straight from the caller's buffer,
// up to the largest block (see largeBlocks).
func largeChunks(tb testing.TB) []blockstore.Block {
	tb.Helper()
	var out []blockstore.Block
	for i, b := range largeBlocks(tb) {
		out = append(out, chunkBlock(tb, len(b.Data), fmt.Sprint("large-", i)))
	}
	return out
}

// alignedTree returns a root and five chunks of about 4 MiB, the first
// cut so that the root and the first four chunks make exactly 16 MiB, a
// full batch on the receiver's side.
func alignedTree(tb testing.TB, tag string) []blockstore.Block {
	tb.Helper()
	const n = 5
	probe := manifestBlock(tb, dag.KindRoot, 0, make([]cid.Cid, n), tag+"-root")
	rootLen := len(probe.Data) + n*36 // an undefined link has no bytes, a real one 36
	chunks := make([]blockstore.Block, n)
	for i := range chunks {
		size := 4 << 20
		if i == 0 {
			size -= rootLen
		}
		chunks[i] = chunkBlock(tb, size, fmt.Sprintf("%s-%d", tag, i))
	}
	bs := treeOf(tb, chunks, dag.DefaultFanout, tag)
	if got := len(bs[0].Data); got != rootLen {
		tb.Fatalf("root of %d bytes, computed %d", got, rootLen)
	}
	return bs
}
