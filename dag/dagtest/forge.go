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

// wrappedKey returns the 60 bytes of a root's wrapped file key, which
// follow its height and links in the clear.
func wrappedKey(data []byte) ([]byte, error) {
	if len(data) < 2 || data[1] != kindRoot {
		return nil, fmt.Errorf("forge: the victim's block is not a root")
	}
	rest := data[2:]
	next := func() uint64 {
		v, n := binary.Uvarint(rest)
		if n <= 0 {
			n = len(rest)
		}
		rest = rest[n:]
		return v
	}
	next() // height
	for n := next(); n > 0; n-- {
		l := next()
		if l > uint64(len(rest)) {
			return nil, fmt.Errorf("forge: the victim's root is truncated")
		}
		rest = rest[l:]
	}
	if len(rest) < crypt.WrappedKeySize {
		return nil, fmt.Errorf("forge: the victim's root is truncated")
	}
	return rest[:crypt.WrappedKeySize], nil
}

// forgeChunk seals content as a chunk block under a key of the forger's
// choosing.
func forgeChunk(version byte, content []byte) (blockstore.Block, crypt.Key) {
	key := crypt.Key(sha256.Sum256(append([]byte("forged chunk key\x00"), content...)))
	padded := make([]byte, (len(content)+4095)/4096*4096)
	copy(padded, content)
	hdr := []byte{version, kindChunk}
	data := crypt.Seal(append([]byte{}, hdr...), &key, padded, hdr)
	c, _ := cidOf(data) // sha2-256 cannot fail
	return blockstore.Block{Cid: c, Data: data}, key
}

// forgeBody encodes a root's body: metadata, then the one chunk's key and
// size, then zero padding to a multiple of 512 bytes (at least one byte).
func forgeBody(name string, content []byte, chunkKey *crypt.Key) []byte {
	b := binary.AppendUvarint(nil, defaultChunkSize)
	b = binary.AppendUvarint(b, uint64(len(content)))
	b = binary.AppendUvarint(b, 0o644)
	b = binary.AppendUvarint(b, uint64(len(name)))
	b = append(b, name...)
	b = binary.AppendUvarint(b, 0) // no media type
	b = append(b, chunkKey[:]...)
	b = binary.AppendUvarint(b, uint64(len(content)))
	return append(b, make([]byte, (len(b)+1+511)/512*512-len(b))...)
}

func cidOf(data []byte) (cid.Cid, error) {
	h, err := mh.Sum(data, mh.SHA2_256, -1)
	if err != nil {
		return cid.Undef, fmt.Errorf("forge: hash: %w", err)
	}
	return cid.NewCidV1(cid.Raw, h), nil
}
