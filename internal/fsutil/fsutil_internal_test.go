package fsutil

import (
	"errors"
	"io/fs"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"syscall"
	"testing"
)

var errInjected = errors.New("injected fault")

// faultFS is the real file system with one operation made to fail, and a
// log of the renames, links and directory syncs done.
type faultFS struct {
	osFS
	fail string // operation to fail: "write", "fsync", "chmod", "close", "rename", "link", "syncdir"
	// lstatLies makes Lstat report every file missing, as if the target
	// appeared only after the check.
	lstatLies bool
	log       []string
}

func (f *faultFS) CreateTemp(dir, pattern string) (file, error) {
	if f.fail == "create" {
		return nil, errInjected
	}
	tf, err := f.osFS.CreateTemp(dir, pattern)
	if err != nil {
		return nil, err
	}
	return &faultFile{file: tf, fail: f.fail}, nil
}

func (f *faultFS) Lstat(name string) (fs.FileInfo, error) {
	if f.lstatLies {
		return nil, &fs.PathError{Op: "lstat", Path: name, Err: fs.ErrNotExist}
	}
	return f.osFS.Lstat(name)
}

func (f *faultFS) Rename(oldpath, newpath string) error {
	f.log = append(f.log, "rename "+filepath.Base(newpath))
	if f.fail == "rename" {
		return errInjected
	}
	return f.osFS.Rename(oldpath, newpath)
}

func (f *faultFS) Link(oldname, newname string) error {
	f.log = append(f.log, "link "+filepath.Base(newname))
	if f.fail == "link" {
		// As on a file system without hard links.
		return &os.LinkError{Op: "link", Old: oldname, New: newname, Err: syscall.EPERM}
	}
	return f.osFS.Link(oldname, newname)
}

func (f *faultFS) SyncDir(dir string) error {
	f.log = append(f.log, "syncdir "+filepath.Base(dir))
	if f.fail == "syncdir" {
		return errInjected
	}
	return f.osFS.SyncDir(dir)
}

type faultFile struct {
	file
	fail string
}

func (f *faultFile) Write(p []byte) (int, error) {
	if f.fail == "write" {
		// A short write, as on a full disk.
		n, _ := f.file.Write(p[:len(p)/2])
		return n, errInjected
	}
	return f.file.Write(p)
}

func (f *faultFile) Sync() error {
	if f.fail == "fsync" {
		return errInjected
	}
	return f.file.Sync()
}

func (f *faultFile) Chmod(mode fs.FileMode) error {
	if f.fail == "chmod" {
		return errInjected
	}
	return f.file.Chmod(mode)
}

func (f *faultFile) Close() error {
	err := f.file.Close()
	if f.fail == "close" {
		return errors.Join(errInjected, err)
	}
	return err
}

// entries lists the names in dir, sorted.
func entries(tb testing.TB, dir string) []string {
	tb.Helper()
	des, err := os.ReadDir(dir)
	if err != nil {
		tb.Fatal(err)
	}
	var names []string
	for _, de := range des {
		names = append(names, de.Name())
	}
	return names
}

func readString(tb testing.TB, path string) string {
	tb.Helper()
	b, err := os.ReadFile(path)
	if err != nil {
		tb.Fatal(err)
	}
	return string(b)
}

// TestWriteFileFaultKeepsOld checks that whichever step of an atomic write
// fails, the temporary file is gone and the old content is intact.
func TestWriteFileFaultKeepsOld(t *testing.T) {
	for _, op := range []string{"create", "write", "fsync", "chmod", "close", "rename"} {
		t.Run(op, func(t *testing.T) {
			dir := t.TempDir()
			target := filepath.Join(dir, "config")
			if err := os.WriteFile(target, []byte("old"), 0o600); err != nil {
				t.Fatal(err)
			}
			err := writeFile(&faultFS{fail: op}, target, []byte("new content"), 0o600)
			if !errors.Is(err, errInjected) {
				t.Fatalf("err = %v, want the injected fault", err)
			}
			if !strings.Contains(err.Error(), target) {
				t.Errorf("err = %q does not name %s", err, target)
			}
			if got := entries(t, dir); !slices.Equal(got, []string{"config"}) {
				t.Fatalf("dir holds %q, want only config: temp file left behind", got)
			}
			if got := readString(t, target); got != "old" {
				t.Fatalf("target holds %q, want the old content", got)
			}
		})
	}
}

// TestWriteFileSyncDirFault checks that a failed directory fsync is
// reported; the rename already happened, so the new content is in place.
func TestWriteFileSyncDirFault(t *testing.T) {
	dir := t.TempDir()
	target := filepath.Join(dir, "config")
	err := writeFile(&faultFS{fail: "syncdir"}, target, []byte("new"), 0o600)
	if !errors.Is(err, errInjected) {
		t.Fatalf("err = %v, want the injected fault", err)
	}
	if got := entries(t, dir); !slices.Equal(got, []string{"config"}) {
		t.Fatalf("dir holds %q: temp file left behind", got)
	}
	if got := readString(t, target); got != "new" {
		t.Fatalf("target holds %q, want new", got)
	}
}

// TestCommitSyncsDir checks that both commits fsync the target's directory,
// and only after the name is in place.
func TestCommitSyncsDir(t *testing.T) {
	tests := []struct {
		name   string
		commit func(*File) error
		want   []string
	}{
		{"Commit", (*File).Commit, []string{"rename out", "syncdir d"}},
		{"CommitNew", (*File).CommitNew, []string{"link out", "syncdir d"}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			dir := filepath.Join(t.TempDir(), "d")
			if err := os.Mkdir(dir, 0o700); err != nil {
				t.Fatal(err)
			}
			fsys := &faultFS{}
			f, err := create(fsys, filepath.Join(dir, "out"), 0o600)
			if err != nil {
				t.Fatal(err)
			}
			if _, err := f.Write([]byte("x")); err != nil {
				t.Fatal(err)
			}
			if err := tt.commit(f); err != nil {
				t.Fatal(err)
			}
			if !slices.Equal(fsys.log, tt.want) {
				t.Fatalf("operations %q, want %q", fsys.log, tt.want)
			}
		})
	}
}

// TestCommitNewTargetAppears checks that a target created after CommitNew
// checked for it is still not replaced: the hard link refuses it.
func TestCommitNewTargetAppears(t *testing.T) {
	dir := t.TempDir()
	target := filepath.Join(dir, "out")
	fsys := &faultFS{lstatLies: true}
	f, err := create(fsys, target, 0o600)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := f.Write([]byte("new")); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(target, []byte("theirs"), 0o600); err != nil {
		t.Fatal(err)
	}
	if err := f.CommitNew(); !errors.Is(err, fs.ErrExist) {
		t.Fatalf("CommitNew over a new target: err = %v, want fs.ErrExist", err)
	}
	if got := readString(t, target); got != "theirs" {
		t.Fatalf("target holds %q, want theirs", got)
	}
	if got := entries(t, dir); !slices.Equal(got, []string{"out"}) {
		t.Fatalf("dir holds %q: temp file left behind", got)
	}
}

// TestCommitNewWithoutHardLinks checks the fallback to a rename when the
// file system cannot link.
func TestCommitNewWithoutHardLinks(t *testing.T) {
	dir := t.TempDir()
	target := filepath.Join(dir, "out")
	fsys := &faultFS{fail: "link"}
	f, err := create(fsys, target, 0o600)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := f.Write([]byte("new")); err != nil {
		t.Fatal(err)
	}
	if err := f.CommitNew(); err != nil {
		t.Fatal(err)
	}
	if got := readString(t, target); got != "new" {
		t.Fatalf("target holds %q, want new", got)
	}
	want := []string{"link out", "rename out", "syncdir " + filepath.Base(dir)}
	if !slices.Equal(fsys.log, want) {
		t.Fatalf("operations %q, want %q", fsys.log, want)
	}
}

// TestWriteTempFaultRemoves checks that a failed WriteTemp leaves nothing.
func TestWriteTempFaultRemoves(t *testing.T) {
	for _, op := range []string{"write", "fsync", "close"} {
		t.Run(op, func(t *testing.T) {
			dir := t.TempDir()
			if _, err := writeTemp(&faultFS{fail: op}, dir, ".tmp-*", []byte("block")); !errors.Is(err, errInjected) {
				t.Fatalf("err = %v, want the injected fault", err)
			}
			if got := entries(t, dir); len(got) != 0 {
				t.Fatalf("dir holds %q, want nothing", got)
			}
		})
	}
}

func TestTempPattern(t *testing.T) {
	long := strings.Repeat("é", 200) // 400 bytes
	tests := []struct {
		name, base, want string
	}{
		{"short", "config", ".config.tmp-*"},
		{"cut at a character boundary", "a" + long, ".a" + strings.Repeat("é", 31) + ".tmp-*"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			if got := tempPattern(tt.base); got != tt.want {
				t.Fatalf("tempPattern = %q, want %q", got, tt.want)
			}
		})
	}
}
