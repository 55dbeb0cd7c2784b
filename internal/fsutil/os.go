package fsutil

import (
	"io"
	"io/fs"
	"os"
)

// fileSystem is the part of the OS this package uses. Tests wrap it to
// inject faults (kopia's repo/blob/filesystem/osinterface.go idea).
type fileSystem interface {
	CreateTemp(dir, pattern string) (file, error)
	Lstat(name string) (fs.FileInfo, error)
	Rename(oldpath, newpath string) error
	Link(oldname, newname string) error
	Remove(name string) error
	SyncDir(dir string) error
}

// file is the part of [*os.File] this package uses.
type file interface {
	io.Writer
	Name() string
	Sync() error
	Chmod(mode fs.FileMode) error
	Close() error
}

// osFS is the real file system.
type osFS struct{}

var _ fileSystem = osFS{}

func (osFS) CreateTemp(dir, pattern string) (file, error) {
	f, err := os.CreateTemp(dir, pattern)
	if err != nil {
		return nil, err // not a typed nil in an interface
	}
	return f, nil
}

func (osFS) Lstat(name string) (fs.FileInfo, error) { return os.Lstat(name) }
func (osFS) Rename(oldpath, newpath string) error   { return os.Rename(oldpath, newpath) }
func (osFS) Link(oldname, newname string) error     { return os.Link(oldname, newname) }
func (osFS) Remove(name string) error               { return os.Remove(name) }
func (osFS) SyncDir(dir string) error               { return syncDir(dir) }
