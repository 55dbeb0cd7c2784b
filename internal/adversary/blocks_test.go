package adversary_test

import (
	"bytes"
	"slices"
	"testing"

	"github.com/ipfs/go-cid"
	"github.com/libp2p/go-msgio"

	"github.com/casd/casd/blockstore"
	"github.com/casd/casd/dag"
	"github.com/casd/casd/internal/adversary"
)

// The forged blocks must be what casd's keyless readers accept: dag.Links
// and dag.LinksAreLeaves parse them, and their CIDs pass the block check.
func TestForgedBlocksParse(t *testing.T) {
	leaf := adversary.Chunk(10)
	for _, tc := range []struct {
		name   string
		b      func() ([]byte, cid.Cid)
		height int
		kind   byte
	}{
		{"root", func() ([]byte, cid.Cid) { r := adversary.Root(0, []cid.Cid{leaf.Cid}); return r.Data, r.Cid }, 0, dag.KindRoot},
		{"node", func() ([]byte, cid.Cid) { r := adversary.Node(3, []cid.Cid{leaf.Cid}); return r.Data, r.Cid }, 3, dag.KindNode},
	} {
		t.Run(tc.name, func(t *testing.T) {
			data, c := tc.b()
			if err := blockstore.VerifyBlock(c, data); err != nil {
				t.Fatal(err)
			}
			links, err := dag.Links(c, data)
			if err != nil || !slices.Equal(links, []cid.Cid{leaf.Cid}) {
				t.Fatalf("dag.Links = %v, %v; want [%s]", links, err, leaf.Cid)
			}
			if got := dag.LinksAreLeaves(c, data); got != (tc.height == 0) {
				t.Errorf("LinksAreLeaves = %v at height %d", got, tc.height)
			}
			m, err := adversary.ParseManifest(data)
			if err != nil || m.Kind != tc.kind || m.Height != tc.height || !slices.Equal(m.Links, links) {
				t.Errorf("ParseManifest = %+v, %v", m, err)
			}
		})
	}
	if k, err := dag.BlockKind(leaf.Data); err != nil || k != dag.KindChunk {
		t.Errorf("chunk kind %d, %v", k, err)
	}
}

// A bomb of height h is h+2 distinct blocks, each level linking fanout
// times to the next.
func TestBombShape(t *testing.T) {
	bs := adversary.Bomb(3, 5)
	if len(bs) != 5 {
		t.Fatalf("%d blocks, want 5", len(bs))
	}
	for i, b := range bs[:len(bs)-1] {
		m, err := adversary.ParseManifest(b.Data)
		if err != nil {
			t.Fatalf("block %d: %v", i, err)
		}
		if m.Height != 3-i || len(m.Links) != 5 || m.Links[0] != bs[i+1].Cid || m.Links[4] != bs[i+1].Cid {
			t.Errorf("block %d: height %d, %d links, want %d and 5 links to %s", i, m.Height, len(m.Links), 3-i, bs[i+1].Cid)
		}
	}
}

// The bad prefixes are what go-msgio, casd's frame reader, refuses.
func TestBadPrefixRefused(t *testing.T) {
	body := []byte("hello")
	good := msgio.NewVarintReaderSize(bytes.NewReader(append([]byte{byte(len(body))}, body...)), 1<<20)
	if n, err := good.NextMsgLen(); err != nil || n != len(body) {
		t.Fatalf("minimal prefix: NextMsgLen = %d, %v", n, err)
	}
	for _, l := range []adversary.PrefixLie{adversary.NonMinimalPrefix, adversary.OverlongPrefix} {
		r := msgio.NewVarintReaderSize(bytes.NewReader(append(adversary.BadPrefix(l, len(body)), body...)), 1<<20)
		if n, err := r.NextMsgLen(); err == nil {
			t.Errorf("%v: NextMsgLen = %d, want an error", l, n)
		}
	}
	if b := adversary.BadPrefix(adversary.OverlongPrefix, 5); len(b) != 10 {
		t.Errorf("overlong prefix of %d bytes, want 10", len(b))
	}
}

// Every bad CID is refused by casd's one CID check; the good one passes.
func TestBadCIDs(t *testing.T) {
	data := []byte("block")
	if err := blockstore.CheckCid(adversary.CID(data)); err != nil {
		t.Fatalf("CID: %v", err)
	}
	for _, b := range []adversary.BadCID{adversary.IdentityCID, adversary.SHA1CID, adversary.TruncatedCID} {
		if err := blockstore.CheckCid(b.Of(data)); err == nil {
			t.Errorf("%v CID %s passes blockstore.CheckCid", b, b.Of(data))
		}
	}
}
