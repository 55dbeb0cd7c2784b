package dag_test

import (
	"bytes"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"flag"
	"os"
	"path/filepath"
	"regexp"
	"strconv"
	"strings"
	"testing"

	"github.com/ipfs/go-cid"
	"github.com/stretchr/testify/require"

	"github.com/casd/casd/crypt"
	"github.com/casd/casd/dag"
	"github.com/casd/casd/dag/dagtest"
)

var updateGolden = flag.Bool("update", false, "rewrite testdata/golden.json")

// golden is one test vector: fixed secrets and input, and every block the
// writer must produce for them (docs/format.md, "Test vectors").
type golden struct {
	Name        string            `json:"name"`
	Version     int               `json:"version"`     // the format version of its blocks
	Master      string            `json:"master"`      // hex
	Convergence string            `json:"convergence"` // hex
	ChunkSize   int               `json:"chunkSize"`
	Fanout      int               `json:"fanout"`
	Mode        uint32            `json:"mode"`
	Content     string            `json:"content"` // how the content is made
	Root        string            `json:"root"`
	Capability  string            `json:"capability"`
	Blocks      map[string]string `json:"blocks"` // CID -> SHA-256 of the block, hex (the CID says it too; this double-checks the encoding)
	SmallBlocks map[string]string `json:"smallBlocks"`
}

// goldenContent makes deterministic content: "casd golden vector\n" repeated
// to n bytes.
func goldenContent(n int) []byte {
	line := []byte("casd golden vector\n")
	return bytes.Repeat(line, n/len(line)+1)[:n]
}

func goldenVectors() []struct {
	name, file string
	size       int
	opt        dag.AddOptions
} {
	return []struct {
		name, file string
		size       int
		opt        dag.AddOptions
	}{
		{"hello", "hello.txt", 19, dag.AddOptions{}},
		{"empty", "empty", 0, dag.AddOptions{}},
		{"tree", "tree.bin", 5*dag.MinChunkSize + 3, dag.AddOptions{ChunkSize: dag.MinChunkSize, Fanout: 2}},
	}
}

func TestGoldenVectors(t *testing.T) {
	s := testSecrets(0x11)
	path := filepath.Join("testdata", "golden.json")
	var got []golden
	for _, v := range goldenVectors() {
		st := dagtest.NewMemStore()
		a, err := dag.Add(t.Context(), bytes.NewReader(goldenContent(v.size)), dag.Meta{Name: v.file, Mode: 0o644}, s, st, v.opt)
		require.NoError(t, err)
		g := golden{
			Name: v.name, Version: dag.FormatVersion, Master: hex.EncodeToString(s.Master[:]), Convergence: hex.EncodeToString(s.Convergence[:]),
			ChunkSize: a.Meta.ChunkSize, Fanout: v.opt.Fanout, Mode: 0o644,
			Content: "\"casd golden vector\\n\" repeated, cut to " + itoa(v.size) + " bytes",
			Root:    a.Root.String(), Capability: a.Capability().String(),
			Blocks: map[string]string{}, SmallBlocks: map[string]string{},
		}
		for c, b := range st.All() {
			sum := sha256.Sum256(b)
			g.Blocks[c.String()] = hex.EncodeToString(sum[:])
			if len(b) <= 8192 {
				g.SmallBlocks[c.String()] = hex.EncodeToString(b)
			}
		}
		got = append(got, g)
	}
	raw, err := os.ReadFile(path)
	require.NoError(t, err, "run go test ./dag -run TestGoldenVectors -update to create the vectors")
	var stored, want, older []golden
	require.NoError(t, json.Unmarshal(raw, &stored))
	for _, g := range stored {
		if g.Version == dag.FormatVersion {
			want = append(want, g)
		} else {
			older = append(older, g) // what earlier writers wrote: kept, and read by TestGoldenVectorsOpen
		}
	}
	if *updateGolden {
		out, err := json.MarshalIndent(append(older, got...), "", "  ")
		require.NoError(t, err)
		require.NoError(t, os.WriteFile(path, append(out, '\n'), 0o644))
		return
	}
	require.Equal(t, want, got, "the on-disk format changed: that breaks every stored file. If intended, bump FormatVersion, update docs/format.md and run with -update")
}

// TestGoldenVectorsOpen checks that the stored vectors still open, as their
// owner's (from the bare root CID) and by capability: a reader of this
// version reads what earlier writers of formats 1 and 2 wrote.
func TestGoldenVectorsOpen(t *testing.T) {
	raw, err := os.ReadFile(filepath.Join("testdata", "golden.json"))
	require.NoError(t, err)
	var vs []golden
	require.NoError(t, json.Unmarshal(raw, &vs))
	for _, g := range vs {
		if len(g.SmallBlocks) != len(g.Blocks) {
			continue // only vectors whose blocks are all stored in full
		}
		t.Run(g.Name+"-v"+itoa(g.Version), func(t *testing.T) {
			st := dagtest.NewMemStore()
			for c, h := range g.SmallBlocks {
				b, err := hex.DecodeString(h)
				require.NoError(t, err)
				st.Set(cid.MustParse(c), b)
			}
			var s crypt.Secrets
			_, err := hex.Decode(s.Master[:], []byte(g.Master))
			require.NoError(t, err)
			_, err = hex.Decode(s.Convergence[:], []byte(g.Convergence))
			require.NoError(t, err)
			f, err := dag.OpenOwned(t.Context(), st, cid.MustParse(g.Root), &s)
			require.NoError(t, err)
			require.NoError(t, f.VerifyOwned(t.Context(), st))
			c, err := dag.ParseCapability(g.Capability)
			require.NoError(t, err)
			byCap, err := dag.OpenFile(t.Context(), st, c.Root, c.Key)
			require.NoError(t, err)
			require.Equal(t, f.Meta, byCap.Meta)
			var out bytes.Buffer
			_, err = f.WriteTo(t.Context(), &out, st, dag.ReadOptions{})
			require.NoError(t, err)
			require.True(t, bytes.Equal(goldenContent(int(f.Meta.Size)), out.Bytes()), "content differs")
			require.Equal(t, g.Capability, f.Capability().String())
		})
	}
}

// TestGoldenVectorsDocumented: docs/format.md names the root CID of every
// stored vector, and names no vector root that is not stored.
func TestGoldenVectorsDocumented(t *testing.T) {
	raw, err := os.ReadFile(filepath.Join("testdata", "golden.json"))
	require.NoError(t, err)
	var vs []golden
	require.NoError(t, json.Unmarshal(raw, &vs))
	doc, err := os.ReadFile(filepath.Join("..", "docs", "format.md"))
	require.NoError(t, err)
	roots := map[string]bool{}
	for _, g := range vs {
		roots[g.Root] = true
		row := "| " + g.Name + " | " + itoa(g.Version) + " | `" + g.Root + "` |"
		require.True(t, strings.Contains(string(doc), row), "docs/format.md, Test vectors, lacks the row %s", row)
	}
	for _, m := range regexp.MustCompile("\\| `(bafk[a-z2-7]+)` \\|").FindAllStringSubmatch(string(doc), -1) {
		require.True(t, roots[m[1]], "docs/format.md names %s, which is not a stored vector", m[1])
	}
}

func itoa(n int) string { return strconv.Itoa(n) }
