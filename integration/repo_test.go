package integration

import (
	"crypto/sha256"
	"encoding/json"
	"os"
	"regexp"
	"slices"
	"strconv"
	"strings"
	"testing"
)

// TestRefs: refs lists the root first, then every other block once: for a
// file of 5 MiB + 7 with the default 1 MiB chunks, 6 chunks and one manifest
// block.
func TestRefs(t *testing.T) {
	t.Parallel()
	n := newNode(t)
	c := n.add(t, writeFile(t, t.TempDir(), "f.bin", randBytes(5*mib+7)))
	refs := n.refs(t, c)
	check(t, refs[0] == c, "refs must list the root %s first: %q", c, refs)
	check(t, len(refs) == 7, "refs of a 5 MiB + 7 file with 1 MiB chunks: %d blocks, want 6 chunks + 1 manifest block: %q", len(refs), refs)
	uniq := slices.Clone(refs)
	slices.Sort(uniq)
	check(t, len(slices.Compact(uniq)) == len(refs), "refs lists a block twice: %q", refs)
	for _, r := range refs {
		blockFile(t, n.repo, r)
	}
}

// TestBlockGetStat: block get prints the stored ciphertext, which hashes to
// its CID, and block stat gives its size.
func TestBlockGetStat(t *testing.T) {
	t.Parallel()
	n := newNode(t)
	plain := randBytes(mib + 500)
	c := n.add(t, writeFile(t, t.TempDir(), "f.bin", plain))
	refs := n.refs(t, c)
	for i, r := range refs {
		t.Run(strconv.Itoa(i), func(t *testing.T) {
			res := n.run(t, "block", "get", r)
			n.requireOK(t, res)
			sum := sha256.Sum256(res.stdout)
			check(t, string(sum[:]) == string(digest(t, r)), "sha256 of block get %s does not match its CID", r)
			check(t, len(res.stdout) > 0, "block get printed nothing")
			onDisk, err := os.ReadFile(blockFile(t, n.repo, r))
			noErr(t, err)
			requireSameBytes(t, onDisk, res.stdout, "block get vs the block file")

			st := n.run(t, "block", "stat", r)
			n.requireOK(t, st)
			want := r + "\t" + strconv.Itoa(len(res.stdout)) + "\n"
			check(t, st.out() == want, "block stat: got %q, want %q", st.out(), want)

			st = n.run(t, "block", "stat", "--json", r)
			n.requireOK(t, st)
			var js struct {
				CID  string `json:"cid"`
				Size int    `json:"size"`
			}
			noErr(t, json.Unmarshal(st.stdout, &js), "block stat --json: "+st.out())
			check(t, js.CID == r && js.Size == len(res.stdout), "block stat --json %+v, want cid %s size %d", js, r, len(res.stdout))
		})
	}
	// Chunks are padded ciphertext: no chunk block is the plaintext.
	for _, r := range refs[1:] {
		res := n.run(t, "block", "get", r)
		n.requireOK(t, res)
		check(t, !strings.Contains(string(plain), string(res.stdout[:64])), "block %s holds plaintext", r)
	}
}

// repoStat is `casd repo stat --json`.
type repoStat struct {
	Path    string `json:"path"`
	Version int    `json:"version"`
	Blocks  int    `json:"blocks"`
	Bytes   int64  `json:"bytes"`
	Pins    int    `json:"pins"`
	Files   int    `json:"files"`
	// The space, in bytes (issue 8).
	Own         int64 `json:"own"`
	Offered     int64 `json:"offered"`
	Cached      int64 `json:"cached"`
	Quota       int64 `json:"quota"`
	FreeToOffer int64 `json:"freeToOffer"`
}

// TestRepoStat checks the counts of repo stat --json.
func TestRepoStat(t *testing.T) {
	t.Parallel()
	n := newNode(t)
	st := n.repoStat(t)
	check(t, st.Path == n.repo && st.Version >= 1 && st.Blocks == 0 && st.Files == 0 && st.Pins == 0,
		"repo stat of a new repo: %+v", st)

	c := n.add(t, writeFile(t, t.TempDir(), "f.bin", randBytes(3*mib+1)))
	refs := n.refs(t, c)
	st = n.repoStat(t)
	check(t, st.Blocks == len(refs), "repo stat blocks %d, refs lists %d", st.Blocks, len(refs))
	check(t, st.Files == 1, "repo stat files %d, want 1", st.Files)
	check(t, st.Pins >= 1, "repo stat pins %d, want at least 1", st.Pins)
	var onDisk int64
	for _, r := range refs {
		fi, err := os.Stat(blockFile(t, n.repo, r))
		noErr(t, err)
		onDisk += fi.Size()
	}
	check(t, st.Bytes == onDisk, "repo stat bytes %d, the block files hold %d", st.Bytes, onDisk)

	res := n.run(t, "repo", "stat")
	n.requireOK(t, res)
	check(t, strings.Contains(res.out(), n.repo), "repo stat text output should name the repo path: %s", res)

	var raw map[string]any
	res = n.run(t, "repo", "stat", "--json")
	noErr(t, json.Unmarshal(res.stdout, &raw))
	for _, k := range []string{"path", "version", "blocks", "bytes", "pins", "files", "own", "offered", "cached", "quota", "freeToOffer"} {
		_, ok := raw[k]
		check(t, ok, "repo stat --json lacks %q: %s", k, res)
	}
}

func (n *node) repoStat(t testing.TB) repoStat {
	t.Helper()
	res := n.run(t, "repo", "stat", "--json")
	n.requireOK(t, res)
	var st repoStat
	noErr(t, json.Unmarshal(res.stdout, &st), "repo stat --json: "+res.out())
	return st
}

var gcRE = regexp.MustCompile(`^removed (\d+) blocks \((\d+) bytes\)\n$`)

// TestRepoGC: gc keeps every block of the repo's own (pinned) files and
// removes unpinned blocks, here blocks copied in from another repo.
func TestRepoGC(t *testing.T) {
	t.Parallel()
	n, other := newNode(t), newNode(t)
	data := randBytes(2*mib + 3)
	c := n.add(t, writeFile(t, t.TempDir(), "mine.bin", data))

	removed, _ := n.gc(t)
	check(t, removed == 0, "gc of a repo holding only pinned blocks removed %d blocks", removed)
	requireSameBytes(t, data, n.cat(t, c), "cat after gc")
	n.requireOK(t, n.run(t, "repo", "verify"))

	// Unpinned blocks: a foreign file's blocks copied into the repo.
	fc := other.add(t, writeFile(t, t.TempDir(), "foreign.bin", randBytes(mib+10)))
	frefs := other.refs(t, fc)
	copied := copyBlocks(t, other.repo, n.repo, frefs)
	var copiedBytes int64
	for _, r := range frefs {
		fi, err := os.Stat(blockFile(t, n.repo, r))
		noErr(t, err)
		copiedBytes += fi.Size()
	}

	removed, bytes := n.gc(t)
	check(t, removed == copied, "gc removed %d blocks, want the %d unpinned ones", removed, copied)
	check(t, bytes == copiedBytes, "gc reports %d bytes, the unpinned blocks held %d", bytes, copiedBytes)
	for _, r := range frefs {
		_, ok := findBlockFile(t, n.repo, r)
		check(t, !ok, "gc left the unpinned block %s", r)
	}
	requireSameBytes(t, data, n.cat(t, c), "cat after the second gc")
	n.requireOK(t, n.run(t, "repo", "verify"))
	removed, _ = n.gc(t)
	check(t, removed == 0, "a second gc removed %d more blocks", removed)
}

func (n *node) gc(t testing.TB) (int, int64) {
	t.Helper()
	res := n.run(t, "repo", "gc")
	n.requireOK(t, res)
	m := gcRE.FindStringSubmatch(res.out())
	check(t, m != nil, "repo gc must print \"removed <n> blocks (<bytes> bytes)\": %s", res)
	blocks, _ := strconv.Atoi(m[1])
	bytes, _ := strconv.ParseInt(m[2], 10, 64)
	return blocks, bytes
}

// TestID: id --json has the peer identity init printed and no addresses
// offline.
func TestID(t *testing.T) {
	t.Parallel()
	n := newNode(t)
	res := n.run(t, "id", "--json")
	n.requireOK(t, res)
	var id idJSON
	noErr(t, json.Unmarshal(res.stdout, &id), "id --json: "+res.out())
	check(t, id.ID == n.id, "id --json id %q, init printed %q", id.ID, n.id)
	check(t, strings.TrimSpace(string(id.Addrs)) == "[]", "id --json addrs offline must be [], got %s", id.Addrs)
	check(t, id.AgentVersion != "", "id --json agentVersion is empty: %s", res)
	var raw map[string]json.RawMessage
	noErr(t, json.Unmarshal(res.stdout, &raw))
	p, ok := raw["protocols"]
	check(t, ok && strings.HasPrefix(strings.TrimSpace(string(p)), "["), "id --json protocols must be an array: %s", res)

	res = n.run(t, "id")
	n.requireOK(t, res)
	check(t, strings.Contains(res.out(), n.id), "id must print the peer identity: %s", res)
}

var versionRE = regexp.MustCompile(`^casd version v?\d+\.\d+\.\d+(-[0-9A-Za-z.-]+)?(\+[0-9A-Za-z.-]+)?\n$`)

// TestVersion: version prints a semver, with or without a repo.
func TestVersion(t *testing.T) {
	t.Parallel()
	n := newEmptyNode(t)
	res := n.run(t, "version")
	n.requireOK(t, res)
	check(t, versionRE.MatchString(res.out()), "version output %q, want \"casd version <semver>\"", res.out())
}
