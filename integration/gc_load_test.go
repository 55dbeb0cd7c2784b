package integration

import (
	"crypto/sha256"
	"encoding/json"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"
)

// Load of TestGCUnderLoad.
const (
	gcLoadAdders    = 4 // goroutines adding files on the collecting node
	gcLoadAdds      = 3 // files each adds
	gcLoadStores    = 4 // files the peer adds, each stored on the collecting node
	gcLoadMinGCs    = 5 // gcs that must end while the load runs
	gcLoadAborts    = 6 // adds on the collecting node killed midway: garbage
	gcLoadGarbage   = 3000
	gcLoadMinSize   = 8 * mib
	gcLoadSizeRange = 8 * mib
)

// loadFile is one file of TestGCUnderLoad and what became of it.
type loadFile struct {
	path string
	sum  [sha256.Size]byte
	cid  string
}

// TestGCUnderLoad: `casd repo gc` runs over and over on a daemon while four
// concurrent adds (8-16 MiB each) run on it, a peer stores its own files
// on it (replication factor 1, the daemon is its only peer), and adds
// whose CLI is killed midway leave garbage (the daemon cancels them), with
// garbage in the repo from the start too; at least five gcs end while the
// load runs. Afterwards every added and every stored
// file is whole: both repos verify clean, the daemon holds every block of
// every file, every add's and every store's pin, and each file reads back
// with the sha256 it was added with (the stored ones by capability, from
// the daemon's own copy, with the peer stopped).
func TestGCUnderLoad(t *testing.T) {
	a, b := newNode(t), newNode(t)
	a.requireOK(t, a.run(t, "config", "Replication.Factor", "0"))
	writeGarbage(t, a.repo, gcLoadGarbage, 4<<10)
	da := startDaemon(t, a)
	boot, err := json.Marshal([]string{da.tcpAddr(t)})
	noErr(t, err)
	b.requireOK(t, b.run(t, "config", "Bootstrap", string(boot)))
	b.requireOK(t, b.run(t, "config", "Replication.Factor", "1"))
	db := startDaemon(t, b)
	waitConnected(t, a, db.ID)

	dir := t.TempDir()
	adds := make([][]*loadFile, gcLoadAdders)
	for i := range adds {
		for j := range gcLoadAdds {
			adds[i] = append(adds[i], newLoadFile(t, dir, fmt.Sprintf("add-%d-%d.bin", i, j)))
		}
	}
	var stores []*loadFile
	for j := range gcLoadStores {
		stores = append(stores, newLoadFile(t, dir, fmt.Sprintf("store-%d.bin", j)))
	}
	var aborts []string
	for j := range gcLoadAborts {
		p, _ := writeHashedFile(t, dir, fmt.Sprintf("abort-%d.bin", j), 16*mib)
		aborts = append(aborts, p)
	}

	gcs := runUnderGC(t, a, func(wg *sync.WaitGroup, more func() bool) {
		for i := range adds {
			wg.Go(func() { adds[i] = addAll(t, a, dir, adds[i], more) })
		}
		wg.Go(func() { stores = addAll(t, b, dir, stores, more) })
		wg.Go(func() { abortAdds(t, a, aborts) })
	})
	if t.Failed() {
		return
	}
	t.Logf("%d gcs ended during the load, removing %s blocks", len(gcs), strings.Join(gcs, ", "))
	for i, fs := range adds {
		t.Logf("adder %d added %d files", i, len(fs))
	}
	t.Logf("the peer stored %d files", len(stores))
	check(t, len(gcs) >= gcLoadMinGCs, "only %d gcs ended while the load ran, want %d", len(gcs), gcLoadMinGCs)

	a.requireOK(t, a.run(t, "repo", "verify"))
	b.requireOK(t, b.run(t, "repo", "verify"))
	var caps []string
	for _, f := range stores {
		check(t, f.cid != "", "store of %s got no CID", f.path)
		requireHolds(t, a.repo, b.refs(t, f.cid))
		caps = append(caps, b.share(t, f.cid))
	}
	// A killed add whose CLI had sent the whole file completes in the
	// daemon: its pin must be whole too (ls opens every owned root).
	st := a.repoStat(t)
	added := 0
	for _, fs := range adds {
		added += len(fs)
	}
	want := added + len(stores)
	check(t, st.Pins >= want && st.Pins <= want+gcLoadAborts, "the daemon holds %d pins, want %d adds and %d replicas, and up to %d killed adds",
		st.Pins, added, len(stores), gcLoadAborts)
	ls := a.run(t, "ls")
	a.requireOK(t, ls)
	check(t, strings.Count(ls.out(), "\n") == st.Files, "ls lists %d files, repo stat %d: %s", strings.Count(ls.out(), "\n"), st.Files, ls)
	db.Stop(t) // what the daemon reads now is its own
	for _, fs := range adds {
		for _, f := range fs {
			check(t, sha256.Sum256(a.cat(t, f.cid)) == f.sum, "added file %s reads back different", f.path)
		}
	}
	for i, f := range stores {
		check(t, sha256.Sum256(a.cat(t, caps[i])) == f.sum, "stored file %s reads back different", f.path)
	}
}

// newLoadFile writes a random file of 8 to 16 MiB in dir.
func newLoadFile(t *testing.T, dir, name string) *loadFile {
	t.Helper()
	size := gcLoadMinSize + int64(randBytes(1)[0])*gcLoadSizeRange/256
	p, sum := writeHashedFile(t, dir, name, size)
	return &loadFile{path: p, sum: sum}
}

// runUnderGC runs load (which adds its goroutines to the group it is
// given) while `casd repo gc` runs on n in a loop, and returns the
// "removed" counts of the gcs that ended before the load did. The load's
// more reports whether fewer than gcLoadMinGCs gcs have ended: adders go
// on while it holds, so that the gcs overlap the load however slowly they
// run. Failures are reported with t.Errorf, from any goroutine.
func runUnderGC(t *testing.T, n *node, load func(wg *sync.WaitGroup, more func() bool)) []string {
	var ended atomic.Int32
	var wg sync.WaitGroup
	load(&wg, func() bool { return ended.Load() < gcLoadMinGCs && !t.Failed() })
	loaded := make(chan struct{})
	go func() { wg.Wait(); close(loaded) }() // ends when the load does, waited for below
	var gcs []string
	for {
		select {
		case <-loaded:
			return gcs
		default:
		}
		res := n.run(t, "repo", "gc")
		if res.code != exitOK {
			t.Errorf("gc under load: %s", res)
			<-loaded
			return gcs
		}
		select {
		case <-loaded:
			return gcs // it may have waited for the last add: not under load
		default:
		}
		removed, _, _ := strings.Cut(strings.TrimPrefix(res.out(), "removed "), " ")
		gcs = append(gcs, removed)
		ended.Add(1)
	}
}

// abortAdds adds the files paths on n's daemon, one after the other, and
// kills each CLI after a random delay of up to 300 ms: the daemon cancels
// the add if its body was still coming, and its committed blocks are then
// garbage.
func abortAdds(t *testing.T, n *node, paths []string) {
	for _, p := range paths {
		cmd := n.command(t.Context(), runOpts{}, "add", "-q", "--progress=false", p)
		if err := cmd.Start(); err != nil {
			t.Errorf("start add %s: %v", p, err)
			return
		}
		done := make(chan error, 1)
		go func() { done <- cmd.Wait() }() // waited for below
		timer := time.NewTimer(time.Duration(randBytes(1)[0]) * 300 * time.Millisecond / 256)
		select {
		case <-done:
		case <-timer.C:
			_ = cmd.Process.Kill()
			<-done
		}
		timer.Stop()
	}
}

// addAll adds files on n one after the other, recording their CIDs, then
// new 1 MiB files while more holds, and returns every file it added.
func addAll(t *testing.T, n *node, dir string, files []*loadFile, more func() bool) []*loadFile {
	for i := 0; i < len(files) || more(); i++ {
		if i == len(files) {
			data := randBytes(mib)
			p := filepath.Join(dir, fmt.Sprintf("more-%s.bin", randHex(8)))
			if err := os.WriteFile(p, data, 0o600); err != nil {
				t.Errorf("write %s: %v", p, err)
				return files
			}
			files = append(files, &loadFile{path: p, sum: sha256.Sum256(data)})
		}
		f := files[i]
		res := n.run(t, "add", "-q", "--progress=false", f.path)
		if res.code != exitOK {
			t.Errorf("add %s under gc: %s", filepath.Base(f.path), res)
			return files[:i]
		}
		f.cid = strings.TrimSpace(res.out())
		if !strings.HasPrefix(f.cid, "bafk") {
			t.Errorf("add %s printed %q", f.path, res.out())
			return files[:i]
		}
	}
	return files
}
