package integration

import (
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"
)

// TestRoundTrip adds files and reads them back with cat and get, which must
// give the exact bytes, get under the file's original name.
func TestRoundTrip(t *testing.T) {
	t.Parallel()
	n := newNode(t)
	tests := []struct {
		name string // file name
		size int
	}{
		{"empty.bin", 0},
		{"one-byte.bin", 1},
		{"one-chunk.bin", mib},
		{"one-chunk-plus-one.bin", mib + 1},
		{"five-mib-plus-seven.bin", 5*mib + 7},
		{"relevé de compte ü 日本.pdf", 12345},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			data := randBytes(tt.size)
			src := writeFile(t, t.TempDir(), tt.name, data)
			c := n.add(t, src)

			requireSameBytes(t, data, n.cat(t, c), "cat "+c)

			out := t.TempDir()
			res := n.runDir(t, out, "get", c)
			n.requireOK(t, res)
			want := filepath.Join(out, tt.name)
			requireSaved(t, res, out, want)
			got, err := os.ReadFile(want)
			noErr(t, err, "get must write the file under its original name")
			requireSameBytes(t, data, got, "get "+c)
			check(t, slices.Equal(listDir(t, out), []string{tt.name}),
				"get must leave only %q in the target dir, found %q", tt.name, listDir(t, out))
		})
	}
}

// requireSaved checks get's output "saved <path>" names want (relative paths
// are taken against the command's working directory dir).
func requireSaved(t testing.TB, res result, dir, want string) {
	t.Helper()
	line := strings.TrimSuffix(res.out(), "\n")
	p, ok := strings.CutPrefix(line, "saved ")
	check(t, ok && !strings.Contains(p, "\n"), "get must print \"saved <path>\": %s", res)
	if !filepath.IsAbs(p) {
		p = filepath.Join(dir, p)
	}
	check(t, filepath.Clean(p) == filepath.Clean(want), "get printed %q, want the path %q", line, want)
}

// TestAddOutput checks the two output forms of add.
func TestAddOutput(t *testing.T) {
	t.Parallel()
	n := newNode(t)
	dir := t.TempDir()
	data := randBytes(3000)

	a := writeFile(t, dir, "a.txt", data)
	res := n.run(t, "add", a)
	n.requireOK(t, res)
	fields := strings.Fields(res.out())
	check(t, len(fields) == 3 && fields[0] == "added" && fields[2] == "a.txt",
		"add must print \"added <cid> a.txt\": %s", res)
	requireCID(t, fields[1])
	check(t, res.out() == "added "+fields[1]+" a.txt\n", "add output must be exactly one line: %s", res)
	check(t, res.stderr == "", "add must be quiet on stderr when piped: %s", res)

	b := writeFile(t, dir, "b.txt", randBytes(3000))
	res = n.run(t, "add", "-q", b)
	n.requireOK(t, res)
	c := strings.TrimSuffix(res.out(), "\n")
	check(t, res.out() == c+"\n" && !strings.Contains(c, " "), "add -q must print only the CID: %s", res)
	requireCID(t, c)
	check(t, c != fields[1], "two different files got the same CID %s", c)

	// -q on a file already added prints the same CID as the first add.
	res = n.run(t, "add", "-q", a)
	n.requireOK(t, res)
	check(t, res.out() == fields[1]+"\n", "add -q of the same file: got %q, want %q", res.out(), fields[1])

	// --progress=false is accepted and keeps stderr empty.
	res = n.run(t, "add", "--progress=false", b)
	n.requireOK(t, res)
	check(t, res.stderr == "", "add --progress=false wrote to stderr: %s", res)

	// A forced progress bar goes to stderr only: stdout stays parseable.
	big := writeFile(t, dir, "big.bin", randBytes(4*mib))
	res = n.run(t, "add", "--progress=true", big)
	n.requireOK(t, res)
	check(t, strings.HasPrefix(res.out(), "added ") && strings.HasSuffix(res.out(), " big.bin\n") &&
		strings.Count(res.out(), "\n") == 1, "add --progress=true must keep stdout to the one result line: %s", res)

	res = n.run(t, "add", "--progress=sometimes", b)
	requireFail(t, res, exitUsage)
}

// TestGetTarget covers get -o, refusal to overwrite and --force.
func TestGetTarget(t *testing.T) {
	t.Parallel()
	n := newNode(t)
	data := randBytes(2*mib + 5)
	c := n.add(t, writeFile(t, t.TempDir(), "report.txt", data))
	old := []byte("precious existing content\n")

	t.Run("refuses existing file", func(t *testing.T) {
		dir := t.TempDir()
		existing := writeFile(t, dir, "report.txt", old)
		res := n.runDir(t, dir, "get", c)
		requireFail(t, res, exitFailure)
		got, err := os.ReadFile(existing)
		noErr(t, err)
		requireSameBytes(t, old, got, "existing file after refused get")
		check(t, slices.Equal(listDir(t, dir), []string{"report.txt"}), "refused get left files: %q", listDir(t, dir))
	})
	t.Run("force overwrites", func(t *testing.T) {
		dir := t.TempDir()
		existing := writeFile(t, dir, "report.txt", old)
		res := n.runDir(t, dir, "get", "--force", c)
		n.requireOK(t, res)
		requireSaved(t, res, dir, existing)
		got, err := os.ReadFile(existing)
		noErr(t, err)
		requireSameBytes(t, data, got, "get --force")
		check(t, slices.Equal(listDir(t, dir), []string{"report.txt"}), "get --force left files: %q", listDir(t, dir))
	})
	t.Run("-o path", func(t *testing.T) {
		dir := t.TempDir()
		target := filepath.Join(dir, "elsewhere.dat")
		res := n.run(t, "get", c, "-o", target)
		n.requireOK(t, res)
		requireSaved(t, res, n.work, target)
		got, err := os.ReadFile(target)
		noErr(t, err)
		requireSameBytes(t, data, got, "get -o")
		check(t, slices.Equal(listDir(t, dir), []string{"elsewhere.dat"}), "get -o left files: %q", listDir(t, dir))
		check(t, len(listDir(t, n.work)) == 0, "get -o also wrote into the cwd: %q", listDir(t, n.work))
	})
	t.Run("-o relative path", func(t *testing.T) {
		dir := t.TempDir()
		res := n.runDir(t, dir, "get", "-o", "rel.out", c)
		n.requireOK(t, res)
		requireSaved(t, res, dir, filepath.Join(dir, "rel.out"))
		got, err := os.ReadFile(filepath.Join(dir, "rel.out"))
		noErr(t, err)
		requireSameBytes(t, data, got, "get -o rel.out")
	})
	t.Run("-o refuses existing file", func(t *testing.T) {
		dir := t.TempDir()
		target := writeFile(t, dir, "taken", old)
		res := n.run(t, "get", "-o", target, c)
		requireFail(t, res, exitFailure)
		got, err := os.ReadFile(target)
		noErr(t, err)
		requireSameBytes(t, old, got, "existing -o target after refused get")
		check(t, slices.Equal(listDir(t, dir), []string{"taken"}), "refused get -o left files: %q", listDir(t, dir))
	})
	t.Run("-o with --force", func(t *testing.T) {
		dir := t.TempDir()
		target := writeFile(t, dir, "taken", old)
		res := n.run(t, "get", "-o", target, "--force", c)
		n.requireOK(t, res)
		got, err := os.ReadFile(target)
		noErr(t, err)
		requireSameBytes(t, data, got, "get -o --force")
	})
}
