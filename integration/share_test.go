package integration

import (
	"encoding/json"
	"os"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"testing"
	"time"
)

// lsEntry is one element of `casd ls --json`.
type lsEntry struct {
	CID   string    `json:"cid"`
	Name  string    `json:"name"`
	Size  int64     `json:"size"`
	Added time.Time `json:"added"`
}

// TestLs lists added files in text and JSON form with their names and sizes.
func TestLs(t *testing.T) {
	t.Parallel()
	n := newNode(t)

	res := n.run(t, "ls")
	n.requireOK(t, res)
	check(t, res.out() == "", "ls of an empty repo printed: %s", res)
	res = n.run(t, "ls", "--json")
	n.requireOK(t, res)
	var empty []lsEntry
	noErr(t, json.Unmarshal(res.stdout, &empty), "ls --json of an empty repo: "+res.out())
	check(t, strings.TrimSpace(res.out()) != "null", "ls --json of an empty repo must print an array, not null")
	check(t, len(empty) == 0, "ls --json of an empty repo: %s", res)

	start := time.Now().Add(-2 * time.Second).Truncate(time.Second)
	dir := t.TempDir()
	want := map[string]lsEntry{}
	for _, f := range []struct {
		name string
		size int
	}{{"a.txt", 10}, {"b with space.bin", mib + 3}, {"relevé ü 日本.pdf", 0}} {
		c := n.add(t, writeFile(t, dir, f.name, randBytes(f.size)))
		want[c] = lsEntry{CID: c, Name: f.name, Size: int64(f.size)}
	}
	end := time.Now().Add(2 * time.Second)

	res = n.run(t, "ls")
	n.requireOK(t, res)
	lines := strings.Split(strings.TrimSuffix(res.out(), "\n"), "\n")
	check(t, len(lines) == len(want), "ls must print one line per file (%d): %s", len(want), res)
	for _, line := range lines {
		f := strings.Split(line, "\t")
		check(t, len(f) == 4, "ls line %q must be <cid>\\t<size>\\t<added>\\t<name>", line)
		w, ok := want[f[0]]
		check(t, ok, "ls lists an unknown CID: %q", line)
		check(t, f[1] == strconv.FormatInt(w.Size, 10), "ls size of %s: %q, want %d", w.Name, f[1], w.Size)
		added, err := time.Parse(time.RFC3339, f[2])
		noErr(t, err, "ls added time "+f[2])
		check(t, !added.Before(start) && !added.After(end), "ls added time %v not within the test's run [%v, %v]", added, start, end)
		check(t, f[3] == w.Name, "ls name %q, want %q", f[3], w.Name)
	}

	res = n.run(t, "ls", "--json")
	n.requireOK(t, res)
	var got []lsEntry
	noErr(t, json.Unmarshal(res.stdout, &got), "ls --json: "+res.out())
	check(t, len(got) == len(want), "ls --json lists %d files, want %d: %s", len(got), len(want), res)
	for _, e := range got {
		w, ok := want[e.CID]
		check(t, ok, "ls --json lists an unknown CID %q", e.CID)
		check(t, e.Name == w.Name && e.Size == w.Size, "ls --json entry %+v, want name %q size %d", e, w.Name, w.Size)
		check(t, !e.Added.Before(start) && !e.Added.After(end), "ls --json added %v not within [%v, %v]", e.Added, start, end)
	}
	var generic []map[string]any
	noErr(t, json.Unmarshal(res.stdout, &generic))
	for _, m := range generic {
		for _, k := range []string{"cid", "name", "size", "added"} {
			_, ok := m[k]
			check(t, ok, "ls --json entry lacks %q: %v", k, m)
		}
	}
}

// TestShareCapability: share prints a casd1 token that cat and get accept.
func TestShareCapability(t *testing.T) {
	t.Parallel()
	n := newNode(t)
	data := randBytes(mib + 77)
	c := n.add(t, writeFile(t, t.TempDir(), "shared doc.pdf", data))
	capa := n.share(t, c)
	check(t, n.share(t, c) == capa, "share is not deterministic for the same file")

	requireSameBytes(t, data, n.cat(t, capa), "cat capability")
	out := t.TempDir()
	res := n.runDir(t, out, "get", capa)
	n.requireOK(t, res)
	requireSaved(t, res, out, filepath.Join(out, "shared doc.pdf"))
	got, err := os.ReadFile(filepath.Join(out, "shared doc.pdf"))
	noErr(t, err)
	requireSameBytes(t, data, got, "get capability")
	check(t, slices.Equal(n.refs(t, capa), n.refs(t, c)), "refs of the capability and of the CID differ")
}

// TestOtherRepo copies the blocks of a file from repo A into repo B (other
// keys): B cannot open the file from its bare CID (a capability is needed,
// exit 4) but opens it with the capability.
func TestOtherRepo(t *testing.T) {
	t.Parallel()
	a, b := newNode(t), newNode(t)
	check(t, a.id != b.id, "two repos got the same peer identity %s", a.id)
	data := randBytes(3*mib + 1)
	c := a.add(t, writeFile(t, t.TempDir(), "from-a.bin", data))
	capa := a.share(t, c)
	refs := a.refs(t, c)

	res := b.run(t, "cat", c)
	requireFail(t, res, exitNotFound)

	copyBlocks(t, a.repo, b.repo, refs)

	res = b.run(t, "cat", c)
	msg := requireFail(t, res, exitIntegrity)
	check(t, mentionsAny(msg, []string{"capability"}), "message must say a capability is needed: %s", res)
	check(t, len(res.stdout) == 0, "cat of a foreign file by bare CID printed %d bytes", len(res.stdout))

	out := t.TempDir()
	res = b.runDir(t, out, "get", c)
	requireFail(t, res, exitIntegrity)
	check(t, len(listDir(t, out)) == 0, "failed get left files: %q", listDir(t, out))

	// The links are in the clear: B walks the file without a key.
	check(t, slices.Equal(b.refs(t, c), refs), "refs in B differ from refs in A")

	requireSameBytes(t, data, b.cat(t, capa), "cat of A's capability in B")
	res = b.runDir(t, out, "get", capa)
	b.requireOK(t, res)
	got, err := os.ReadFile(filepath.Join(out, "from-a.bin"))
	noErr(t, err)
	requireSameBytes(t, data, got, "get of A's capability in B")

	// B does not own the file, so it is not in B's ls.
	res = b.run(t, "ls")
	b.requireOK(t, res)
	check(t, !strings.Contains(res.out(), c), "B lists A's file as its own: %s", res)
}
