package integration

import (
	"bytes"
	"context"
	"crypto/rand"
	"errors"
	"fmt"
	"io/fs"
	"iter"
	"path/filepath"
	"testing"
	"time"

	"github.com/ipfs/go-cid"

	"github.com/casd/casd/blockstore"
	"github.com/casd/casd/blockstore/blockstoretest"
	"github.com/casd/casd/crypt"
	"github.com/casd/casd/dag"
	"github.com/casd/casd/internal/adversary"
	"github.com/casd/casd/protocol"
)

// strangerFile is a file that a stranger made with keys of its own, held
// in memory: its blocks in walk order (parents first), as casd sends them.
type strangerFile struct {
	root   cid.Cid
	blocks []blockstore.Block
	bytes  uint64
}

func newStrangerFile(t testing.TB, size int) strangerFile {
	t.Helper()
	var s crypt.Secrets
	_, _ = rand.Read(s.Master[:])
	_, _ = rand.Read(s.Convergence[:])
	var mem blockstoretest.Mem
	added, err := dag.Add(t.Context(), bytes.NewReader(randBytes(size)), dag.Meta{Name: "junk"}, &s, &mem, dag.AddOptions{ChunkSize: mib})
	noErr(t, err, "make the stranger's file")
	f := strangerFile{root: added.Root}
	err = dag.Walk(t.Context(), &mem, added.Root, func(c cid.Cid, _ byte) error {
		data, err := mem.Get(t.Context(), c)
		f.blocks = append(f.blocks, blockstore.Block{Cid: c, Data: data})
		f.bytes += uint64(len(data))
		return err
	})
	noErr(t, err, "walk the stranger's file")
	return f
}

// sendAborting yields the first n blocks of f, then waits for sent (which
// polls the victim) to report them stored, then fails: the store is
// aborted with its blocks on the victim's disk.
func (f strangerFile) sendAborting(n int, stored func() bool) iter.Seq2[blockstore.Block, error] {
	return func(yield func(blockstore.Block, error) bool) {
		for _, b := range f.blocks[:n] {
			if !yield(b, nil) {
				return
			}
		}
		deadline := time.Now().Add(20 * time.Second) // within the victim's idle timeout
		for !stored() && time.Now().Before(deadline) {
			time.Sleep(pollInterval)
		}
		yield(blockstore.Block{}, errors.New("stranger aborts the store"))
	}
}

func (f strangerFile) all() iter.Seq2[blockstore.Block, error] {
	return func(yield func(blockstore.Block, error) bool) {
		for _, b := range f.blocks {
			if !yield(b, nil) {
				return
			}
		}
	}
}

// liveSize sums the sizes of the regular files under dir while a daemon
// may remove some of them (dirSize fails on a file removed under it).
func liveSize(t testing.TB, dir string) int64 {
	t.Helper()
	var total int64
	err := filepath.WalkDir(dir, func(_ string, d fs.DirEntry, err error) error {
		if errors.Is(err, fs.ErrNotExist) {
			return nil
		}
		if err != nil || !d.Type().IsRegular() {
			return err
		}
		info, err := d.Info()
		if errors.Is(err, fs.ErrNotExist) {
			return nil
		}
		if err == nil {
			total += info.Size()
		}
		return err
	})
	noErr(t, err, "size of "+dir)
	return total
}

// TestHostileAbortedStoreIsCollected (hostile peers, point 4): a stranger
// stores 31 MiB of a 40 MiB file on a node and aborts. Without anyone
// running `casd repo gc`, the node's blocks directory comes back to its
// size before the attack within the collect interval (here 1 s), `repo
// verify` is clean, the node's own file reads back, and the room the junk
// took under the 48 MiB quota is free again: the whole file then fits.
func TestHostileAbortedStoreIsCollected(t *testing.T) {
	t.Parallel()
	victim := newNode(t)
	victim.requireOK(t, victim.run(t, "config", "Storage.CollectInterval", `"1s"`))
	victim.requireOK(t, victim.run(t, "config", "Storage.Quota", fmt.Sprint(48*mib)))
	own := randBytes(3 * mib)
	ownCID := victim.add(t, writeFile(t, t.TempDir(), "own.bin", own))
	d := startDaemon(t, victim)
	blocksDir := filepath.Join(victim.repo, "blocks")
	before := liveSize(t, blocksDir)

	ctx, cancel := context.WithTimeout(t.Context(), 2*time.Minute)
	defer cancel()
	stranger, err := adversary.New(ctx, adversary.Options{})
	noErr(t, err, "start the stranger")
	t.Cleanup(func() { noErr(t, stranger.Close(), "close the stranger") })
	victimID, err := stranger.Connect(ctx, d.tcpAddr(t))
	noErr(t, err)
	f := newStrangerFile(t, 40*mib)

	const sent = 34 // two batches of 16 blocks (31 MiB) are written, two blocks are in flight
	var peak int64
	stored := func() bool {
		peak = liveSize(t, blocksDir)
		return peak >= before+30*mib
	}
	_, err = protocol.Store(ctx, stranger.Host, victimID, stranger.Owner, f.root, f.sendAborting(sent, stored),
		uint64(len(f.blocks)), f.bytes)
	check(t, err != nil, "the aborted store succeeded")
	check(t, peak >= before+30*mib, "the victim stored %d bytes of the attack, want at least 30 MiB", peak-before)
	aborted := time.Now()

	waitFor(t, 30*time.Second, func() (bool, string) {
		size := liveSize(t, blocksDir)
		return size == before, fmt.Sprintf("blocks directory holds %d bytes, %d before the attack", size, before)
	})
	t.Logf("the aborted store's %d MiB were collected %v after the abort", (peak-before)/mib, time.Since(aborted).Round(time.Millisecond))
	victim.requireOK(t, victim.run(t, "repo", "verify"))
	requireSameBytes(t, own, victim.cat(t, ownCID), "the victim's own file")

	res, err := protocol.Store(ctx, stranger.Host, victimID, stranger.Owner, f.root, f.all(), uint64(len(f.blocks)), f.bytes)
	noErr(t, err, "store the whole file after the collection (the junk still counts against the quota?)")
	check(t, res.Complete, "the whole file is not complete on the victim")
}
