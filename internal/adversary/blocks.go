package adversary

import (
	"crypto/rand"
	"encoding/binary"
	"errors"
	"fmt"

	"github.com/ipfs/go-cid"
	mh "github.com/multiformats/go-multihash"

	"github.com/casd/casd/crypt"
	"github.com/casd/casd/dag"
	"github.com/casd/casd/protocol/pb"
)

// Blocks are built as docs/format.md specifies, from their clear part only:
// a keyless walker (the victim's store, GC, verify, refs) reads the header,
// the height and the links, and never the sealed body, which is random
// here. No key is needed to make a block that parses and walks.

// sealedSize is the length of the random "sealed" body of a forged
// manifest block: the AEAD tag's size, the least a reader accepts.
const sealedSize = crypt.Overhead

// CID returns the CIDv1 raw sha2-256 of data, the only CID casd accepts.
func CID(data []byte) cid.Cid {
	h, err := mh.Sum(data, mh.SHA2_256, -1)
	if err != nil {
		panic(fmt.Sprintf("adversary: sha2-256: %v", err)) // cannot fail for sha2-256
	}
	return cid.NewCidV1(cid.Raw, h)
}

// NewBlock names data by its CID.
func NewBlock(data []byte) pb.Block { return pb.Block{Cid: CID(data), Data: data} }

// Chunk returns a block of kind chunk holding n random bytes after its
// header: it parses as a chunk and no key opens it.
func Chunk(n int) pb.Block {
	data := make([]byte, 2+n)
	data[0], data[1] = dag.FormatVersion, dag.KindChunk
	_, _ = rand.Read(data[2:])
	return NewBlock(data)
}

// Root returns a manifest root of the given height linking to links, with
// a random wrapped key and a random sealed body.
func Root(height int, links []cid.Cid) pb.Block {
	return NewBlock(manifest(dag.KindRoot, height, links))
}

// Node returns an inner manifest node of the given height linking to links,
// with a random sealed body.
func Node(height int, links []cid.Cid) pb.Block {
	return NewBlock(manifest(dag.KindNode, height, links))
}

// manifest builds the clear part of a manifest block (version, kind,
// uvarint height, uvarint link count, each link as uvarint length and
// bytes, the 60-byte wrapped key of a root) and appends random bytes for
// the sealed body.
func manifest(kind byte, height int, links []cid.Cid) []byte {
	b := []byte{dag.FormatVersion, kind}
	b = binary.AppendUvarint(b, uint64(height))
	b = binary.AppendUvarint(b, uint64(len(links)))
	for _, l := range links {
		lb := l.Bytes()
		b = binary.AppendUvarint(b, uint64(len(lb)))
		b = append(b, lb...)
	}
	n := sealedSize
	if kind == dag.KindRoot {
		n += crypt.WrappedKeySize
	}
	tail := make([]byte, n)
	_, _ = rand.Read(tail)
	return append(b, tail...)
}

// Bomb returns a DAG bomb: a root of the given height whose every level
// links fanout times to the one node of the level below, down to one
// chunk. It is height+2 distinct blocks (root first, chunk last) whose
// tree, walked naively, has fanout^(height+1) paths.
func Bomb(height, fanout int) []pb.Block {
	out := make([]pb.Block, height+2)
	out[height+1] = Chunk(16)
	for h := 0; h <= height; h++ {
		links := repeat(out[height+1-h].Cid, fanout)
		if h == height {
			out[0] = Root(h, links)
		} else {
			out[height-h] = Node(h, links)
		}
	}
	return out
}

func repeat(c cid.Cid, n int) []cid.Cid {
	out := make([]cid.Cid, n)
	for i := range out {
		out[i] = c
	}
	return out
}

// Manifest is the clear part of a manifest block, as any peer reads it.
type Manifest struct {
	Kind   byte
	Height int
	Links  []cid.Cid
}

// ErrNotManifest is returned by [ParseManifest] for a block that is not a
// manifest block of this format version.
var ErrNotManifest = errors.New("adversary: not a manifest block")

// ParseManifest reads the clear part of a manifest block: what an
// adversary learns of someone's file from its root (links are in the
// clear).
func ParseManifest(data []byte) (Manifest, error) {
	if len(data) < 2 || data[0] != dag.FormatVersion || (data[1] != dag.KindRoot && data[1] != dag.KindNode) {
		return Manifest{}, ErrNotManifest
	}
	m := Manifest{Kind: data[1]}
	rest := data[2:]
	h, k := binary.Uvarint(rest)
	if k <= 0 {
		return Manifest{}, fmt.Errorf("%w: height", ErrNotManifest)
	}
	m.Height, rest = int(h), rest[k:]
	n, k := binary.Uvarint(rest)
	if k <= 0 || n > dag.MaxLinks {
		return Manifest{}, fmt.Errorf("%w: link count", ErrNotManifest)
	}
	rest = rest[k:]
	for i := uint64(0); i < n; i++ {
		l, k := binary.Uvarint(rest)
		if k <= 0 || uint64(len(rest)-k) < l {
			return Manifest{}, fmt.Errorf("%w: link %d", ErrNotManifest, i)
		}
		c, err := cid.Cast(rest[k : k+int(l)])
		if err != nil {
			return Manifest{}, fmt.Errorf("%w: link %d: %w", ErrNotManifest, i, err)
		}
		m.Links = append(m.Links, c)
		rest = rest[k+int(l):]
	}
	return m, nil
}
