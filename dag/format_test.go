package dag_test

import (
	"encoding/binary"
	"testing"

	"github.com/ipfs/go-cid"
	mh "github.com/multiformats/go-multihash"
	"github.com/stretchr/testify/require"

	"github.com/casd/casd/blockstore/blockstoretest"
	"github.com/casd/casd/crypt"
	"github.com/casd/casd/dag"
	"github.com/casd/casd/dag/dagtest"
)

// manifest writes a manifest block's clear part as docs/format.md lays it
// out, followed by sealed bytes of the given length (any bytes: Links does
// not open them).
func manifest(kind byte, height uint64, nlinks uint64, links [][]byte, sealed int) []byte {
	b := []byte{dag.FormatVersion, kind}
	b = binary.AppendUvarint(b, height)
	b = binary.AppendUvarint(b, nlinks)
	for _, l := range links {
		b = binary.AppendUvarint(b, uint64(len(l)))
		b = append(b, l...)
	}
	if kind == dag.KindRoot {
		b = append(b, make([]byte, crypt.WrappedKeySize)...)
	}
	return append(b, make([]byte, sealed)...)
}

// identityCID returns the bytes of a CIDv1 whose identity multihash holds
// digest, a CID of any length up to what the hash allows.
func identityCID(t testing.TB, digest []byte) []byte {
	t.Helper()
	h, err := mh.Sum(digest, mh.IDENTITY, -1)
	require.NoError(t, err)
	return cid.NewCidV1(cid.Raw, h).Bytes()
}

// TestLinksLimits: Links reads the clear part of a manifest block, from
// any peer, without a key. It accepts what the format allows (up to 65536
// links, heights up to 8, links that are CIDv1 raw sha2-256, a sealed part
// of at least a GCM tag) and refuses, as ErrMalformed, anything beyond,
// including a link of another form or one longer than 128 bytes.
func TestLinksLimits(t *testing.T) {
	child := cidOf(t, []byte("child")).Bytes()
	long := identityCID(t, make([]byte, 124))
	require.Len(t, long, 128)
	tooLong := identityCID(t, make([]byte, 125))
	many := make([][]byte, dag.MaxLinks)
	for i := range many {
		many[i] = child
	}
	cases := []struct {
		name  string
		block []byte
		links int // -1: ErrMalformed
	}{
		{"node", manifest(dag.KindNode, 0, 1, [][]byte{child}, crypt.Overhead+512), 1},
		{"root", manifest(dag.KindRoot, 0, 1, [][]byte{child}, crypt.Overhead+512), 1},
		{"no links", manifest(dag.KindNode, 0, 0, nil, crypt.Overhead+512), 0},
		{"height 8", manifest(dag.KindNode, 8, 1, [][]byte{child}, crypt.Overhead), 1},
		{"height 9", manifest(dag.KindNode, 9, 1, [][]byte{child}, crypt.Overhead), -1},
		{"identity CID of 128 bytes", manifest(dag.KindNode, 0, 1, [][]byte{long}, crypt.Overhead), -1},
		{"CID of 129 bytes", manifest(dag.KindNode, 0, 1, [][]byte{tooLong}, crypt.Overhead), -1},
		{"65536 links", manifest(dag.KindNode, 1, dag.MaxLinks, many, crypt.Overhead), dag.MaxLinks},
		{"65537 links", manifest(dag.KindNode, 1, dag.MaxLinks+1, append(many, child), crypt.Overhead), -1},
		{"more links than stated", manifest(dag.KindNode, 0, 1, [][]byte{child, child}, 0), 1},
		{"sealed part of one tag", manifest(dag.KindRoot, 0, 1, [][]byte{child}, crypt.Overhead), 1},
		{"sealed part shorter than a tag", manifest(dag.KindRoot, 0, 1, [][]byte{child}, crypt.Overhead-1), -1},
		{"root without its wrapped key", asRoot(manifest(dag.KindNode, 0, 1, [][]byte{child}, crypt.WrappedKeySize-1)), -1},
		{"root without a sealed part", asRoot(manifest(dag.KindNode, 0, 1, [][]byte{child}, crypt.WrappedKeySize)), -1},
		{"link not a CID", manifest(dag.KindNode, 0, 1, [][]byte{[]byte("not a cid")}, crypt.Overhead), -1},
		{"non-minimal height varint", append([]byte{dag.FormatVersion, dag.KindNode, 0x80, 0x00, 0x00}, make([]byte, crypt.Overhead)...), -1},
	}
	// Hostile peers, point 13: a link that is not CIDv1 raw sha2-256 is
	// malformed, whatever its length.
	for _, bad := range blockstoretest.BadCids([]byte("chunk")) {
		cases = append(cases, struct {
			name  string
			block []byte
			links int
		}{"link " + bad.Name, manifest(dag.KindNode, 0, 2, [][]byte{child, bad.Cid.Bytes()}, crypt.Overhead), -1})
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			links, err := dag.Links(cid.Undef, tc.block)
			if tc.links < 0 {
				require.ErrorIs(t, err, dag.ErrMalformed)
				return
			}
			require.NoError(t, err)
			require.Len(t, links, tc.links)
		})
	}
}

// asRoot turns a node's bytes into a root's, without adding a wrapped key.
func asRoot(b []byte) []byte {
	b[1] = dag.KindRoot
	return b
}

// TestLinksRejectsTruncatedBlocks: every prefix of a real manifest block
// (root or inner node) that cuts into its clear part or leaves less than a
// GCM tag of its sealed part is refused as malformed, without a panic;
// longer prefixes still list the same links, since Links does not open the
// sealed part.
func TestLinksRejectsTruncatedBlocks(t *testing.T) {
	st := dagtest.NewMemStore()
	add(t, st, randomBytes(5*dag.MinChunkSize, 5), "x", testSecrets(1), smallTree)
	manifests := 0
	for c, data := range st.All() {
		kind, err := dag.BlockKind(data)
		require.NoError(t, err)
		if kind == dag.KindChunk {
			continue
		}
		manifests++
		want, err := dag.Links(c, data)
		require.NoError(t, err)
		// The clear part, per docs/format.md (heights here take one byte).
		clearLen := 2 + 1 + len(binary.AppendUvarint(nil, uint64(len(want))))
		for _, l := range want {
			clearLen += len(binary.AppendUvarint(nil, uint64(l.ByteLen()))) + l.ByteLen()
		}
		if kind == dag.KindRoot {
			clearLen += crypt.WrappedKeySize
		}
		for n := range clearLen + crypt.Overhead + 2 {
			links, err := dag.Links(c, data[:n])
			if n < clearLen+crypt.Overhead {
				require.ErrorIs(t, err, dag.ErrMalformed, "%s cut to %d bytes of %d", c, n, len(data))
				continue
			}
			require.NoError(t, err, "%s cut to %d bytes", c, n)
			require.Equal(t, want, links)
		}
	}
	require.Equal(t, 6, manifests) // five chunks at fanout 2: five nodes and the root
}

// TestBlockKind: the two header bytes are all BlockKind needs.
func TestBlockKind(t *testing.T) {
	for _, kind := range []byte{dag.KindChunk, dag.KindNode, dag.KindRoot} {
		got, err := dag.BlockKind([]byte{dag.FormatVersion, kind})
		require.NoError(t, err)
		require.Equal(t, kind, got)
	}
	for _, bad := range [][]byte{nil, {dag.FormatVersion}, {0, dag.KindChunk}, {3, dag.KindChunk}, {dag.FormatVersion, 0}, {dag.FormatVersion, 4}} {
		_, err := dag.BlockKind(bad)
		require.ErrorIs(t, err, dag.ErrMalformed, "header %x", bad)
	}
}
