package dag

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"testing"

	"github.com/ipfs/go-cid"
	"github.com/stretchr/testify/require"

	"github.com/casd/casd/blockstore"
	"github.com/casd/casd/crypt"
	"github.com/casd/casd/dag/dagtest"
)

// These tests mount the attack of the "Hostile peers" issue, point 9: a
// capability holder seals manifest blocks whose sizes lie, and the reader
// must neither write past Meta.Size nor write any byte under the first
// block that lies.

// forge seals the blocks of a file by hand, with the package's own
// encoders, so that every size is the forger's choice. It is a
// [BlockGetter] over what it sealed.
type forge struct {
	conv   crypt.Key
	blocks map[cid.Cid][]byte
}

func newForge() *forge {
	f := &forge{blocks: make(map[cid.Cid][]byte)}
	for i := range f.conv {
		f.conv[i] = 0x5a
	}
	return f
}

func (f *forge) Get(_ context.Context, c cid.Cid) ([]byte, error) {
	d, ok := f.blocks[c]
	if !ok {
		return nil, fmt.Errorf("get %s: %w", c, blockstore.ErrNotFound)
	}
	return bytes.Clone(d), nil // chunks are opened in place
}

// chunk seals p as a chunk block; its link records len(p).
func (f *forge) chunk(p []byte) link {
	buf := &chunkBuf{n: len(p), data: make([]byte, headerSize+padTo(len(p), chunkPad)+crypt.Overhead)}
	copy(buf.data[headerSize:], p)
	sealChunk(&f.conv, buf)
	f.blocks[buf.block.Cid] = buf.block.Data
	return link{cid: buf.block.Cid, entry: entry{key: buf.key, size: uint64(len(p))}}
}

// node seals an inner node of height h over links, recording their sizes
// as they stand; its own link records their sum (wrapping, as a forger's
// arithmetic may).
func (f *forge) node(h int, links ...link) link {
	data, key := sealManifest(&f.conv, KindNode, h, cids(links), nil, &body{entries: entries(links)})
	c := blockCID(data)
	f.blocks[c] = data
	var sum uint64
	for _, l := range links {
		sum += l.entry.size
	}
	return link{cid: c, entry: entry{key: key, size: sum}}
}

// root seals a root of height h over links whose Meta.Size is size.
func (f *forge) root(h int, size int64, links ...link) (cid.Cid, crypt.Key) {
	meta := &Meta{Name: "forged", Size: size, ChunkSize: MinChunkSize}
	data, key := sealManifest(&f.conv, KindRoot, h, cids(links), &f.conv, &body{meta: meta, entries: entries(links)})
	c := blockCID(data)
	f.blocks[c] = data
	return c, key
}

// records returns l with its recorded size replaced by n: the lie.
func records(l link, n uint64) link {
	l.entry.size = n
	return l
}

// plain returns n bytes of file data, none of them zero (so that a chunk's
// padding cannot pass for data).
func plain(n int, seed byte) []byte {
	p := make([]byte, n)
	for i := range p {
		p[i] = 1 + byte((i*7+int(seed))%255)
	}
	return p
}

// countWriter counts and keeps what it is given.
type countWriter struct {
	n   int64
	got bytes.Buffer
}

func (w *countWriter) Write(p []byte) (int, error) {
	w.n += int64(len(p))
	return w.got.Write(p)
}

// readForged opens and reads a forged file; size is Meta.Size, or -1 if the
// root did not open.
func readForged(t testing.TB, get BlockGetter, root cid.Cid, key crypt.Key) (w *countWriter, size int64, err error) {
	t.Helper()
	w = &countWriter{}
	f, err := OpenFile(t.Context(), get, root, key)
	if err != nil {
		return w, -1, err
	}
	_, err = f.WriteTo(t.Context(), w, get, ReadOptions{Window: 3})
	return w, f.Meta.Size, err
}

// attack is a forged file and what the reader may do with it.
type attack struct {
	root   cid.Cid
	key    crypt.Key
	prefix []byte  // the file before the first lying block: all that may be written
	bad    cid.Cid // the first lying block, which the error must name
}

// mount reads a forged file and checks that the reader failed with
// ErrMalformed naming the lying block, wrote only bytes before it, and
// wrote at most Meta.Size bytes.
func mount(t *testing.T, f *forge, a attack) {
	t.Helper()
	w, size, err := readForged(t, f, a.root, a.key)
	require.ErrorIs(t, err, ErrMalformed)
	require.Contains(t, err.Error(), a.bad.String(), "the error names the lying block")
	require.LessOrEqual(t, w.n, int64(len(a.prefix)), "bytes written under or after the lying block")
	require.True(t, bytes.Equal(a.prefix[:w.n], w.got.Bytes()), "wrote what is not the file's prefix")
	if size >= 0 {
		require.LessOrEqual(t, w.n, size, "wrote past Meta.Size")
	}
}

// TestReadRootSizeBelowChunks: the root's Meta.Size (and what it records
// for its children) is smaller than the chunks under it add up to. The
// reader writes at most Meta.Size bytes and fails.
func TestReadRootSizeBelowChunks(t *testing.T) {
	cases := []struct {
		name  string
		build func(f *forge) attack
	}{
		{"height 0: root entries exceed Meta.Size", func(f *forge) attack {
			c0, c1 := f.chunk(plain(4096, 0)), f.chunk(plain(4096, 1))
			r, k := f.root(0, 4096, c0, c1)
			return attack{root: r, key: k, bad: r}
		}},
		{"height 1: one node under a root of one chunk's size", func(f *forge) attack {
			n := f.node(0, f.chunk(plain(4096, 0)), f.chunk(plain(4096, 1)), f.chunk(plain(4096, 2)))
			r, k := f.root(1, 4096, records(n, 4096))
			return attack{root: r, key: k, bad: n.cid}
		}},
		{"height 2: the last node holds more than recorded", func(f *forge) attack {
			first := plain(4096, 0)
			a := f.node(0, f.chunk(first))
			b := f.node(0, f.chunk(plain(4096, 1)), f.chunk(plain(4096, 2)), f.chunk(plain(4096, 3)))
			top := f.node(1, a, records(b, 4096))
			r, k := f.root(2, 8192, top)
			return attack{root: r, key: k, prefix: first, bad: b.cid}
		}},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			f := newForge()
			mount(t, f, tc.build(f))
		})
	}
}

// TestReadInnerNodeSizeMismatch: an inner node records more, or fewer,
// bytes for itself (in its parent) than its children add up to, while
// the root stays consistent with Meta.Size. Nothing under that node is
// written; the honest part before it may be.
func TestReadInnerNodeSizeMismatch(t *testing.T) {
	cs := uint64(MinChunkSize)
	cases := []struct {
		name  string
		build func(f *forge) attack
	}{
		{"height 1, node records more", func(f *forge) attack {
			head := append(plain(8192, 0), plain(4096, 1)...)
			a := f.node(0, f.chunk(head[:8192]), f.chunk(head[8192:]))
			b := f.node(0, f.chunk(plain(4096, 2)))
			c := f.node(0, f.chunk(plain(4096, 3)))
			r, k := f.root(1, 12288+8192+4096, a, records(b, 8192), c)
			return attack{root: r, key: k, prefix: head, bad: b.cid}
		}},
		{"height 1, node records fewer", func(f *forge) attack {
			head := plain(4096, 0)
			a := f.node(0, f.chunk(head))
			b := f.node(0, f.chunk(plain(4096, 1)), f.chunk(plain(4096, 2)))
			c := f.node(0, f.chunk(plain(4096, 3)))
			r, k := f.root(1, 4096+4096+4096, a, records(b, 4096), c)
			return attack{root: r, key: k, prefix: head, bad: b.cid}
		}},
		{"height 1, node records 0", func(f *forge) attack {
			head := plain(4096, 0)
			a := f.node(0, f.chunk(head))
			b := f.node(0, f.chunk(plain(4096, 1)))
			r, k := f.root(1, 4096, a, records(b, 0))
			return attack{root: r, key: k, prefix: head, bad: b.cid}
		}},
		{"height 2, a height-1 node records more", func(f *forge) attack {
			head := plain(4096, 0)
			a := f.node(1, f.node(0, f.chunk(head)))
			b := f.node(1, f.node(0, f.chunk(plain(4096, 1))), f.node(0, f.chunk(plain(4096, 2))))
			r, k := f.root(2, 4096+3*4096, a, records(b, 3*4096))
			return attack{root: r, key: k, prefix: head, bad: b.cid}
		}},
		{"height 2, a height-1 node records fewer", func(f *forge) attack {
			head := plain(4096, 0)
			a := f.node(1, f.node(0, f.chunk(head)))
			b := f.node(1, f.node(0, f.chunk(plain(4096, 1))), f.node(0, f.chunk(plain(4096, 2))))
			r, k := f.root(2, 4096+4096, a, records(b, 4096))
			return attack{root: r, key: k, prefix: head, bad: b.cid}
		}},
		{"height 1, node sums right but a chunk entry exceeds the chunk size", func(f *forge) attack {
			// The sizes add up; the chunk entries do not fit the chunk size.
			// No chunk of that node is written, not even its honest first one.
			head := plain(4096, 0)
			a := f.node(0, f.chunk(head))
			b := f.node(0, f.chunk(plain(4096, 1)), records(f.chunk(plain(4096, 2)), cs+1))
			r, k := f.root(1, 4096+4096+int64(cs)+1, a, b)
			return attack{root: r, key: k, prefix: head, bad: b.cid}
		}},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			f := newForge()
			mount(t, f, tc.build(f))
		})
	}
}

// TestReadSizeOverflow: recorded sizes that add up past 2^64 wrap around
// to the size the parent expects, or add up past an int64. The reader
// fails cleanly, without a panic and without writing.
func TestReadSizeOverflow(t *testing.T) {
	const q = uint64(1) << 62 // the largest size a body may record
	cases := []struct {
		name  string
		build func(f *forge) attack
	}{
		{"root entries wrap to Meta.Size", func(f *forge) attack {
			n := f.node(0, f.chunk(plain(4096, 0)))
			r, k := f.root(1, 4096, records(n, q), records(n, q), records(n, q), records(n, q), n)
			return attack{root: r, key: k, bad: r}
		}},
		{"inner entries wrap to the recorded size", func(f *forge) attack {
			n := f.node(0, f.chunk(plain(4096, 0)))
			top := f.node(1, records(n, q), records(n, q), records(n, q), records(n, q), n)
			r, k := f.root(2, 4096, records(top, 4096))
			return attack{root: r, key: k, bad: top.cid}
		}},
		{"root entries past int64", func(f *forge) attack {
			n := f.node(0, f.chunk(plain(4096, 0)))
			r, k := f.root(1, int64(q), records(n, q), records(n, q), records(n, q-1))
			return attack{root: r, key: k, bad: r}
		}},
		{"inner entries past int64", func(f *forge) attack {
			n := f.node(0, f.chunk(plain(4096, 0)))
			top := f.node(1, records(n, q), records(n, q), records(n, q-1))
			r, k := f.root(2, int64(q), records(top, q))
			return attack{root: r, key: k, bad: top.cid}
		}},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			f := newForge()
			mount(t, f, tc.build(f))
		})
	}
}

// TestReadChunkLengthMismatch: a chunk opens to another length than its
// parent records. The parent's number is not obeyed: the read fails at
// that chunk, after the honest chunk before it at most.
func TestReadChunkLengthMismatch(t *testing.T) {
	cases := []struct {
		name           string
		real, recorded int
	}{
		{"records fewer, same padded length", 6000, 5000},
		{"records fewer, one byte", 8192, 8191},
		{"records fewer, shorter padded length", 8192, 4096},
		{"records more, longer padded length", 4096, 4097},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			f := newForge()
			head := plain(4096, 0)
			bad := records(f.chunk(plain(tc.real, 1)), uint64(tc.recorded))
			r, k := f.root(0, int64(4096+tc.recorded+4096), f.chunk(head), bad, f.chunk(plain(4096, 2)))
			mount(t, f, attack{root: r, key: k, prefix: head, bad: bad.cid})
		})
	}
}

// TestReadHonestHeights reads back honest files of every tree height from
// 0 to 3 (small chunks, fanout 2) exactly, through the same counting
// writer.
func TestReadHonestHeights(t *testing.T) {
	cs := MinChunkSize
	s := &crypt.Secrets{}
	s.Master[0], s.Convergence[0] = 1, 2
	cases := []struct {
		size, height int
	}{
		{0, 0}, {1, 0}, {cs, 0}, {2 * cs, 0},
		{2*cs + 1, 1}, {4 * cs, 1},
		{4*cs + 1, 2}, {8 * cs, 2},
		{8*cs + 1, 3}, {13*cs + 17, 3},
	}
	for _, tc := range cases {
		t.Run(fmt.Sprintf("%d bytes", tc.size), func(t *testing.T) {
			st := dagtest.NewMemStore()
			data := plain(tc.size, byte(tc.size))
			a, err := Add(t.Context(), bytes.NewReader(data), Meta{Name: "x"}, s, st, AddOptions{ChunkSize: cs, Fanout: 2})
			require.NoError(t, err)
			f, err := OpenFile(t.Context(), st, a.Root, a.Key)
			require.NoError(t, err)
			require.Equal(t, tc.height, f.root.height)
			w := &countWriter{}
			n, err := f.WriteTo(t.Context(), w, st, ReadOptions{})
			require.NoError(t, err)
			require.Equal(t, int64(tc.size), n)
			require.Equal(t, int64(tc.size), w.n)
			require.True(t, bytes.Equal(data, w.got.Bytes()), "content differs")
		})
	}
}

// TestWriteInOrderCutsAtLimit: the writer itself never goes past the
// file's size, whatever the chunks it is handed say.
func TestWriteInOrderCutsAtLimit(t *testing.T) {
	for _, tc := range []struct {
		limit int64
		fails bool
	}{{30, false}, {25, true}, {20, true}, {0, true}} {
		t.Run(fmt.Sprint(tc.limit), func(t *testing.T) {
			data := plain(30, 0)
			done := make(chan *chunkRef, 3)
			tokens := make(chan struct{}, 3)
			for i := range 3 {
				done <- &chunkRef{index: i, cid: blockCID([]byte{byte(i)}), data: data[10*i : 10*i+10]}
				tokens <- struct{}{}
			}
			close(done)
			w := &countWriter{}
			n, err := writeInOrder(t.Context(), w, done, tokens, tc.limit)
			if tc.fails {
				require.ErrorIs(t, err, ErrMalformed)
			} else {
				require.NoError(t, err)
			}
			require.Equal(t, tc.limit, n)
			require.Equal(t, tc.limit, w.n)
			require.True(t, bytes.Equal(data[:tc.limit], w.got.Bytes()), "wrote %x", w.got.Bytes())
		})
	}
}

// FuzzReadForgedSizes fuzzes every size a forged manifest records: the
// root's Meta.Size and five entries, and the four chunk entries of its two
// inner nodes (the root links to the first node four times). Whatever they
// say, the reader writes at most Meta.Size bytes, and either the exact file
// or, with an error, a prefix of it. Chunk lengths are multiples of 4 KiB
// of non-zero bytes, so that no lie can pass as zero padding.
func FuzzReadForgedSizes(f *testing.F) {
	const q = uint64(1) << 62
	fg := newForge()
	data := [4][]byte{plain(8192, 0), plain(4096, 1), plain(4096, 2), plain(12288, 3)}
	var chunks [4]link
	for i, p := range data {
		chunks[i] = fg.chunk(p)
	}
	nodeA := append(bytes.Clone(data[0]), data[1]...)
	nodeB := append(bytes.Clone(data[2]), data[3]...)
	honest := append(bytes.Repeat(nodeA, 4), nodeB...)

	a, b := uint64(len(nodeA)), uint64(len(nodeB))
	f.Add(uint64(len(honest)), a, a, a, a, b, uint64(8192), uint64(4096), uint64(4096), uint64(12288))
	f.Add(b, q, q, q, q, b, uint64(8192), uint64(4096), uint64(4096), uint64(12288)) // root wraps
	f.Add(uint64(len(honest)), a, a, a, a, b, uint64(8192), uint64(4096), uint64(4096), uint64(4096))
	f.Add(uint64(len(honest)), a, a, a, a, b, uint64(4097), uint64(8191), uint64(4096), uint64(12288))
	f.Add(4*(a-1)+b, a-1, a-1, a-1, a-1, b, uint64(8191), uint64(4096), uint64(4096), uint64(12288)) // chunk shorter, same padding
	f.Add(4*a, a, a, a, a, uint64(0), uint64(8192), uint64(4096), uint64(4096), uint64(12288))
	f.Add(4*a+4096, a, a, a, a, uint64(4096), uint64(8192), uint64(4096), q, q) // node B wraps nothing but sums past int64
	f.Fuzz(func(t *testing.T, metaSize, r0, r1, r2, r3, r4, a0, a1, b0, b1 uint64) {
		g := &forge{conv: fg.conv, blocks: make(map[cid.Cid][]byte, 8)}
		for _, c := range chunks {
			g.blocks[c.cid] = fg.blocks[c.cid]
		}
		na := g.node(0, records(chunks[0], a0), records(chunks[1], a1))
		nb := g.node(0, records(chunks[2], b0), records(chunks[3], b1))
		root, key := g.root(1, int64(metaSize), records(na, r0), records(na, r1), records(na, r2), records(na, r3), records(nb, r4))
		w, size, err := readForged(t, g, root, key)
		if size < 0 {
			require.ErrorIs(t, err, ErrMalformed)
			require.Zero(t, w.n)
			return
		}
		require.LessOrEqual(t, w.n, size, "wrote past Meta.Size")
		if err == nil {
			require.True(t, bytes.Equal(honest, w.got.Bytes()), "read succeeded with other content")
			return
		}
		if !errors.Is(err, ErrMalformed) {
			t.Fatalf("error is not ErrMalformed: %v", err)
		}
		require.LessOrEqual(t, w.n, int64(len(honest)))
		require.True(t, bytes.Equal(honest[:w.n], w.got.Bytes()), "wrote what is not a prefix of the file")
	})
}
