package dag

import (
	"crypto/sha256"
	"fmt"

	"github.com/casd/casd/crypt"
)

// FormatVersion is the version byte that starts every block casd writes.
// Version 1 blocks are still read (see [format]).
const FormatVersion = 2

// format is what differs between versions of the block format: how keys
// are derived, and what a manifest block's sealed body and a root's
// wrapped file key are bound to. It is the one place that dispatches on a
// block's version byte; docs/format.md describes both versions.
type format struct {
	version byte
	// chunkKey derives a chunk's key from its plaintext.
	chunkKey func(conv *crypt.Key, plain []byte) crypt.Key
	// manifestKey derives a manifest block's key from its head (the clear
	// part before a root's wrapped key) and its body (the padded plaintext).
	manifestKey func(conv *crypt.Key, kind byte, head, body []byte) crypt.Key
	// sealAD is the associated data of a manifest block's sealed body.
	sealAD func(m *manifestBlock) []byte
	// wrapAD is the associated data of a root's wrapped file key.
	wrapAD func(head, sealed []byte) []byte
	// unwrap opens a wrapped file key under the master key.
	unwrap func(master *crypt.Key, wrapped, ad []byte) (crypt.Key, error)
	// keysCoverLinks says that a manifest block's key covers its links and
	// height, so that an owner's check of the root's key proves every block
	// of the file; otherwise an owner checks each block as it reads it.
	keysCoverLinks bool
}

// formats are the versions this casd reads; current is the one it writes.
var (
	formats = map[byte]*format{1: &formatV1, 2: &formatV2}
	current = formats[FormatVersion]
)

// rootKeyADv1 is format 1's associated data of a wrapped file key: the
// same for every root, which is why version 1 binds nothing (see OpenOwned).
var rootKeyADv1 = []byte("casd/v1/root-file-key")

// rootKeyLabel starts format 2's associated data of a wrapped file key.
const rootKeyLabel = "casd/v2/root-file-key\x00"

var formatV1 = format{
	version:     1,
	chunkKey:    crypt.ConvergentKeyV1,
	manifestKey: func(conv *crypt.Key, _ byte, _, body []byte) crypt.Key { return crypt.ConvergentKeyV1(conv, body) },
	sealAD:      func(m *manifestBlock) []byte { return m.clear },
	wrapAD:      func(_, _ []byte) []byte { return rootKeyADv1 },
	unwrap:      crypt.UnwrapKeyV1,
}

var formatV2 = format{
	version: 2,
	chunkKey: func(conv *crypt.Key, plain []byte) crypt.Key {
		return crypt.ConvergentKey(conv, crypt.LabelChunk, plain)
	},
	manifestKey: func(conv *crypt.Key, kind byte, head, body []byte) crypt.Key {
		if kind == KindRoot {
			return crypt.ConvergentKey(conv, crypt.LabelRoot, head, body)
		}
		return crypt.ConvergentKey(conv, crypt.LabelNode, head, body)
	},
	sealAD: func(m *manifestBlock) []byte { return m.head },
	// The wrap is bound to the root it sits in: to its head and its sealed
	// body, that is the whole block but the wrap, which is sealed first.
	wrapAD: func(head, sealed []byte) []byte {
		h := sha256.New()
		h.Write(head)
		h.Write(sealed)
		return h.Sum([]byte(rootKeyLabel))
	},
	unwrap:         crypt.UnwrapKey,
	keysCoverLinks: true,
}

// formatOf returns the format of a block's version byte.
func formatOf(version byte) (*format, error) {
	f, ok := formats[version]
	if !ok {
		return nil, fmt.Errorf("%w: format version %d, this casd reads 1 and 2", ErrMalformed, version)
	}
	return f, nil
}

// wrap returns the root's file key wrapped under master, bound to the
// root's head and sealed body.
func (f *format) wrap(master, key *crypt.Key, head, sealed []byte) []byte {
	return crypt.WrapKey(master, key, f.wrapAD(head, sealed))
}

// checkOwned reports whether key is the one the owner's convergence secret
// derives for the manifest block m of body pt: a block forged by someone
// who holds a capability, and so the key but not the secret, is not.
func (f *format) checkOwned(conv *crypt.Key, m *manifestBlock, pt []byte, key *crypt.Key) error {
	want := f.manifestKey(conv, m.kind, m.head, pt)
	if !crypt.KeysEqual(&want, key) {
		return fmt.Errorf("%w: its key is not the one this node derives for its content (forged with a capability)", ErrNeedCapability)
	}
	return nil
}
