package dag

import (
	"bytes"
	"encoding/hex"
	"encoding/json"
	"os"
	"path/filepath"
	"testing"

	"github.com/ipfs/go-cid"
	"github.com/stretchr/testify/require"

	"github.com/casd/casd/blockstore"
	"github.com/casd/casd/crypt"
	"github.com/casd/casd/dag/dagtest"
)

// These tests mount the attack of the "Hostile peers" issue, point 10: a
// holder of one capability (a root CID and its file key) copies the
// owner's wrapped file key into a root of their own, sealed under that
// key, which the owner's node must not open from a bare CID as its own.

// goldenFile is a stored golden vector, loaded into a store: a genuine file
// of the vector's format version, with its owner's secrets.
type goldenFile struct {
	st      *dagtest.MemStore
	secrets crypt.Secrets
	cap     Capability
}

// loadGolden loads the vector of the given name and format version.
func loadGolden(t testing.TB, name string, version int) *goldenFile {
	t.Helper()
	raw, err := os.ReadFile(filepath.Join("testdata", "golden.json"))
	require.NoError(t, err)
	var vs []struct {
		Name, Master, Convergence, Capability string
		Version                               int
		SmallBlocks                           map[string]string
	}
	require.NoError(t, json.Unmarshal(raw, &vs))
	for _, v := range vs {
		if v.Name != name || v.Version != version {
			continue
		}
		g := &goldenFile{st: dagtest.NewMemStore()}
		for c, h := range v.SmallBlocks {
			b, err := hex.DecodeString(h)
			require.NoError(t, err)
			g.st.Set(cid.MustParse(c), b)
		}
		_, err := hex.Decode(g.secrets.Master[:], []byte(v.Master))
		require.NoError(t, err)
		_, err = hex.Decode(g.secrets.Convergence[:], []byte(v.Convergence))
		require.NoError(t, err)
		g.cap, err = ParseCapability(v.Capability)
		require.NoError(t, err)
		return g
	}
	t.Fatalf("no golden vector %s of version %d", name, version)
	return nil
}

// forgeLinks mounts the subtler forgery: it keeps the owner's root body
// (metadata, chunk keys and sizes: the plaintext a version-1 file key is
// derived from) and wrapped key, but links the root's one chunk to a chunk
// of the forger's content, sealed under the chunk key that the body lists.
// It returns the forged root.
func forgeLinks(t testing.TB, g *goldenFile, content []byte) cid.Cid {
	t.Helper()
	data, err := g.st.Get(t.Context(), g.cap.Root)
	require.NoError(t, err)
	m, err := parseManifestBlock(data)
	require.NoError(t, err)
	n, pt, err := m.open(&g.cap.Key)
	require.NoError(t, err)
	require.Len(t, n.links, 1)
	e := n.body.entries[0]
	require.Len(t, content, int(e.size))
	chunk := forgeChunk(m.format.version, &e.key, content)
	g.st.Set(chunk.Cid, chunk.Data)
	head := appendManifestHead(nil, m.format.version, KindRoot, 0, []cid.Cid{chunk.Cid})
	forged := &manifestBlock{format: m.format, head: head, clear: append(bytes.Clone(head), m.wrapped...)}
	root := append(bytes.Clone(forged.clear), crypt.Seal(nil, &g.cap.Key, pt, m.format.sealAD(forged))...)
	c := blockCID(root)
	g.st.Set(c, root)
	return c
}

// forgeChunk seals p as a chunk of the given format under key.
func forgeChunk(version byte, key *crypt.Key, p []byte) blockstore.Block {
	padded := make([]byte, padTo(len(p), chunkPad))
	copy(padded, p)
	hdr := []byte{version, KindChunk}
	data := crypt.Seal(bytes.Clone(hdr), key, padded, hdr)
	return blockstore.Block{Cid: blockCID(data), Data: data}
}

// TestOwnedV1ForgedLinks: a version-1 file key covers the root's body but
// not its links, so a root forged with the owner's body, wrapped key and
// file key, linking a chunk of the forger's, opens as the owner's; but no
// byte of the forged chunk is written, VerifyOwned (what share runs)
// refuses it, and both fail with ErrNeedCapability. A capability holder
// reads the forgery, which shows that it is well-formed.
func TestOwnedV1ForgedLinks(t *testing.T) {
	g := loadGolden(t, "hello", 1)
	evil := []byte("not what you wrote\n")
	root := forgeLinks(t, g, evil)

	byCap, err := OpenFile(t.Context(), g.st, root, g.cap.Key)
	require.NoError(t, err)
	var got bytes.Buffer
	_, err = byCap.WriteTo(t.Context(), &got, g.st, ReadOptions{})
	require.NoError(t, err)
	require.Equal(t, evil, got.Bytes(), "the forgery must be well-formed for this test to mean anything")

	f, err := OpenOwned(t.Context(), g.st, root, &g.secrets)
	require.NoError(t, err, "a version-1 root's file key does not cover its links")
	w := &countWriter{}
	_, err = f.WriteTo(t.Context(), w, g.st, ReadOptions{})
	require.ErrorIs(t, err, ErrNeedCapability)
	require.Zero(t, w.n, "bytes of the forged chunk were written")
	require.ErrorIs(t, f.VerifyOwned(t.Context(), g.st), ErrNeedCapability)

	genuine, err := OpenOwned(t.Context(), g.st, g.cap.Root, &g.secrets)
	require.NoError(t, err)
	require.NoError(t, genuine.VerifyOwned(t.Context(), g.st))
}

// TestOwnedV2ForgedLinks: the same forgery on a version-2 root is refused
// by OpenOwned itself: its wrapped key is bound to the root's head and
// sealed body, and its file key covers its links.
func TestOwnedV2ForgedLinks(t *testing.T) {
	g := loadGolden(t, "hello", 2)
	root := forgeLinks(t, g, []byte("not what you wrote\n"))
	_, err := OpenFile(t.Context(), g.st, root, g.cap.Key)
	require.NoError(t, err, "the forgery must be well-formed for this test to mean anything")
	_, err = OpenOwned(t.Context(), g.st, root, &g.secrets)
	require.ErrorIs(t, err, ErrNeedCapability)
}

// TestWrapBoundToRoot (fix a): a version-2 wrapped key opens only in the
// root it was made for; the same bytes in a root with another head, or
// another sealed body, do not unwrap.
func TestWrapBoundToRoot(t *testing.T) {
	g := loadGolden(t, "hello", 2)
	data, err := g.st.Get(t.Context(), g.cap.Root)
	require.NoError(t, err)
	m, err := parseManifestBlock(data)
	require.NoError(t, err)
	unwrap := func(head, sealed []byte) error {
		_, err := m.format.unwrap(&g.secrets.Master, m.wrapped, m.format.wrapAD(head, sealed))
		return err
	}
	require.NoError(t, unwrap(m.head, m.sealed))
	otherHead := appendManifestHead(nil, 2, KindRoot, 0, []cid.Cid{blockCID([]byte("other"))})
	require.ErrorIs(t, unwrap(otherHead, m.sealed), crypt.ErrUnauthenticated)
	otherSealed := bytes.Clone(m.sealed)
	otherSealed[0] ^= 1
	require.ErrorIs(t, unwrap(m.head, otherSealed), crypt.ErrUnauthenticated)
}

// TestOwnedKeyMustBeDerived (fix b, alone): a version-2 root whose wrap is
// genuine (made with the owner's master key and bound to the root) but
// whose file key is not the one the owner's convergence secret derives for
// its head and body is not the owner's file.
func TestOwnedKeyMustBeDerived(t *testing.T) {
	s := &crypt.Secrets{}
	s.Master[0], s.Convergence[0] = 1, 2
	st := dagtest.NewMemStore()
	chunk := forgeChunk(FormatVersion, &crypt.Key{9}, []byte("hello"))
	b := &body{meta: &Meta{Name: "x", Size: 5, ChunkSize: MinChunkSize}, entries: []entry{{key: crypt.Key{9}, size: 5}}}
	pt := b.encode()
	head := appendManifestHead(nil, FormatVersion, KindRoot, 0, []cid.Cid{chunk.Cid})
	key := crypt.Key{7} // not derived from the content
	sealed := crypt.Seal(nil, &key, pt, head)
	data := append(append(bytes.Clone(head), current.wrap(&s.Master, &key, head, sealed)...), sealed...)
	root := blockCID(data)
	require.NoError(t, st.PutMany(t.Context(), []blockstore.Block{chunk, {Cid: root, Data: data}}))

	_, err := OpenFile(t.Context(), st, root, key)
	require.NoError(t, err)
	_, err = OpenOwned(t.Context(), st, root, s)
	require.ErrorIs(t, err, ErrNeedCapability)
}
