package fsutil_test

import (
	"bytes"
	"errors"
	"io/fs"
	"os"
	"path/filepath"
	"runtime"
	"slices"
	"strings"
	"sync"
	"testing"

	"github.com/casd/casd/internal/fsutil"
)

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

func checkFile(tb testing.TB, path, want string, perm fs.FileMode) {
	tb.Helper()
	b, err := os.ReadFile(path)
	if err != nil {
		tb.Fatal(err)
	}
	if string(b) != want {
		tb.Fatalf("%s holds %q, want %q", path, b, want)
	}
	fi, err := os.Stat(path)
	if err != nil {
		tb.Fatal(err)
	}
	// Windows has only a read-only bit.
	if runtime.GOOS != "windows" && fi.Mode().Perm() != perm {
		tb.Fatalf("%s has mode %v, want %v", path, fi.Mode().Perm(), perm)
	}
}

func TestWriteFile(t *testing.T) {
	tests := []struct {
		name string
		old  string // "" for no old file
		perm fs.FileMode
	}{
		{"new file", "", 0o600},
		{"replaces, with the new mode", "old content, longer than the new", 0o640},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			dir := t.TempDir()
			p := filepath.Join(dir, "f")
			if tt.old != "" {
				if err := os.WriteFile(p, []byte(tt.old), 0o644); err != nil {
					t.Fatal(err)
				}
			}
			if err := fsutil.WriteFile(p, []byte("new"), tt.perm); err != nil {
				t.Fatal(err)
			}
			checkFile(t, p, "new", tt.perm)
			if got := entries(t, dir); !slices.Equal(got, []string{"f"}) {
				t.Fatalf("dir holds %q: temp file left behind", got)
			}
		})
	}
}

// TestWriteFileOverDirectory fails the write after the temporary file was
// written and fsynced, on the real file system.
func TestWriteFileOverDirectory(t *testing.T) {
	dir := t.TempDir()
	target := filepath.Join(dir, "target")
	if err := os.MkdirAll(filepath.Join(target, "child"), 0o700); err != nil {
		t.Fatal(err)
	}
	if err := fsutil.WriteFile(target, []byte("data"), 0o600); err == nil {
		t.Fatal("write over a directory succeeded")
	}
	if got := entries(t, dir); !slices.Equal(got, []string{"target"}) {
		t.Fatalf("dir holds %q: temp file left behind", got)
	}
	if got := entries(t, target); !slices.Equal(got, []string{"child"}) {
		t.Fatalf("target dir holds %q, want child", got)
	}
}

// TestWriteFileAtomic replaces a file over and over while readers read it:
// a reader sees one whole version or the other, never a mix, a prefix or
// an empty file.
func TestWriteFileAtomic(t *testing.T) {
	p := filepath.Join(t.TempDir(), "f")
	a := bytes.Repeat([]byte("a"), 256<<10)
	b := bytes.Repeat([]byte("b"), 128<<10)
	if err := fsutil.WriteFile(p, a, 0o600); err != nil {
		t.Fatal(err)
	}
	const writes = 50
	done := make(chan struct{})
	var wg sync.WaitGroup
	errs := make(chan error, 4)
	for range 3 {
		wg.Go(func() {
			for {
				select {
				case <-done:
					return
				default:
				}
				got, err := os.ReadFile(p)
				if err != nil {
					// Windows may refuse to open a file being replaced.
					if runtime.GOOS == "windows" {
						continue
					}
					errs <- err
					return
				}
				if !bytes.Equal(got, a) && !bytes.Equal(got, b) {
					errs <- errors.New("read a torn file: " + strings.TrimRight(string(got[:min(len(got), 16)]), "\x00") + "...")
					return
				}
			}
		})
	}
	var werr error
	for i := range writes {
		data := a
		if i%2 == 0 {
			data = b
		}
		if werr = fsutil.WriteFile(p, data, 0o600); werr != nil {
			break
		}
	}
	close(done)
	wg.Wait()
	close(errs)
	if werr != nil {
		t.Fatal(werr)
	}
	for err := range errs {
		t.Fatal(err)
	}
}

func TestCreate(t *testing.T) {
	tests := []struct {
		name     string
		old      string // "" for none
		commit   func(*fsutil.File) error
		wantErr  error
		wantData string
	}{
		{"Commit new", "", (*fsutil.File).Commit, nil, "new"},
		{"Commit replaces", "old", (*fsutil.File).Commit, nil, "new"},
		{"CommitNew new", "", (*fsutil.File).CommitNew, nil, "new"},
		{"CommitNew refuses an existing file", "old", (*fsutil.File).CommitNew, fs.ErrExist, "old"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			dir := t.TempDir()
			p := filepath.Join(dir, "out")
			if tt.old != "" {
				if err := os.WriteFile(p, []byte(tt.old), 0o600); err != nil {
					t.Fatal(err)
				}
			}
			f, err := fsutil.Create(p, 0o640)
			if err != nil {
				t.Fatal(err)
			}
			defer f.Abort()
			for _, s := range []string{"n", "ew"} {
				if _, err := f.Write([]byte(s)); err != nil {
					t.Fatal(err)
				}
			}
			// Nothing is visible before the commit.
			if tt.old == "" {
				if _, err := os.Lstat(p); !errors.Is(err, fs.ErrNotExist) {
					t.Fatalf("target exists before commit: %v", err)
				}
			}
			err = tt.commit(f)
			if !errors.Is(err, tt.wantErr) {
				t.Fatalf("commit: err = %v, want %v", err, tt.wantErr)
			}
			perm := fs.FileMode(0o640)
			if tt.wantErr != nil {
				perm = 0o600
			}
			checkFile(t, p, tt.wantData, perm)
			if got := entries(t, dir); !slices.Equal(got, []string{"out"}) {
				t.Fatalf("dir holds %q: temp file left behind", got)
			}
			if err := f.Abort(); err != nil {
				t.Fatalf("Abort after commit: %v", err)
			}
			if _, err := f.Write([]byte("more")); err == nil {
				t.Fatal("Write after commit succeeded")
			}
		})
	}
}

func TestCreateNeverReplacesDirectory(t *testing.T) {
	for _, name := range []string{"Commit", "CommitNew"} {
		t.Run(name, func(t *testing.T) {
			dir := t.TempDir()
			p := filepath.Join(dir, "out")
			if err := os.Mkdir(p, 0o700); err != nil {
				t.Fatal(err)
			}
			f, err := fsutil.Create(p, 0o600)
			if err != nil {
				t.Fatal(err)
			}
			commit := f.Commit
			if name == "CommitNew" {
				commit = f.CommitNew
			}
			if err := commit(); err == nil {
				t.Fatal("commit over a directory succeeded")
			}
			if fi, err := os.Lstat(p); err != nil || !fi.IsDir() {
				t.Fatalf("directory replaced: %v %v", fi, err)
			}
			if got := entries(t, dir); !slices.Equal(got, []string{"out"}) {
				t.Fatalf("dir holds %q: temp file left behind", got)
			}
		})
	}
}

func TestAbort(t *testing.T) {
	dir := t.TempDir()
	p := filepath.Join(dir, "out")
	f, err := fsutil.Create(p, 0o600)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := f.Write([]byte("half")); err != nil {
		t.Fatal(err)
	}
	if got := entries(t, dir); len(got) != 1 || !strings.HasPrefix(got[0], ".out.tmp-") {
		t.Fatalf("dir holds %q, want one .out.tmp-* file", got)
	}
	if err := f.Abort(); err != nil {
		t.Fatal(err)
	}
	if err := f.Abort(); err != nil {
		t.Fatalf("second Abort: %v", err)
	}
	if got := entries(t, dir); len(got) != 0 {
		t.Fatalf("dir holds %q after Abort, want nothing", got)
	}
	if err := f.Commit(); err == nil {
		t.Fatal("Commit after Abort succeeded")
	}
	if _, err := os.Lstat(p); !errors.Is(err, fs.ErrNotExist) {
		t.Fatalf("target exists after Abort: %v", err)
	}
}

// TestCreateLongName checks that a target whose name is as long as a file
// name may be still gets a temporary file.
func TestCreateLongName(t *testing.T) {
	p := filepath.Join(t.TempDir(), strings.Repeat("n", 250))
	if err := fsutil.WriteFile(p, []byte("x"), 0o600); err != nil {
		t.Fatal(err)
	}
	checkFile(t, p, "x", 0o600)
}

func TestWriteTemp(t *testing.T) {
	dir := t.TempDir()
	p, err := fsutil.WriteTemp(dir, ".tmp-*", []byte("block"))
	if err != nil {
		t.Fatal(err)
	}
	if filepath.Dir(p) != dir || !strings.HasPrefix(filepath.Base(p), ".tmp-") {
		t.Fatalf("temp file %s is not .tmp-* in %s", p, dir)
	}
	checkFile(t, p, "block", 0o600)
}

func TestSyncDir(t *testing.T) {
	if err := fsutil.SyncDir(t.TempDir()); err != nil {
		t.Fatal(err)
	}
	if runtime.GOOS == "windows" {
		return // a no-op there
	}
	if err := fsutil.SyncDir(filepath.Join(t.TempDir(), "missing")); !errors.Is(err, fs.ErrNotExist) {
		t.Fatalf("SyncDir of a missing dir: err = %v, want fs.ErrNotExist", err)
	}
}

func TestRemoveIfExists(t *testing.T) {
	p := filepath.Join(t.TempDir(), "f")
	if err := os.WriteFile(p, nil, 0o600); err != nil {
		t.Fatal(err)
	}
	for i := range 2 {
		if err := fsutil.RemoveIfExists(p); err != nil {
			t.Fatalf("call %d: %v", i+1, err)
		}
	}
	if _, err := os.Lstat(p); !errors.Is(err, fs.ErrNotExist) {
		t.Fatalf("file still there: %v", err)
	}
}
