package dagtest

import (
	"context"
	"crypto/sha256"
	"encoding/binary"
	"fmt"

	"github.com/ipfs/go-cid"
	mh "github.com/multiformats/go-multihash"

	"github.com/casd/casd/blockstore"
	"github.com/casd/casd/crypt"
)

// What the forger needs of docs/format.md; dagtest does not import dag, so
// that dag's own tests may use it.
const (
	kindChunk        = 1
	kindRoot         = 3
	defaultChunkSize = 1 << 20
	maxContent       = 256 << 10
)

// Getter returns the block named c (a dag.BlockGetter).
type Getter interface {
	Get(ctx context.Context, c cid.Cid) ([]byte, error)
}

// ForgeRoot mounts the forged-root attack of docs/format.md ("Forged
// roots") as a holder of one capability of someone else's file (its root
// CID and file key) can: it
// seals, by hand as the format lays blocks out, a new one-chunk file of
// content named name, whose root carries the wrapped file key copied from
// the victim's root and whose body is sealed under the victim's file key. A reader that
// trusts the wrapped key alone would open it from its bare CID as its
// owner's own file; with the file key, anyone opens it. It returns the
// chunk and the root, root last, of the format version of the victim's
// root. content must
// be 1 to 256 KiB.
func ForgeRoot(ctx context.Context, get Getter, victimRoot cid.Cid, fileKey crypt.Key, name string, content []byte) ([]blockstore.Block, error) {
	if len(content) == 0 || len(content) > maxContent {
		return nil, fmt.Errorf("forge: %d bytes of content, want 1 to %d", len(content), maxContent)
	}
	victim, err := get.Get(ctx, victimRoot)
	if err != nil {
		return nil, fmt.Errorf("forge: get %s: %w", victimRoot, err)
	}
	wrapped, err := wrappedKey(victim)
	if err != nil {
		return nil, err
	}
	version := victim[0]
	chunk, chunkKey := forgeChunk(version, content)
	head := []byte{version, kindRoot}
	head = binary.AppendUvarint(head, 0) // height 0: the link is a chunk
	head = binary.AppendUvarint(head, 1)
	head = binary.AppendUvarint(head, uint64(chunk.Cid.ByteLen()))
	head = append(head, chunk.Cid.Bytes()...)
	ad := head // version 2 seals the body with the head as its associated data
	if version == 1 {
		ad = append(append([]byte{}, head...), wrapped...) // version 1: with the wrapped key too
	}
	body := forgeBody(name, content, &chunkKey)
	data := append(append(append([]byte{}, head...), wrapped...), crypt.Seal(nil, &fileKey, body, ad)...)
	root, err := cidOf(data)
	if err != nil {
		return nil, err
	}
	return []blockstore.Block{chunk, {Cid: root, Data: data}}, nil
}

// ForgeLinks mounts the subtler forgery of docs/format.md ("Version 1"):
// it keeps the victim's root body (name, size, chunk keys: the plaintext
// that a version-1 file key is derived from) and its wrapped file key, and
// links the root's first chunk to a chunk of content sealed under the
// chunk key that the body lists. The victim's root must have height 0, and
// content the length of its first chunk. It returns the new chunk and the
// forged root, root last.
func ForgeLinks(ctx context.Context, get Getter, victimRoot cid.Cid, fileKey crypt.Key, content []byte) ([]blockstore.Block, error) {
	victim, err := get.Get(ctx, victimRoot)
	if err != nil {
		return nil, fmt.Errorf("forge: get %s: %w", victimRoot, err)
	}
	r, err := parseRoot(victim)
	if err != nil {
		return nil, err
	}
	if r.height != 0 || len(r.links) == 0 {
		return nil, fmt.Errorf("forge: the victim's root has height %d and %d links", r.height, len(r.links))
	}
	body, err := crypt.Open(nil, &fileKey, r.sealed, r.sealAD())
	if err != nil {
		return nil, fmt.Errorf("forge: open the victim's root: %w", err)
	}
	key, size, err := firstEntry(body)
	if err != nil {
		return nil, err
	}
	if uint64(len(content)) != size {
		return nil, fmt.Errorf("forge: %d bytes of content for a chunk of %d", len(content), size)
	}
	chunk := sealChunk(r.version, &key, content)
	links := append([][]byte{chunk.Cid.Bytes()}, r.links[1:]...)
	forged := &root{version: r.version, links: links, wrapped: r.wrapped}
	forged.head = forged.encodeHead()
	data := append(append(append([]byte{}, forged.head...), r.wrapped...), crypt.Seal(nil, &fileKey, body, forged.sealAD())...)
	c, err := cidOf(data)
	if err != nil {
		return nil, err
	}
	return []blockstore.Block{chunk, {Cid: c, Data: data}}, nil
}

// root is the clear part of a root block, as docs/format.md lays it out.
type root struct {
	version byte
	height  uint64
	links   [][]byte
	head    []byte // before wrapped
	wrapped []byte
	sealed  []byte
}

// sealAD is what the root's body is sealed with: its head in version 2,
// its head and wrapped key in version 1.
func (r *root) sealAD() []byte {
	if r.version == 1 {
		return append(append([]byte{}, r.head...), r.wrapped...)
	}
	return r.head
}

func (r *root) encodeHead() []byte {
	h := []byte{r.version, kindRoot}
	h = binary.AppendUvarint(h, r.height)
	h = binary.AppendUvarint(h, uint64(len(r.links)))
	for _, l := range r.links {
		h = binary.AppendUvarint(h, uint64(len(l)))
		h = append(h, l...)
	}
	return h
}

func parseRoot(data []byte) (*root, error) {
	if len(data) < 2 || data[1] != kindRoot {
		return nil, fmt.Errorf("forge: the victim's block is not a root")
	}
	r := &root{version: data[0]}
	rest := data[2:]
	next := func() uint64 {
		v, n := binary.Uvarint(rest)
		if n <= 0 {
			n = len(rest)
		}
		rest = rest[n:]
		return v
	}
	r.height = next()
	for n := next(); n > 0; n-- {
		l := next()
		if l > uint64(len(rest)) {
			return nil, fmt.Errorf("forge: the victim's root is truncated")
		}
		r.links = append(r.links, rest[:l])
		rest = rest[l:]
	}
	if len(rest) < crypt.WrappedKeySize {
		return nil, fmt.Errorf("forge: the victim's root is truncated")
	}
	r.head = data[:len(data)-len(rest)]
	r.wrapped, r.sealed = rest[:crypt.WrappedKeySize], rest[crypt.WrappedKeySize:]
	return r, nil
}

// firstEntry skips a root body's metadata and returns its first link's
// key and size.
func firstEntry(body []byte) (crypt.Key, uint64, error) {
	var key crypt.Key
	p := body
	next := func() uint64 {
		v, n := binary.Uvarint(p)
		if n <= 0 {
			n = len(p)
		}
		p = p[n:]
		return v
	}
	next()        // chunk size
	next()        // file size
	next()        // mode
	for range 2 { // name, media type
		if l := next(); l <= uint64(len(p)) {
			p = p[l:]
		}
	}
	if len(p) < crypt.KeySize+1 {
		return key, 0, fmt.Errorf("forge: the victim's root body is truncated")
	}
	copy(key[:], p)
	p = p[crypt.KeySize:]
	return key, next(), nil
}

// wrappedKey returns the 60 bytes of a root's wrapped file key, which
// follow its height and links in the clear.
func wrappedKey(data []byte) ([]byte, error) {
	r, err := parseRoot(data)
	if err != nil {
		return nil, err
	}
	return r.wrapped, nil
}

// forgeChunk seals content as a chunk block under a key of the forger's
// choosing.
func forgeChunk(version byte, content []byte) (blockstore.Block, crypt.Key) {
	key := crypt.Key(sha256.Sum256(append([]byte("forged chunk key\x00"), content...)))
	return sealChunk(version, &key, content), key
}

// sealChunk seals content as a chunk block under key.
func sealChunk(version byte, key *crypt.Key, content []byte) blockstore.Block {
	padded := make([]byte, (len(content)+4095)/4096*4096)
	copy(padded, content)
	hdr := []byte{version, kindChunk}
	data := crypt.Seal(append([]byte{}, hdr...), key, padded, hdr)
	c, _ := cidOf(data) // sha2-256 cannot fail
	return blockstore.Block{Cid: c, Data: data}
}

// forgeBody encodes a root's body: metadata, then the one chunk's key and
// size, then zero padding to a multiple of 512 bytes (at least one byte).
func forgeBody(name string, content []byte, chunkKey *crypt.Key) []byte {
	return encodeBody(name, uint64(len(content)), []entry{{*chunkKey, uint64(len(content))}})
}

// entry is what a manifest body records of one link: its key and size.
type entry struct {
	key  crypt.Key
	size uint64
}

// encodeBody encodes a root's body: metadata with the file size size, the
// entries, then zero padding to a multiple of 512 bytes (at least one
// byte).
func encodeBody(name string, size uint64, entries []entry) []byte {
	b := binary.AppendUvarint(nil, defaultChunkSize)
	b = binary.AppendUvarint(b, size)
	b = binary.AppendUvarint(b, 0o644)
	b = binary.AppendUvarint(b, uint64(len(name)))
	b = append(b, name...)
	b = binary.AppendUvarint(b, 0) // no media type
	for _, e := range entries {
		b = append(b, e.key[:]...)
		b = binary.AppendUvarint(b, e.size)
	}
	return append(b, make([]byte, (len(b)+1+511)/512*512-len(b))...)
}

// ForgeSizes mounts the lying-manifest attack (issue 7, point 9) as any
// stranger can: it seals, in format version 2, a file of one root of
// height 0 over chunks whose entries record their true lengths, while the
// root's metadata says the file has size bytes. With size below the
// chunks' sum, a reader that trusted the entries would write past the
// file's size. It returns the chunks, then the root, and the file key
// (the capability's). Each chunk must be 1 to 256 KiB.
func ForgeSizes(name string, size uint64, chunks ...[]byte) ([]blockstore.Block, crypt.Key, error) {
	var (
		blocks  []blockstore.Block
		entries []entry
	)
	head := []byte{2, kindRoot}
	head = binary.AppendUvarint(head, 0) // height 0: the links are chunks
	head = binary.AppendUvarint(head, uint64(len(chunks)))
	for i, content := range chunks {
		if len(content) == 0 || len(content) > maxContent {
			return nil, crypt.Key{}, fmt.Errorf("forge: chunk %d of %d bytes, want 1 to %d", i, len(content), maxContent)
		}
		chunk, key := forgeChunk(2, content)
		blocks = append(blocks, chunk)
		entries = append(entries, entry{key, uint64(len(content))})
		head = binary.AppendUvarint(head, uint64(chunk.Cid.ByteLen()))
		head = append(head, chunk.Cid.Bytes()...)
	}
	fileKey := crypt.Key(sha256.Sum256(append([]byte("forged file key\x00"), head...)))
	// No owner opens this file, so its wrapped key is any 60 bytes: the
	// capability carries the file key.
	wrapped := make([]byte, crypt.WrappedKeySize)
	sealed := crypt.Seal(nil, &fileKey, encodeBody(name, size, entries), head)
	data := append(append(append([]byte{}, head...), wrapped...), sealed...)
	c, err := cidOf(data)
	if err != nil {
		return nil, crypt.Key{}, err
	}
	return append(blocks, blockstore.Block{Cid: c, Data: data}), fileKey, nil
}

func cidOf(data []byte) (cid.Cid, error) {
	h, err := mh.Sum(data, mh.SHA2_256, -1)
	if err != nil {
		return cid.Undef, fmt.Errorf("forge: hash: %w", err)
	}
	return cid.NewCidV1(cid.Raw, h), nil
}
