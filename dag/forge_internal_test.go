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

// forgeChunk seals p as a chunk of the given format under key.
func forgeChunk(version byte, key *crypt.Key, p []byte) blockstore.Block {
	padded := make([]byte, padTo(len(p), chunkPad))
	copy(padded, p)
	hdr := []byte{version, KindChunk}
	data := crypt.Seal(bytes.Clone(hdr), key, padded, hdr)
	return blockstore.Block{Cid: blockCID(data), Data: data}
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
