package main

import (
	"context"
	"errors"
	"io"

	"github.com/casd/casd/core"
)

// fakeBackend is an in-memory backend with one file. Methods a test does
// not set up fail with errFakeUnset.
type fakeBackend struct {
	info core.FileInfo
	data []byte
	// failAfter, if >= 0, makes Cat fail after writing that many bytes.
	failAfter int
	catErr    error // returned by Cat before open is called

	verify *core.VerifyReport
	added  []core.AddOptions
}

var errFakeUnset = errors.New("fake: not set up")

var errFakeMidStream = errors.New("fake: connection lost")

var _ backend = (*fakeBackend)(nil)

func newFakeBackend(name string, mode uint32, data string) *fakeBackend {
	return &fakeBackend{
		info:      core.FileInfo{Cid: "bafkfake", Name: name, Size: int64(len(data)), Mode: mode},
		data:      []byte(data),
		failAfter: -1,
	}
}

func (f *fakeBackend) Add(_ context.Context, r io.Reader, opt core.AddOptions) (*core.AddResult, error) {
	b, err := io.ReadAll(r)
	if err != nil {
		return nil, err
	}
	f.added = append(f.added, opt)
	if opt.Progress != nil {
		opt.Progress(int64(len(b)))
	}
	return &core.AddResult{FileInfo: core.FileInfo{Cid: "bafkadded", Name: opt.Name, Size: int64(len(b)), Mode: opt.Mode}}, nil
}

func (f *fakeBackend) Cat(_ context.Context, _ string, open func(core.FileInfo) (io.Writer, error)) error {
	if f.catErr != nil {
		return f.catErr
	}
	w, err := open(f.info)
	if err != nil {
		return err
	}
	data := f.data
	if f.failAfter >= 0 {
		data = data[:f.failAfter]
	}
	if _, err := w.Write(data); err != nil {
		return err
	}
	if f.failAfter >= 0 {
		return errFakeMidStream
	}
	return nil
}

func (f *fakeBackend) Ls(context.Context) ([]core.ListEntry, error) { return nil, nil }
func (f *fakeBackend) Share(context.Context, string) (string, error) {
	return "", errFakeUnset
}
func (f *fakeBackend) Refs(context.Context, string, func(string) error) error { return errFakeUnset }
func (f *fakeBackend) BlockGet(context.Context, string, io.Writer) error      { return errFakeUnset }
func (f *fakeBackend) BlockStat(context.Context, string) (*core.BlockStat, error) {
	return nil, errFakeUnset
}
func (f *fakeBackend) RepoVerify(context.Context) (*core.VerifyReport, error) {
	if f.verify == nil {
		return nil, errFakeUnset
	}
	return f.verify, nil
}
func (f *fakeBackend) RepoGC(context.Context) (*core.GCResult, error)   { return nil, errFakeUnset }
func (f *fakeBackend) RepoStat(context.Context) (*core.RepoStat, error) { return nil, errFakeUnset }
func (f *fakeBackend) ID(context.Context) (*core.IDInfo, error)         { return nil, errFakeUnset }
func (f *fakeBackend) Connect(context.Context, string) error            { return core.ErrOffline }
func (f *fakeBackend) Peers(context.Context, bool) ([]core.PeerInfo, error) {
	return nil, core.ErrOffline
}
func (f *fakeBackend) Status(context.Context, string) (*core.StatusInfo, error) {
	return nil, core.ErrOffline
}
