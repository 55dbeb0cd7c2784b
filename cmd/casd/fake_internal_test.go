package main

import (
	"context"
	"errors"
	"io"

	"github.com/casd/casd/core"
)

// fakeFiles fakes the files concern for runAdd and runGet: Add reads its
// input and records its options, Cat serves one file. The nil core.Files
// it embeds stands for the methods no test calls: calling one panics.
type fakeFiles struct {
	core.Files
	info core.FileInfo
	data []byte
	// failAfter, if >= 0, makes Cat fail after writing that many bytes.
	failAfter int

	added []core.AddOptions
}

var errFakeMidStream = errors.New("fake: connection lost")

func newFakeFiles(name string, mode uint32, data string) *fakeFiles {
	return &fakeFiles{
		info:      core.FileInfo{Cid: "bafkfake", Name: name, Size: int64(len(data)), Mode: mode},
		data:      []byte(data),
		failAfter: -1,
	}
}

func (f *fakeFiles) Add(_ context.Context, r io.Reader, opt core.AddOptions) (*core.AddResult, error) {
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

func (f *fakeFiles) Cat(_ context.Context, _ string, open func(core.FileInfo) (io.Writer, error)) error {
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

// fakeRepo fakes the repo concern for runRepoVerify with one report. The
// nil core.Repo it embeds stands for the methods no test calls.
type fakeRepo struct {
	core.Repo
	verify *core.VerifyReport
}

func (f fakeRepo) RepoVerify(context.Context) (*core.VerifyReport, error) { return f.verify, nil }
