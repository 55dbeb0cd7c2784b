package dag

import (
	"github.com/ipfs/go-cid"

	"github.com/casd/casd/blockstore"
	"github.com/casd/casd/crypt"
)

// link is a child of a manifest block: its CID in the clear, its key and
// size under seal.
type link struct {
	cid   cid.Cid
	entry entry
}

// treeBuilder builds the manifest tree bottom-up as chunks arrive, so that
// it holds at most fanout links per level: memory grows with the tree's
// height, never with the file.
type treeBuilder struct {
	conv    *crypt.Key
	fanout  int
	levels  [][]link // levels[h]: pending links of a block of height h
	emitted []blockstore.Block
	total   uint64 // plaintext bytes added
}

// add appends a link at height h (h = 0: a chunk), first sealing the
// pending links of that height into a node when they fill one.
func (t *treeBuilder) add(h int, l link) {
	if h == 0 {
		t.total += l.entry.size
	}
	for len(t.levels) <= h {
		t.levels = append(t.levels, make([]link, 0, t.fanout))
	}
	if len(t.levels[h]) == t.fanout {
		t.flush(h)
	}
	t.levels[h] = append(t.levels[h], l)
}

// flush seals the pending links of height h into an inner node and adds
// that node to height h+1.
func (t *treeBuilder) flush(h int) {
	links := t.levels[h]
	b := &body{entries: entries(links)}
	data, key := sealManifest(t.conv, KindNode, h, cids(links), nil, b)
	c := blockCID(data)
	t.emitted = append(t.emitted, blockstore.Block{Cid: c, Data: data})
	t.levels[h] = links[:0]
	t.add(h+1, link{cid: c, entry: entry{key: key, size: sumSizes(links)}})
}

// finish folds every level into the one above until one level is left,
// and seals it as the root. It returns the root block and the file key.
// Its file key is wrapped under master.
func (t *treeBuilder) finish(meta *Meta, master *crypt.Key) (blockstore.Block, crypt.Key) {
	if len(t.levels) == 0 {
		t.levels = append(t.levels, nil)
	}
	for h := 0; h < len(t.levels)-1; h++ {
		if len(t.levels[h]) > 0 {
			t.flush(h)
		}
	}
	top := len(t.levels) - 1
	links := t.levels[top]
	b := &body{meta: meta, entries: entries(links)}
	data, key := sealManifest(t.conv, KindRoot, top, cids(links), master, b)
	return blockstore.Block{Cid: blockCID(data), Data: data}, key
}

// takeEmitted returns the inner nodes sealed since the last call.
func (t *treeBuilder) takeEmitted() []blockstore.Block {
	e := t.emitted
	t.emitted = nil
	return e
}

func entries(links []link) []entry {
	es := make([]entry, len(links))
	for i, l := range links {
		es[i] = l.entry
	}
	return es
}

func cids(links []link) []cid.Cid {
	cs := make([]cid.Cid, len(links))
	for i, l := range links {
		cs[i] = l.cid
	}
	return cs
}

func sumSizes(links []link) uint64 {
	var n uint64
	for _, l := range links {
		n += l.entry.size
	}
	return n
}
