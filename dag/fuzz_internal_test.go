package dag

import (
	"bytes"
	"fmt"
	"io/fs"
	"reflect"
	"testing"

	"github.com/ipfs/go-cid"

	"github.com/casd/casd/crypt"
)

// FuzzParseManifestBlock guards the keyless parser, which runs on blocks
// from untrusted peers (GC, verify, store's completeness walk): it must
// never panic, and what it accepts must re-encode to the same bytes.
func FuzzParseManifestBlock(f *testing.F) {
	var conv crypt.Key
	c := blockCID([]byte("child"))
	for _, kind := range []byte{KindNode, KindRoot} {
		b := &body{entries: []entry{{size: 5}}}
		if kind == KindRoot {
			b.meta = &Meta{Name: "x", Size: 5, ChunkSize: DefaultChunkSize}
		}
		data, _ := sealManifest(&conv, kind, 0, []cid.Cid{c}, &conv, b)
		f.Add(data)
		f.Add(append([]byte{1}, data[1:]...)) // the same clear part in format 1
	}
	f.Add([]byte{1, 1})
	f.Fuzz(func(t *testing.T, data []byte) {
		m, err := parseManifestBlock(data)
		if err != nil {
			return
		}
		head := appendManifestHead(nil, m.format.version, m.kind, m.height, m.links)
		if !bytes.Equal(head, m.head) || !bytes.Equal(append(head, m.wrapped...), m.clear) {
			t.Fatalf("clear part does not re-encode: %x vs %x", append(head, m.wrapped...), m.clear)
		}
		if _, err := Links(cid.Undef, data); err != nil {
			t.Fatalf("parsed but Links failed: %v", err)
		}
	})
}

// FuzzDecodeBody guards the sealed-body decoder: a capability holder may
// be handed a maliciously crafted (but validly sealed) manifest. What it
// accepts must not panic, must re-encode to the same bytes but for the
// length of the zero padding (the encoding is canonical), and must decode
// again to an identical body: every key, size and metadata field. The other
// way round, a body made from the input (see bodyFrom) must come back
// identical from encode and decode, so that a codec which is consistent
// with itself but drops or changes a field fails too.
func FuzzDecodeBody(f *testing.F) {
	var k1, k2 crypt.Key
	for i := range k1 {
		k1[i], k2[i] = byte(i), byte(0xff-3*i)
	}
	root := &body{meta: &Meta{Name: "a b.pdf", Size: 7, ChunkSize: MinChunkSize, MediaType: "application/pdf"}, entries: []entry{{size: 7}}}
	f.Add(root.encode(), true, 1)
	node := &body{entries: []entry{{size: 1}, {size: 2}}}
	f.Add(node.encode(), false, 2)
	full := &body{
		meta:    &Meta{Name: "relevé ü 日本.tar", Size: 5<<20 + 3, Mode: 0o751, ChunkSize: MaxChunkSize, MediaType: "application/x-tar"},
		entries: []entry{{key: k1, size: 4 << 20}, {key: k2, size: 1<<20 + 3}},
	}
	f.Add(full.encode(), true, 2)
	f.Add(append(full.encode(), make([]byte, 700)...), true, 2) // longer padding
	inner := &body{entries: []entry{{key: k2, size: 1 << 40}, {key: k1, size: 300}, {key: k1}}}
	f.Add(inner.encode(), false, 3)
	f.Fuzz(func(t *testing.T, p []byte, isRoot bool, nlinks int) {
		if nlinks < 0 || nlinks > 1024 {
			return
		}
		made := bodyFrom(p, isRoot, nlinks)
		got, err := decodeBody(made.encode(), isRoot, nlinks)
		if err != nil {
			t.Fatalf("encoded body does not decode: %v\n%+v", err, made)
		}
		if !reflect.DeepEqual(got, made) {
			t.Fatalf("encode then decode changed the body:\n%+v\n%+v", made, got)
		}

		b, err := decodeBody(p, isRoot, nlinks)
		if err != nil {
			return
		}
		if len(b.entries) != nlinks || (b.meta != nil) != isRoot {
			t.Fatalf("decoded %d entries, meta %v; want %d entries, meta %v", len(b.entries), b.meta != nil, nlinks, isRoot)
		}
		enc := b.encode()
		n := min(len(p), len(enc))
		if !bytes.Equal(p[:n], enc[:n]) || !isZero(p[n:]) || !isZero(enc[n:]) {
			t.Fatalf("body does not re-encode to its bytes:\n in %x\nout %x", p, enc)
		}
		again, err := decodeBody(enc, isRoot, nlinks)
		if err != nil {
			t.Fatalf("re-encoded body does not decode: %v", err)
		}
		if !reflect.DeepEqual(again, b) {
			t.Fatalf("round trip changed the body:\n%+v\n%+v", b, again)
		}
	})
}

func isZero(p []byte) bool {
	for _, c := range p {
		if c != 0 {
			return false
		}
	}
	return true
}

// bodyFrom makes a valid body with nlinks entries (and metadata if isRoot)
// from arbitrary bytes: keys are taken from p in turn, sizes and metadata
// are derived from it.
func bodyFrom(p []byte, isRoot bool, nlinks int) *body {
	next := func(i int) byte {
		if len(p) == 0 {
			return byte(i)
		}
		return p[i%len(p)] ^ byte(i/len(p))
	}
	b := &body{entries: make([]entry, nlinks)}
	var sum uint64
	for i := range b.entries {
		e := &b.entries[i]
		for j := range e.key {
			e.key[j] = next(i*crypt.KeySize + j)
		}
		e.size = uint64(next(i))<<(next(i+1)%40) | uint64(next(i+2))
		sum += e.size
	}
	if isRoot {
		b.meta = &Meta{
			Name:      fmt.Sprintf("F %X.é", p[:min(len(p), 40)]),
			Size:      int64(sum),
			Mode:      fs.FileMode(next(3)) << 1 & fs.ModePerm,
			MediaType: fmt.Sprintf("Application/X-%X", p[:min(len(p), 8)]),
			ChunkSize: MinChunkSize << (next(4) % 5),
		}
	}
	return b
}
