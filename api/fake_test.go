package api_test

import (
	"bytes"
	"context"
	"crypto/sha256"
	"encoding/hex"
	"fmt"
	"io"
	"sync"
	"time"

	"github.com/casd/casd/core"
)

// kindErr is an error of a given kind, as node's errors are classified.
type kindErr struct {
	kind core.Kind
	msg  string
}

func (e kindErr) Error() string   { return e.msg }
func (e kindErr) Kind() core.Kind { return e.kind }

var errNotFound = kindErr{core.KindNotFound, "fake: not found"}

// faults injects failures into a fake; set its fields before serving.
type faults struct {
	// err, if set, is returned by every call; the streams (add, cat,
	// block/get, refs) first pass failAfter bytes (refs: CIDs).
	err       error
	failAfter int
	// hang, if set, makes every call (the streams: after failAfter) hang
	// until its context is done.
	hang *hang
}

// hang reports a call that hangs: on started when it begins to wait, then
// its context's error on canceled.
type hang struct {
	started  chan struct{}
	canceled chan error
}

func newHang() *hang {
	return &hang{started: make(chan struct{}, 16), canceled: make(chan error, 16)}
}

func (h *hang) wait(ctx context.Context) error {
	h.started <- struct{}{}
	<-ctx.Done()
	h.canceled <- ctx.Err()
	return ctx.Err()
}

// failing reports whether a failure is injected.
func (f *faults) failing() bool { return f.hang != nil || f.err != nil }

// fail is what a call that sends nothing returns when a failure is injected.
func (f *faults) fail(ctx context.Context) error {
	if f.hang != nil {
		return f.hang.wait(ctx)
	}
	return f.err
}

type fakeFile struct {
	info core.FileInfo
	data []byte
}

// fakeStore is an in-memory store of files: it fakes the files concern,
// and the blocks concern on the same data (each file is one block).
type fakeStore struct {
	faults
	// discard makes Add count and hash the file without keeping it. Add
	// with a hang reads its whole body before it waits, as a node does
	// while it replicates.
	discard bool

	// mu guards the fields below.
	mu       sync.Mutex
	files    map[string]fakeFile
	lastAdd  core.AddOptions
	added    int64  // bytes the last Add read
	addedSum []byte // their SHA-256
}

func newStore() *fakeStore { return &fakeStore{files: map[string]fakeFile{}} }

func cidOf(sum []byte) string { return "bafk" + hex.EncodeToString(sum[:8]) }

// put stores a file and returns its info.
func (f *fakeStore) put(data []byte, info core.FileInfo) core.FileInfo {
	sum := sha256.Sum256(data)
	info.Cid = cidOf(sum[:])
	info.Size = int64(len(data))
	f.mu.Lock()
	defer f.mu.Unlock()
	f.files[info.Cid] = fakeFile{info: info, data: data}
	return info
}

func (f *fakeStore) file(ref string) (fakeFile, bool) {
	f.mu.Lock()
	defer f.mu.Unlock()
	ff, ok := f.files[ref]
	return ff, ok
}

// progressWriter counts and hashes what Add reads, and reports the count.
type progressWriter struct {
	n        int64
	w        io.Writer
	progress func(int64)
}

func (w *progressWriter) Write(p []byte) (int, error) {
	w.n += int64(len(p))
	_, _ = w.w.Write(p)
	if w.progress != nil {
		w.progress(w.n)
	}
	return len(p), nil
}

func (f *fakeStore) Add(ctx context.Context, r io.Reader, opt core.AddOptions) (*core.AddResult, error) {
	f.mu.Lock()
	f.lastAdd = opt
	f.lastAdd.Progress = nil
	f.mu.Unlock()
	h := sha256.New()
	var data bytes.Buffer
	dst := io.Writer(h)
	if !f.discard {
		dst = io.MultiWriter(h, &data)
	}
	pw := &progressWriter{w: dst, progress: opt.Progress}
	var err error
	switch {
	case f.hang != nil:
		_, _ = io.CopyN(pw, r, int64(f.failAfter))
		f.hang.started <- struct{}{}
		_, _ = io.Copy(io.Discard, r) // until the body ends or breaks
		<-ctx.Done()
		f.hang.canceled <- ctx.Err()
		err = ctx.Err()
	case f.err != nil:
		_, err = io.CopyN(pw, r, int64(f.failAfter))
		if err == nil {
			err = f.err
		}
	default:
		_, err = io.Copy(pw, r)
	}
	sum := h.Sum(nil)
	f.mu.Lock()
	f.added, f.addedSum = pw.n, sum
	f.mu.Unlock()
	if err != nil {
		return nil, err
	}
	info := core.FileInfo{Name: opt.Name, Mode: opt.Mode, MediaType: opt.MediaType}
	if f.discard {
		info.Cid, info.Size = cidOf(sum), pw.n
	} else {
		info = f.put(data.Bytes(), info)
	}
	return &core.AddResult{FileInfo: info, Capability: "cap-" + info.Cid}, nil
}

// send writes data to w in small pieces, failing as injected.
func (f *fakeStore) send(ctx context.Context, w io.Writer, data []byte) error {
	n := len(data)
	if f.failing() {
		n = min(f.failAfter, n)
	}
	for off := 0; off < n; off += 4096 {
		if err := ctx.Err(); err != nil {
			return err
		}
		if _, err := w.Write(data[off:min(off+4096, n)]); err != nil {
			return err
		}
	}
	if f.failing() {
		return f.fail(ctx)
	}
	return nil
}

func (f *fakeStore) Cat(ctx context.Context, ref string, open func(core.FileInfo) (io.Writer, error)) error {
	if f.failing() && f.failAfter == 0 {
		return f.fail(ctx)
	}
	ff, ok := f.file(ref)
	if !ok {
		return fmt.Errorf("cat %s: %w", ref, errNotFound)
	}
	w, err := open(ff.info)
	if err != nil {
		return err
	}
	return f.send(ctx, w, ff.data)
}

func (f *fakeStore) BlockGet(ctx context.Context, cid string, w io.Writer) error {
	if f.failing() && f.failAfter == 0 {
		return f.fail(ctx)
	}
	ff, ok := f.file(cid)
	if !ok {
		return fmt.Errorf("block get %s: %w", cid, errNotFound)
	}
	return f.send(ctx, w, ff.data)
}

// refsOf are the fake's blocks of a file: the root, then three chunks.
func refsOf(c string) []string {
	return []string{c, c + "-0", c + "-1", c + "-2"}
}

func (f *fakeStore) Refs(ctx context.Context, ref string, fn func(cid string) error) error {
	if f.failing() && f.failAfter == 0 {
		return f.fail(ctx)
	}
	if _, ok := f.file(ref); !ok {
		return fmt.Errorf("refs %s: %w", ref, errNotFound)
	}
	refs := refsOf(ref)
	if f.failing() {
		refs = refs[:f.failAfter]
	}
	for _, c := range refs {
		if err := fn(c); err != nil {
			return err
		}
	}
	if f.failing() {
		return f.fail(ctx)
	}
	return nil
}

var added = time.Date(2026, 1, 2, 3, 4, 5, 0, time.UTC)

func (f *fakeStore) Ls(context.Context) ([]core.ListEntry, error) {
	f.mu.Lock()
	defer f.mu.Unlock()
	var out []core.ListEntry
	for _, ff := range f.files {
		out = append(out, core.ListEntry{Cid: ff.info.Cid, Name: ff.info.Name, Size: ff.info.Size, Added: added})
	}
	return out, nil
}

func (f *fakeStore) Share(_ context.Context, cid string) (string, error) {
	if _, ok := f.file(cid); !ok {
		return "", fmt.Errorf("share %s: %w", cid, errNotFound)
	}
	return "cap-" + cid, nil
}

func (f *fakeStore) BlockStat(_ context.Context, cid string) (*core.BlockStat, error) {
	ff, ok := f.file(cid)
	if !ok {
		return nil, fmt.Errorf("block stat %s: %w", cid, errNotFound)
	}
	return &core.BlockStat{Cid: cid, Size: len(ff.data)}, nil
}

// fakeRepo fakes the repo concern with fixed answers, or the faults (only
// err and hang apply).
type fakeRepo struct{ faults }

func (f *fakeRepo) RepoVerify(ctx context.Context) (*core.VerifyReport, error) {
	return answer(f.fail(ctx), &core.VerifyReport{Checked: 7, Corrupt: []string{"bafkbad"}, Missing: []string{}})
}

func (f *fakeRepo) RepoGC(ctx context.Context) (*core.GCResult, error) {
	return answer(f.fail(ctx), &core.GCResult{Removed: 3, Freed: 3 << 20})
}

func (f *fakeRepo) RepoStat(ctx context.Context) (*core.RepoStat, error) {
	return answer(f.fail(ctx), &core.RepoStat{Path: "/repo", Version: 1, Blocks: 10, Bytes: 1 << 30, Pins: 2, Files: 2})
}

// answer returns err, or v if err is nil.
func answer[T any](err error, v T) (T, error) {
	if err != nil {
		var zero T
		return zero, err
	}
	return v, nil
}

// fakeNetwork fakes the network concern with fixed answers, and records
// what it is asked. err, if set, is what Connect returns.
func (f *fakeStore) Remove(_ context.Context, cid string) error {
	f.mu.Lock()
	defer f.mu.Unlock()
	if _, ok := f.files[cid]; !ok {
		return fmt.Errorf("rm %s: %w", cid, core.ErrNotMine)
	}
	delete(f.files, cid)
	return nil
}

type fakeNetwork struct {
	err error

	// mu guards the fields below.
	mu        sync.Mutex
	connected []string
	peersAll  []bool
}

func (f *fakeNetwork) ID(context.Context) (*core.IDInfo, error) {
	return &core.IDInfo{
		ID:           "12D3KooWfake",
		Addrs:        []string{"/ip4/127.0.0.1/tcp/4001"},
		AgentVersion: "casd/test",
		Protocols:    []string{"/cas/get/1.0"},
	}, nil
}

func (f *fakeNetwork) Connect(_ context.Context, addr string) error {
	if f.err != nil {
		return f.err
	}
	f.mu.Lock()
	defer f.mu.Unlock()
	f.connected = append(f.connected, addr)
	return nil
}

// fakeSeen is the last-seen time of the fake's peers.
var fakeSeen = time.Date(2026, 12, 2, 3, 4, 5, 0, time.UTC)

func (f *fakeNetwork) Peers(_ context.Context, all bool) ([]core.PeerInfo, error) {
	f.mu.Lock()
	f.peersAll = append(f.peersAll, all)
	f.mu.Unlock()
	out := []core.PeerInfo{{ID: "12D3KooWa", Addrs: []string{"/ip4/10.0.0.1/tcp/4001"}, Connected: true,
		Sources: []string{"bootstrap", "inbound"}, LastSeen: fakeSeen}}
	if all {
		out = append(out, core.PeerInfo{ID: "12D3KooWb", Addrs: []string{"/ip4/10.0.0.2/udp/4001/quic-v1"},
			Sources: []string{"gossip"}, LastSeen: fakeSeen.Add(-time.Minute)})
	}
	return out, nil
}

func (f *fakeNetwork) Status(_ context.Context, cid string) (*core.StatusInfo, error) {
	return &core.StatusInfo{Cid: cid, Goal: 3, Replicas: []string{"12D3KooWa", "12D3KooWb"}}, nil
}

// Repair reports a check of cid, or of two roots when cid is empty.
func (f *fakeNetwork) Repair(_ context.Context, cid string) ([]core.RepairReport, error) {
	if cid == "" {
		return []core.RepairReport{repairOf("bafka"), repairOf("bafkb")}, nil
	}
	return []core.RepairReport{repairOf(cid)}, nil
}

func repairOf(cid string) core.RepairReport {
	return core.RepairReport{Cid: cid, Goal: 3, Live: []string{"12D3KooWa", "12D3KooWc"},
		Added: []string{"12D3KooWc"}, Dropped: []string{"12D3KooWb"}}
}

// fakeNode is every concern in one value, as a *node.Node is.
type fakeNode struct {
	*fakeStore
	*fakeRepo
	*fakeNetwork
}
