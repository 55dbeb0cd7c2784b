package integration

import (
	"bytes"
	"os"
	"strconv"
	"strings"
	"testing"
)

// TestDamagedBlock damages one block file of a file under <repo>/blocks and
// checks that cat and get refuse to hand out wrong bytes and that repo
// verify names the block.
func TestDamagedBlock(t *testing.T) {
	t.Parallel()
	tests := []struct {
		name    string
		root    bool // damage the root (manifest) block instead of a chunk
		damage  func(t testing.TB, path string)
		verdict string // what repo verify says about the block
		codes   []int  // acceptable exit codes of cat and get
	}{
		{"flip one byte in a chunk", false, flipByte, "corrupt", []int{exitIntegrity}},
		{"truncate a chunk", false, truncateHalf, "corrupt", []int{exitIntegrity}},
		{"flip one byte in the root", true, flipByte, "corrupt", []int{exitIntegrity}},
		// A block that is gone is "not in repo" (3); an implementation that
		// treats a hole in a file it owns as an integrity failure (4) is
		// within the spec too.
		{"delete a chunk", false, deleteFile, "missing", []int{exitNotFound, exitIntegrity}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			n := newNode(t)
			data := randBytes(5*mib + 7)
			c := n.add(t, writeFile(t, t.TempDir(), "victim.bin", data))
			refs := n.refs(t, c)
			check(t, refs[0] == c, "refs must list the root %s first, got %s", c, refs[0])
			res := n.run(t, "repo", "verify")
			n.requireOK(t, res)
			check(t, res.out() == "verified "+strconv.Itoa(len(refs))+" blocks\n",
				"verify of a clean repo with one file of %d blocks: %s", len(refs), res)

			victim, path := c, blockFile(t, n.repo, c)
			if !tt.root {
				victim, path = pickChunk(t, n.repo, refs)
			}
			tt.damage(t, path)

			res = n.run(t, "cat", c)
			check(t, res.code != exitOK, "cat of a damaged file succeeded: %s", res)
			requireCode(t, res, tt.codes...)
			requireErrLine(t, res)
			check(t, !bytes.Contains(res.stdout, data), "cat printed the whole file despite the damaged block")
			check(t, len(res.stdout) < len(data), "cat printed %d bytes of a %d byte file with a damaged block", len(res.stdout), len(data))

			out := t.TempDir()
			res = n.runDir(t, out, "get", c)
			requireCode(t, res, tt.codes...)
			requireErrLine(t, res)
			check(t, len(listDir(t, out)) == 0, "failed get left files in the target dir: %q", listDir(t, out))

			res = n.run(t, "repo", "verify")
			check(t, res.code == exitIntegrity, "repo verify must exit 4 on a damaged repo: %s", res)
			lines := strings.Split(strings.TrimSuffix(res.out(), "\n"), "\n")
			want := tt.verdict + " " + victim
			check(t, len(lines) == 1 && lines[0] == want, "repo verify must print exactly %q: %s", want, res)
		})
	}
}

// pickChunk returns a chunk block of refs (not the root) whose file is larger
// than 4096 bytes, and that file's path.
func pickChunk(t testing.TB, repo string, refs []string) (string, string) {
	t.Helper()
	for _, r := range refs[1:] {
		p, ok := findBlockFile(t, repo, r)
		if !ok {
			continue
		}
		fi, err := os.Stat(p)
		noErr(t, err)
		if fi.Size() > 4096 {
			return r, p
		}
	}
	t.Fatalf("no chunk block larger than 4096 bytes among %d refs under %s/blocks", len(refs), repo)
	return "", ""
}

func flipByte(t testing.TB, path string) {
	t.Helper()
	data, err := os.ReadFile(path)
	noErr(t, err)
	data[len(data)/2] ^= 0x01
	writeInPlace(t, path, data)
}

func truncateHalf(t testing.TB, path string) {
	t.Helper()
	fi, err := os.Stat(path)
	noErr(t, err)
	mode := fi.Mode()
	noErr(t, os.Chmod(path, 0o600))
	noErr(t, os.Truncate(path, fi.Size()/2))
	noErr(t, os.Chmod(path, mode))
}

func deleteFile(t testing.TB, path string) {
	t.Helper()
	noErr(t, os.Remove(path))
}

// writeInPlace overwrites a (possibly read-only) file, keeping its mode.
func writeInPlace(t testing.TB, path string, data []byte) {
	t.Helper()
	fi, err := os.Stat(path)
	noErr(t, err)
	noErr(t, os.Chmod(path, 0o600))
	noErr(t, os.WriteFile(path, data, 0o600))
	noErr(t, os.Chmod(path, fi.Mode()))
}

// requireCode fails unless res exited with one of codes.
func requireCode(t testing.TB, res result, codes ...int) {
	t.Helper()
	for _, c := range codes {
		if res.code == c {
			return
		}
	}
	t.Fatalf("want exit code in %v: %s", codes, res)
}
