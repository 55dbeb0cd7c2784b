package dag

import (
	"bytes"
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
		var wrap func(*crypt.Key) []byte
		b := &body{entries: []entry{{size: 5}}}
		if kind == KindRoot {
			wrap = func(k *crypt.Key) []byte { return crypt.WrapKey(&conv, k, rootKeyAD) }
			b.meta = &Meta{Name: "x", Size: 5, ChunkSize: DefaultChunkSize}
		}
		data, _ := sealManifest(&conv, kind, 0, []cid.Cid{c}, wrap, b)
		f.Add(data)
	}
	f.Add([]byte{1, 1})
	f.Fuzz(func(t *testing.T, data []byte) {
		m, err := parseManifestBlock(data)
		if err != nil {
			return
		}
		head := appendManifestHead(nil, m.kind, m.height, m.links, m.wrapped)
		if !bytes.Equal(head, m.ad) {
			t.Fatalf("clear part does not re-encode: %x vs %x", head, m.ad)
		}
		if _, err := Links(cid.Undef, data); err != nil {
			t.Fatalf("parsed but Links failed: %v", err)
		}
	})
}

// FuzzDecodeBody guards the sealed-body decoder: a capability holder may
// be handed a maliciously crafted (but validly sealed) manifest.
func FuzzDecodeBody(f *testing.F) {
	root := &body{meta: &Meta{Name: "a b.pdf", Size: 7, ChunkSize: MinChunkSize, MediaType: "application/pdf"}, entries: []entry{{size: 7}}}
	f.Add(root.encode(), true, 1)
	node := &body{entries: []entry{{size: 1}, {size: 2}}}
	f.Add(node.encode(), false, 2)
	f.Fuzz(func(t *testing.T, p []byte, isRoot bool, nlinks int) {
		if nlinks < 0 || nlinks > 1024 {
			return
		}
		b, err := decodeBody(p, isRoot, nlinks)
		if err != nil {
			return
		}
		again, err := decodeBody(b.encode(), isRoot, nlinks)
		if err != nil {
			t.Fatalf("re-encoded body does not decode: %v", err)
		}
		if len(again.entries) != len(b.entries) || (isRoot && *again.meta != *b.meta) {
			t.Fatalf("round trip changed the body")
		}
	})
}
