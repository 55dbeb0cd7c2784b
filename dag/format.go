package dag

import (
	"encoding/binary"
	"errors"
	"fmt"

	"github.com/ipfs/go-cid"
	mh "github.com/multiformats/go-multihash"

	"github.com/casd/casd/blockstore"
	"github.com/casd/casd/crypt"
)

// Block kinds, the second byte of every block.
const (
	KindChunk byte = 1 // sealed file data
	KindNode  byte = 2 // inner manifest node: links to nodes or chunks
	KindRoot  byte = 3 // manifest root: file metadata, wrapped file key, links
)

// Sizes of the data model.
const (
	DefaultChunkSize = 1 << 20
	MinChunkSize     = 256 << 10
	MaxChunkSize     = 4 << 20
	// DefaultFanout is the most links a manifest block written by this
	// version holds (about 75 KiB of manifest per block).
	DefaultFanout = 1024
	// MaxLinks bounds what a reader accepts in one manifest block.
	MaxLinks = 1 << 16
	// chunkPad and manifestPad round sealed plaintexts up so that only a
	// rounded length shows to a peer without the key.
	chunkPad    = 4096
	manifestPad = 512
	headerSize  = 2
)

var (
	// ErrMalformed is returned for a block that does not follow docs/format.md.
	ErrMalformed = errors.New("dag: malformed block")
	// ErrNotFile is returned when a CID names a block that is not a file's root.
	ErrNotFile = errors.New("dag: not a file's root block")
	// ErrNeedCapability is returned when a root's file key is not wrapped for
	// this node's master key: only a capability opens it.
	ErrNeedCapability = errors.New("dag: file not owned by this node; a capability is needed to read it")
	// ErrUnauthenticated is returned when a block does not open under its key:
	// the key is wrong or the block was altered.
	ErrUnauthenticated = errors.New("dag: authentication failed (wrong key or corrupt block)")
)

// cidPrefix is CIDv1, raw codec, sha2-256: the CID of every block.
var cidPrefix = cid.Prefix{Version: 1, Codec: cid.Raw, MhType: mh.SHA2_256, MhLength: -1}

// blockCID returns the CID of a block's bytes.
func blockCID(data []byte) cid.Cid {
	c, err := cidPrefix.Sum(data)
	if err != nil {
		panic(fmt.Sprintf("dag: sha2-256 CID: %v", err)) // cannot fail for sha2-256
	}
	return c
}

// BlockKind returns the kind byte of a block after checking its version:
// one that this casd reads (1 or 2).
func BlockKind(data []byte) (byte, error) {
	if len(data) < headerSize {
		return 0, fmt.Errorf("%w: %d bytes", ErrMalformed, len(data))
	}
	if _, err := formatOf(data[0]); err != nil {
		return 0, err
	}
	switch data[1] {
	case KindChunk, KindNode, KindRoot:
		return data[1], nil
	}
	return 0, fmt.Errorf("%w: unknown kind %d", ErrMalformed, data[1])
}

// manifestBlock is a parsed manifest block (root or node) before opening.
type manifestBlock struct {
	format  *format
	kind    byte
	height  int // 0: links are chunks; h: links are nodes of height h-1
	links   []cid.Cid
	wrapped []byte // root only: file key wrapped under the master key
	head    []byte // the clear part before wrapped
	clear   []byte // everything before the sealed body: head, then wrapped
	sealed  []byte
}

// parseManifestBlock splits a manifest block into its clear and sealed parts.
func parseManifestBlock(data []byte) (*manifestBlock, error) {
	kind, err := BlockKind(data)
	if err != nil {
		return nil, err
	}
	if kind == KindChunk {
		return nil, fmt.Errorf("%w: a chunk has no links", ErrNotFile)
	}
	f, _ := formatOf(data[0]) // BlockKind checked it
	m := &manifestBlock{format: f, kind: kind}
	rest := data[headerSize:]
	h, k := uvarint(rest)
	if k <= 0 || h > maxHeight {
		return nil, fmt.Errorf("%w: height", ErrMalformed)
	}
	m.height = int(h)
	rest = rest[k:]
	n, k := uvarint(rest)
	if k <= 0 || n > MaxLinks {
		return nil, fmt.Errorf("%w: link count", ErrMalformed)
	}
	rest = rest[k:]
	m.links = make([]cid.Cid, 0, n)
	for i := uint64(0); i < n; i++ {
		l, k := uvarint(rest)
		if k <= 0 || l > 128 || uint64(len(rest)-k) < l {
			return nil, fmt.Errorf("%w: link %d length", ErrMalformed, i)
		}
		c, err := cid.Cast(rest[k : k+int(l)])
		if err != nil {
			return nil, fmt.Errorf("%w: link %d: %v", ErrMalformed, i, err)
		}
		// Only CIDv1 raw sha2-256 names a block: an identity link would
		// carry a forged chunk inside the manifest, a truncated one would
		// let a peer collide it.
		if err := blockstore.CheckCid(c); err != nil {
			return nil, fmt.Errorf("%w: link %d: %w", ErrMalformed, i, err)
		}
		m.links = append(m.links, c)
		rest = rest[k+int(l):]
	}
	m.head = data[:len(data)-len(rest)]
	if kind == KindRoot {
		if len(rest) < crypt.WrappedKeySize {
			return nil, fmt.Errorf("%w: root too short for its wrapped key", ErrMalformed)
		}
		m.wrapped = rest[:crypt.WrappedKeySize]
		rest = rest[crypt.WrappedKeySize:]
	}
	if len(rest) < crypt.Overhead {
		return nil, fmt.Errorf("%w: sealed body too short", ErrMalformed)
	}
	m.clear = data[:len(data)-len(rest)]
	m.sealed = rest
	return m, nil
}

// Links lists the children of a block from its clear part, without any key.
// A chunk has none. It has the signature of blockstore.LinkFunc.
func Links(_ cid.Cid, data []byte) ([]cid.Cid, error) {
	kind, err := BlockKind(data)
	if err != nil {
		return nil, err
	}
	if kind == KindChunk {
		return nil, nil
	}
	m, err := parseManifestBlock(data)
	if err != nil {
		return nil, err
	}
	return m.links, nil
}

// LinksAreLeaves reports, from a block's clear part, that none of its
// children has children: a manifest block of height 0 (its links are
// chunks), or a chunk. It has the signature of blockstore.LeafFunc, so that
// GC need not read chunks.
func LinksAreLeaves(_ cid.Cid, data []byte) bool {
	kind, err := BlockKind(data)
	if err != nil {
		return false
	}
	if kind == KindChunk {
		return true
	}
	m, err := parseManifestBlock(data)
	return err == nil && m.height == 0
}

// appendManifestHead appends the head of a manifest block to dst: its clear
// part but for a root's wrapped key.
func appendManifestHead(dst []byte, version, kind byte, height int, links []cid.Cid) []byte {
	dst = append(dst, version, kind)
	dst = binary.AppendUvarint(dst, uint64(height))
	dst = binary.AppendUvarint(dst, uint64(len(links)))
	for _, l := range links {
		b := l.Bytes()
		dst = binary.AppendUvarint(dst, uint64(len(b)))
		dst = append(dst, b...)
	}
	return dst
}

// padTo rounds n up to a multiple of m.
func padTo(n, m int) int { return (n + m - 1) / m * m }

// uvarint decodes a minimally encoded unsigned varint: a block has exactly
// one encoding, so parse and re-encode agree. n <= 0 means malformed.
func uvarint(b []byte) (v uint64, n int) {
	v, n = binary.Uvarint(b)
	if n > 0 && n != uvarintLen(v) {
		return 0, -1
	}
	return v, n
}

func uvarintLen(v uint64) int {
	n := 1
	for v >= 0x80 {
		v >>= 7
		n++
	}
	return n
}
