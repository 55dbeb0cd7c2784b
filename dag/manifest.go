package dag

import (
	"encoding/binary"
	"fmt"
	"io/fs"
	"math"
	"math/bits"
	"unicode/utf8"

	"github.com/ipfs/go-cid"

	"github.com/casd/casd/crypt"
)

// Meta describes a file: what its manifest root seals besides the chunk list.
type Meta struct {
	Name      string      // base name, no directory
	Size      int64       // bytes of plaintext
	Mode      fs.FileMode // permission bits only
	MediaType string      // e.g. "application/pdf"; may be empty
	ChunkSize int         // plaintext bytes per chunk but the last
}

// Limits on sealed metadata.
const (
	maxNameLen      = 4096
	maxMediaTypeLen = 256
	maxHeight       = 8 // 1024^8 chunks is far beyond any file
)

// entry is what a manifest block says, under seal, about one of its links.
type entry struct {
	key  crypt.Key
	size uint64 // plaintext bytes under the link: a chunk's length or a subtree's
}

// body is the sealed part of a manifest block.
type body struct {
	meta    *Meta // root only
	entries []entry
}

// encode returns the padded plaintext of b.
func (b *body) encode() []byte {
	p := make([]byte, 0, 64+len(b.entries)*(crypt.KeySize+4))
	if b.meta != nil {
		p = binary.AppendUvarint(p, uint64(b.meta.ChunkSize))
		p = binary.AppendUvarint(p, uint64(b.meta.Size))
		p = binary.AppendUvarint(p, uint64(b.meta.Mode.Perm()))
		p = appendString(p, b.meta.Name)
		p = appendString(p, b.meta.MediaType)
	}
	for _, e := range b.entries {
		p = append(p, e.key[:]...)
		p = binary.AppendUvarint(p, e.size)
	}
	padded := padTo(len(p)+1, manifestPad) // at least one byte of padding: a body never ends ambiguously
	return append(p, make([]byte, padded-len(p))...)
}

func appendString(p []byte, s string) []byte {
	p = binary.AppendUvarint(p, uint64(len(s)))
	return append(p, s...)
}

// decodeBody parses the plaintext of a manifest block with nlinks links.
func decodeBody(p []byte, root bool, nlinks int) (*body, error) {
	d := decoder{p: p}
	b := &body{}
	if root {
		m := &Meta{}
		m.ChunkSize = int(d.uvarint(MaxChunkSize))
		m.Size = int64(d.uvarint(1 << 62))
		m.Mode = fs.FileMode(d.uvarint(uint64(fs.ModePerm)))
		m.Name = d.string(maxNameLen)
		m.MediaType = d.string(maxMediaTypeLen)
		b.meta = m
	}
	b.entries = make([]entry, nlinks)
	for i := range b.entries {
		copy(b.entries[i].key[:], d.bytes(crypt.KeySize))
		b.entries[i].size = d.uvarint(1 << 62)
	}
	if d.err != nil {
		return nil, d.err
	}
	for _, c := range d.p {
		if c != 0 {
			return nil, fmt.Errorf("%w: non-zero padding", ErrMalformed)
		}
	}
	if len(d.p) == 0 {
		return nil, fmt.Errorf("%w: missing padding", ErrMalformed)
	}
	if root {
		if err := b.checkRoot(); err != nil {
			return nil, err
		}
	}
	return b, nil
}

// checkRoot checks what a root's metadata says against its entries.
func (b *body) checkRoot() error {
	m := b.meta
	if m.ChunkSize < MinChunkSize || m.ChunkSize&(m.ChunkSize-1) != 0 {
		return fmt.Errorf("%w: chunk size %d", ErrMalformed, m.ChunkSize)
	}
	if !utf8.ValidString(m.Name) || !validName(m.Name) {
		return fmt.Errorf("%w: file name %q", ErrMalformed, m.Name)
	}
	sum, err := sumEntries(b.entries)
	if err != nil {
		return err
	}
	if sum != uint64(m.Size) {
		return fmt.Errorf("%w: entries cover %d bytes, file has %d", ErrMalformed, sum, m.Size)
	}
	return nil
}

// sumEntries adds up the sizes of es, failing with [ErrMalformed] if the
// total does not fit an int64 (a file's size): a crafted block must not
// wrap around to the size its parent expects.
func sumEntries(es []entry) (uint64, error) {
	var sum uint64
	for _, e := range es {
		s, carry := bits.Add64(sum, e.size, 0)
		if carry != 0 || s > math.MaxInt64 {
			return 0, fmt.Errorf("%w: entry sizes overflow", ErrMalformed)
		}
		sum = s
	}
	return sum, nil
}

// validName accepts a base name that is safe to create in a folder.
func validName(n string) bool {
	if n == "." || n == ".." {
		return false
	}
	for i := 0; i < len(n); i++ {
		if n[i] == '/' || n[i] == 0 {
			return false
		}
	}
	return true
}

// decoder reads varints and byte strings, keeping the first error.
type decoder struct {
	p   []byte
	err error
}

func (d *decoder) uvarint(max uint64) uint64 {
	if d.err != nil {
		return 0
	}
	v, n := uvarint(d.p)
	if n <= 0 || v > max {
		d.err = fmt.Errorf("%w: bad varint", ErrMalformed)
		return 0
	}
	d.p = d.p[n:]
	return v
}

func (d *decoder) bytes(n int) []byte {
	if d.err != nil {
		return nil
	}
	if len(d.p) < n {
		d.err = fmt.Errorf("%w: truncated body", ErrMalformed)
		return nil
	}
	b := d.p[:n]
	d.p = d.p[n:]
	return b
}

func (d *decoder) string(max int) string {
	n := d.uvarint(uint64(max))
	return string(d.bytes(int(n)))
}

// node is an opened manifest block.
type node struct {
	version byte
	height  int
	links   []cid.Cid
	body    *body
}

// open authenticates and decodes m under key; it returns the opened node
// and the plaintext of its body.
func (m *manifestBlock) open(key *crypt.Key) (*node, []byte, error) {
	pt, err := crypt.Open(nil, key, m.sealed, m.format.sealAD(m))
	if err != nil {
		return nil, nil, ErrUnauthenticated
	}
	b, err := decodeBody(pt, m.kind == KindRoot, len(m.links))
	if err != nil {
		return nil, nil, err
	}
	return &node{version: m.format.version, height: m.height, links: m.links, body: b}, pt, nil
}

// sealManifest builds a manifest block of the current format: its head,
// for a root the file key wrapped under master (bound to the head and the
// sealed body, so the body is sealed first), then the body sealed under
// its convergent key. It returns the block and that key. master is nil for
// an inner node.
func sealManifest(conv *crypt.Key, kind byte, height int, links []cid.Cid, master *crypt.Key, b *body) ([]byte, crypt.Key) {
	f := current
	pt := b.encode()
	head := appendManifestHead(make([]byte, 0, 8+len(links)*40), f.version, kind, height, links)
	key := f.manifestKey(conv, kind, head, pt)
	sealed := crypt.Seal(nil, &key, pt, head)
	block := make([]byte, 0, len(head)+crypt.WrappedKeySize+len(sealed))
	block = append(block, head...)
	if kind == KindRoot {
		block = append(block, f.wrap(master, &key, head, sealed)...)
	}
	return append(block, sealed...), key
}
