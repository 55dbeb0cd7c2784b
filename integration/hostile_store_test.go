package integration

import (
	"bufio"
	"bytes"
	"context"
	"crypto/sha256"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"maps"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/ipfs/go-cid"
	"github.com/libp2p/go-libp2p/core/peer"

	"github.com/casd/casd/blockstore"
	"github.com/casd/casd/internal/adversary"
	"github.com/casd/casd/protocol"
	"github.com/casd/casd/protocol/pb"
)

// The hostile-store tests (issue 7) mount, from a real libp2p host in the
// test process (package adversary), the attacks a stranger can make on a
// casd daemon's /cas/store/1.0 and /cas/get/1.0, and check what the
// daemon's user would: every byte of their files still there, commands
// finishing in bounded time, disk and memory bounded.

// attackTimeout bounds one attack's exchange with the victim.
const attackTimeout = 2 * time.Minute

// newHostile starts a hostile peer connected to the daemon d and returns
// it with d's peer ID. It is closed when the test ends.
func newHostile(t testing.TB, d *daemon) (*adversary.Peer, peer.ID) {
	t.Helper()
	ctx, cancel := context.WithTimeout(t.Context(), attackTimeout)
	defer cancel()
	p, err := adversary.New(ctx, adversary.Options{})
	noErr(t, err, "start the adversary")
	t.Cleanup(func() { noErr(t, p.Close(), "close the adversary") })
	victim, err := p.Connect(ctx, d.tcpAddr(t))
	noErr(t, err, "the adversary dials the victim")
	return p, victim
}

// newVictim inits a node that keeps its files to itself (Replication.Factor
// 0), so that its adds succeed without peers, and applies the config
// key/value pairs kv.
func newVictim(t testing.TB, kv ...string) *node {
	t.Helper()
	n := newNode(t)
	kv = append([]string{"Replication.Factor", "0"}, kv...)
	for i := 0; i+1 < len(kv); i += 2 {
		n.requireOK(t, n.run(t, "config", kv[i], kv[i+1]))
	}
	return n
}

// attackCtx is the context of one attack.
func attackCtx(t testing.TB) context.Context {
	ctx, cancel := context.WithTimeout(t.Context(), attackTimeout)
	t.Cleanup(cancel)
	return ctx
}

// timed runs casd with args, bounded by timeout, and returns how long it
// took.
func (n *node) timed(t testing.TB, timeout time.Duration, args ...string) (result, time.Duration) {
	t.Helper()
	start := time.Now()
	res := n.exec(t, runOpts{timeout: timeout}, args...)
	return res, time.Since(start)
}

// fileSum returns the sha256 of the file at path.
func fileSum(t testing.TB, path string) [sha256.Size]byte {
	t.Helper()
	f, err := os.Open(path)
	noErr(t, err)
	defer f.Close()
	h := sha256.New()
	_, err = io.Copy(h, f)
	noErr(t, err)
	return [sha256.Size]byte(h.Sum(nil))
}

// requireIntact checks what the owner of root checks: `casd repo verify`
// is clean and `casd cat root` gives back the file at path, byte for byte.
// cat's output goes to a file, not to memory: the files may be large.
func requireIntact(t testing.TB, n *node, root, path string) {
	t.Helper()
	n.requireOK(t, n.run(t, "repo", "verify"))
	out := filepath.Join(t.TempDir(), "cat.out")
	f, err := os.Create(out)
	noErr(t, err)
	ctx, cancel := context.WithTimeout(t.Context(), cmdTimeout)
	defer cancel()
	cmd := n.command(ctx, runOpts{}, "cat", root)
	var stderr bytes.Buffer
	cmd.Stdout, cmd.Stderr = f, &stderr
	err = cmd.Run()
	noErr(t, errors.Join(err, f.Close()), "casd cat "+root+": "+stderr.String())
	want, got := fileSum(t, path), fileSum(t, out)
	fi, err := os.Stat(out)
	noErr(t, err)
	check(t, got == want, "casd cat %s gave %d bytes that differ from %s", root, fi.Size(), path)
}

// TestHostileForgedLeafRoot (hostile peers, point 1): a stranger that
// learns an inner manifest node of the owner's file (links are in the
// clear, served over /cas/get) stores a root of height 0 calling that node
// a chunk. The victim pins it (it holds the "chunk"), and every `repo gc`
// after that must keep the node's whole subtree: verify stays clean and
// cat returns every byte. The file has 1,025 chunks of 256 KiB, so that
// its root has height 1 (fanout 1,024).
func TestHostileForgedLeafRoot(t *testing.T) {
	t.Parallel()
	n := newVictim(t, "Chunker.Size", strconv.Itoa(256<<10))
	path := writeRandomFile(t, t.TempDir(), "archive.bin", 1024*(256<<10)+1)
	d := startDaemon(t, n)
	root := n.add(t, path)

	p, victim := newHostile(t, d)
	ctx := attackCtx(t)
	m := fetchManifest(t, ctx, p, victim, root)
	check(t, m.Height == 1 && len(m.Links) == 2, "root of height %d with %d links, want 1 and 2", m.Height, len(m.Links))
	inner := m.Links[0] // the node of the first 1,024 chunks
	forged, ack, err := p.StoreForgedRoot(ctx, victim, []cid.Cid{inner})
	noErr(t, err, "store the forged root")
	check(t, ack.Complete, "the victim did not pin the forged root %s (ack %+v): the attack did not happen", forged, ack)
	t.Logf("forged root %s (height 0, one \"chunk\": inner node %s) pinned by the victim", forged, inner)

	// GC marks concurrently, so a walk that lets the first claim about a
	// block win loses about one run in two: five runs. Nothing the owner
	// holds is garbage.
	for i := range 5 {
		res, took := n.timed(t, time.Minute, "repo", "gc")
		n.requireOK(t, res)
		t.Logf("repo gc %d after the forged root: %v: %s", i+1, took.Round(time.Millisecond), strings.TrimSpace(res.out()))
		check(t, strings.HasPrefix(res.out(), "removed 0 blocks"), "gc removed blocks of the owner's file: %s", res)
	}
	requireIntact(t, n, root, path)
}

// fetchManifest fetches the block c from victim over /cas/get and reads its
// clear part.
func fetchManifest(t testing.TB, ctx context.Context, p *adversary.Peer, victim peer.ID, c string) adversary.Manifest {
	t.Helper()
	var data []byte
	missing, err := protocol.Fetch(ctx, p.Host, victim, cid.Undef, []cid.Cid{requireCID(t, c)},
		func(b blockstore.Block) error { data = bytes.Clone(b.Data); return nil })
	noErr(t, err, "fetch "+c)
	check(t, len(missing) == 0, "the victim does not serve %s", c)
	m, err := adversary.ParseManifest(data)
	noErr(t, err, "parse "+c)
	return m
}

// TestHostileDAGBomb (hostile peers, point 2): a root of height 8 whose
// every level links 1,024 times to the one node below (10 distinct
// blocks, 1,024^9 paths). The victim answers the store (ack or refusal)
// within 10 s, and `repo gc` and `status` of the bomb finish within 10 s
// each; the owner's own file is intact.
func TestHostileDAGBomb(t *testing.T) {
	t.Parallel()
	n := newVictim(t)
	path := writeRandomFile(t, t.TempDir(), "own.bin", 3*mib)
	d := startDaemon(t, n)
	root := n.add(t, path)
	p, victim := newHostile(t, d)

	ctx, cancel := context.WithTimeout(t.Context(), 20*time.Second)
	defer cancel()
	start := time.Now()
	bomb, ack, err := p.StoreBomb(ctx, victim, 8, 1024)
	took := time.Since(start)
	check(t, err == nil || refused(err), "store the bomb: %v", err)
	t.Logf("bomb %s: answered in %v (ack %+v, refusal %v)", bomb, took.Round(time.Millisecond), ack, err)
	check(t, took < 10*time.Second, "the victim took %v to answer a DAG bomb, want < 10s", took)

	for _, args := range [][]string{{"repo", "gc"}, {"status", bomb.String()}} {
		res, took := n.timed(t, time.Minute, args...)
		n.requireOK(t, res)
		t.Logf("%s under the bomb: %v", strings.Join(args, " "), took.Round(time.Millisecond))
		check(t, took < 10*time.Second, "%s took %v with a DAG bomb stored, want < 10s", strings.Join(args, " "), took)
	}
	requireIntact(t, n, root, path)
}

// TestHostileBadCIDs (hostile peers, point 13): offers and blocks named by
// an identity, a sha1 or a truncated sha2-256 CID, and a get of one, are
// refused (a refusal or a reset, never an accepted store), and nothing
// reaches the victim's blocks folder.
func TestHostileBadCIDs(t *testing.T) {
	t.Parallel()
	n := newVictim(t)
	d := startDaemon(t, n)
	before := blockNames(t, n.repo)
	data := adversary.Chunk(100).Data
	for _, bad := range []adversary.BadCID{adversary.IdentityCID, adversary.SHA1CID, adversary.TruncatedCID} {
		c := bad.Of(data)
		t.Run(bad.String(), func(t *testing.T) {
			// Each lie is a strike: three of them ban a peer, so each
			// case gets a fresh one.
			p, victim := newHostile(t, d)
			ctx := attackCtx(t)
			if ss, err := p.Offer(ctx, victim, c, 1, uint64(len(data))); err == nil {
				ss.Reset()
				t.Fatalf("the victim accepted an offer of root %s (%v)", c, bad)
			} else {
				check(t, refused(err), "offer of root %s: %v, want a refusal or a reset", c, err)
				t.Logf("offer of root %s: %v", c, err)
			}

			good := adversary.Chunk(100)
			ss, err := p.Offer(ctx, victim, good.Cid, 1, uint64(len(data)))
			noErr(t, err, "offer a good root")
			noErr(t, ss.Send(ctx, pb.Block{Cid: c, Data: data}), "send the block named "+c.String())
			noErr(t, ss.AwaitReset(ctx), fmt.Sprintf("the victim must reset a stream carrying a block named by a %v CID", bad))

			get := adversary.Frame(&pb.GetRequest{Want: []cid.Cid{c}})
			noErr(t, p.SendRaw(ctx, victim, protocol.GetID, get), fmt.Sprintf("the victim must reset a get of a %v CID", bad))
		})
	}
	after := blockNames(t, n.repo)
	check(t, maps.Equal(after, before), "the blocks folder went from %d to %d files", len(before), len(after))
}

// timedResult is a command's result and how long it ran; timedOut is set
// if its timeout killed it.
type timedResult struct {
	res      result
	took     time.Duration
	timedOut bool
	err      error // a failure to run it, other than its exit code
}

// background runs casd with args on n in the background, killed after
// timeout, and delivers its result on the returned channel. The test's
// cleanup waits for it.
func (n *node) background(t testing.TB, timeout time.Duration, args ...string) <-chan timedResult {
	t.Helper()
	out := make(chan timedResult, 1)
	done := make(chan struct{})
	t.Cleanup(func() { <-done })
	go func() { // owned by the test: its cleanup waits for done
		defer close(done)
		ctx, cancel := context.WithTimeout(context.Background(), timeout)
		defer cancel()
		cmd := n.command(ctx, runOpts{}, args...)
		var stdout, stderr bytes.Buffer
		cmd.Stdout, cmd.Stderr = &stdout, &stderr
		start := time.Now()
		err := cmd.Run()
		tr := timedResult{took: time.Since(start), timedOut: ctx.Err() != nil}
		tr.res = result{args: args, stdout: stdout.Bytes(), stderr: stderr.String()}
		var exitErr *exec.ExitError
		switch {
		case err == nil:
		case errors.As(err, &exitErr) && exitErr.Exited():
			tr.res.code = exitErr.ExitCode()
		default:
			tr.err = err
		}
		n.log(tr.res)
		out <- tr
	}()
	return out
}

// TestHostileTrickle (hostile peers, point 3): a stranger's store offer of
// 4 MiB is fed one 64-byte block every 20 s, under the 30 s idle timeout.
// While it runs, an add of a new file takes < 5 s, `repo gc` finishes
// within 60 s, and the victim resets the trickling stream within 60 s of
// accepting it (contract: within 30 s of its falling below the minimum
// rate, with the default settings).
func TestHostileTrickle(t *testing.T) {
	t.Parallel()
	n := newVictim(t)
	d := startDaemon(t, n)
	p, victim := newHostile(t, d)
	tr, err := p.TrickleStore(attackCtx(t), victim, 4<<20, 20*time.Second)
	noErr(t, err, "start the trickle")
	t.Cleanup(tr.Stop)

	path := writeRandomFile(t, t.TempDir(), "new.bin", 3*mib)
	res, took := n.timed(t, time.Minute, "add", path)
	n.requireOK(t, res)
	t.Logf("add of 3 MiB under the trickle: %v", took.Round(time.Millisecond))
	check(t, took < 5*time.Second, "add took %v under a trickling store, want < 5s", took)
	root := strings.Fields(res.out())[1]

	gc := n.background(t, 90*time.Second, "repo", "gc")
	gcStart := time.Now()
	t.Cleanup(tr.Stop) // before the wait for gc, which the trickle may hold up

	// Adds while that gc waits for the trickle's guard must not queue
	// behind it: add files, each in < 5 s, until the gc has been pending
	// for 3 s (ample for the command to connect and start waiting).
	var added [][2]string // root, path
	for i := 0; len(added) < 2 || time.Since(gcStart) < 3*time.Second; i++ {
		p := writeRandomFile(t, t.TempDir(), fmt.Sprintf("newer-%d.bin", i), 3*mib)
		res, took := n.timed(t, time.Minute, "add", p)
		n.requireOK(t, res)
		t.Logf("add %d of 3 MiB, %v after repo gc was started: %v", i+1,
			time.Since(gcStart).Round(time.Millisecond), took.Round(time.Millisecond))
		check(t, took < 5*time.Second, "add took %v while gc waited on a trickling store, want < 5s", took)
		added = append(added, [2]string{strings.Fields(res.out())[1], p})
	}

	limit := time.NewTimer(time.Until(tr.Accepted.Add(60 * time.Second)))
	defer limit.Stop()
	select {
	case <-tr.Ended():
		ended, sent, err := tr.Result()
		t.Logf("the trickle ended %v after it was accepted, after %d blocks: %v",
			ended.Sub(tr.Accepted).Round(time.Millisecond), sent, err)
		check(t, err == nil, "the trickle ended without a reset by the victim: %v", err)
	case <-limit.C:
		t.Errorf("the victim did not end the trickling stream within 60 s of accepting it")
	}
	var g timedResult
	select {
	case g = <-gc:
	case <-time.After(time.Until(gcStart.Add(60 * time.Second))):
		t.Fatalf("repo gc did not finish within 60 s under a trickling store")
	}
	noErr(t, g.err, "run repo gc")
	n.requireOK(t, g.res)
	t.Logf("repo gc under the trickle: %v", g.took.Round(time.Millisecond))
	requireIntact(t, n, root, path)
	for _, a := range added {
		requireIntact(t, n, a[0], a[1])
	}
}

// refused reports whether err is the victim's refusal or reset.
func refused(err error) bool {
	var rej *adversary.RejectedError
	return errors.As(err, &rej) || errors.Is(err, adversary.ErrReset)
}

// rssOf returns the resident set of process pid, in bytes.
func rssOf(t testing.TB, pid int) int64 {
	t.Helper()
	f, err := os.Open(filepath.Join("/proc", strconv.Itoa(pid), "status"))
	noErr(t, err)
	defer f.Close()
	sc := bufio.NewScanner(f)
	for sc.Scan() {
		if v, ok := strings.CutPrefix(sc.Text(), "VmRSS:"); ok {
			kb, err := strconv.ParseInt(strings.TrimSuffix(strings.TrimSpace(v), " kB"), 10, 64)
			noErr(t, err, "parse VmRSS "+v)
			return kb << 10
		}
	}
	noErr(t, sc.Err())
	t.Fatalf("no VmRSS in /proc/%d/status", pid)
	return 0
}

// quota is the victim's Storage.Quota in the quota tests.
const quota = 64 * mib

// blocksBytes sums the sizes of the files under repo/blocks (temporary
// files included: they are on the disk too), tolerating files that come
// and go while it walks.
func blocksBytes(repo string) (int64, error) {
	var total int64
	err := filepath.WalkDir(filepath.Join(repo, "blocks"), func(p string, d fs.DirEntry, err error) error {
		if errors.Is(err, fs.ErrNotExist) {
			return nil
		}
		if err != nil {
			return err
		}
		if !d.Type().IsRegular() {
			return nil
		}
		fi, err := d.Info()
		if errors.Is(err, fs.ErrNotExist) {
			return nil
		}
		if err != nil {
			return err
		}
		total += fi.Size()
		return nil
	})
	return total, err
}

// sampleDisk polls blocksBytes of repo every pollInterval until stop is
// called, which returns the largest figure seen.
func sampleDisk(t testing.TB, repo string) (stop func() int64) {
	t.Helper()
	var (
		peak int64
		err  error
		wg   sync.WaitGroup
	)
	quit := make(chan struct{})
	wg.Go(func() {
		tick := time.NewTicker(pollInterval)
		defer tick.Stop()
		for {
			var n int64
			if n, err = blocksBytes(repo); err != nil {
				return
			}
			peak = max(peak, n)
			select {
			case <-quit:
				return
			case <-tick.C:
			}
		}
	})
	return func() int64 {
		close(quit)
		wg.Wait()
		noErr(t, err, "measure "+repo+"/blocks")
		return peak
	}
}

// TestHostileQuotaRace (hostile peers, point 4): eight strangers offer 48
// MiB each, at once, to a victim with a 64 MiB quota, and send real
// blocks. At most one offer is accepted, and the blocks on the victim's
// disk never exceed the quota.
func TestHostileQuotaRace(t *testing.T) {
	t.Parallel()
	n := newVictim(t, "Storage.Quota", strconv.Itoa(quota))
	d := startDaemon(t, n)
	const offers, size = 8, 48 * mib
	peers := make([]*adversary.Peer, offers)
	junk := make([]*adversary.Junk, offers)
	var victim peer.ID
	for i := range peers {
		peers[i], victim = newHostile(t, d)
		junk[i] = adversary.NewJunk(size, mib)
	}
	stop := sampleDisk(t, n.repo)
	errs := make([]error, offers)
	var wg sync.WaitGroup
	ctx := attackCtx(t)
	for i := range peers {
		wg.Go(func() { _, errs[i] = peers[i].StoreJunk(ctx, victim, junk[i]) })
	}
	wg.Wait()
	peak := stop()
	accepted := 0
	for i, err := range errs {
		switch {
		case err == nil:
			accepted++
		case !refused(err):
			t.Errorf("offer %d: %v, want an ack, a refusal or a reset", i, err)
		}
	}
	t.Logf("%d of %d offers of %d MiB accepted; peak blocks on disk %d bytes (%.1f MiB), quota %d MiB",
		accepted, offers, size>>20, peak, float64(peak)/mib, quota>>20)
	check(t, accepted <= 1, "%d offers of %d MiB accepted under a %d MiB quota", accepted, size>>20, quota>>20)
	check(t, peak <= quota, "the victim's blocks reached %d bytes, over its quota of %d", peak, quota)
}

// TestHostileQuotaTinyBlocks (hostile peers, point 4): blocks are charged
// their bytes plus 4096 (a file on disk costs that much), so an offer of
// 100,000 empty blocks, or of 100,000 8-byte ones, is refused by a victim
// with a 64 MiB quota.
func TestHostileQuotaTinyBlocks(t *testing.T) {
	t.Parallel()
	n := newVictim(t, "Storage.Quota", strconv.Itoa(quota))
	d := startDaemon(t, n)
	p, victim := newHostile(t, d)
	for _, bytes := range []uint64{0, 8 * 100_000} {
		ss, err := p.Offer(attackCtx(t), victim, adversary.Chunk(8).Cid, 100_000, bytes)
		if err == nil {
			ss.Reset()
			t.Errorf("an offer of 100000 blocks of %d bytes in all was accepted under a %d MiB quota", bytes, quota>>20)
			continue
		}
		var rej *adversary.RejectedError
		check(t, errors.As(err, &rej), "offer of 100000 blocks, %d bytes: %v, want a refusal", bytes, err)
		t.Logf("offer of 100000 blocks, %d bytes: %v", bytes, err)
	}
}

// TestHostileUnreachableBlocks (hostile peers, point 4): a store whose
// blocks are not reachable from its offered root is reset, and what it
// left on the victim's disk is collected without anyone running gc (an
// aborted store triggers a collection): within 90 s no block of it is
// left, and the owner's file is intact.
func TestHostileUnreachableBlocks(t *testing.T) {
	t.Parallel()
	n := newVictim(t)
	path := writeRandomFile(t, t.TempDir(), "own.bin", 2*mib)
	root := n.add(t, path)
	d := startDaemon(t, n)
	p, victim := newHostile(t, d)
	before := blockNames(t, n.repo)

	// 16 blocks of the root fill the victim's first write batch, so they
	// reach its disk; the root's last two chunks never come; then junk.
	chunks := make([]cid.Cid, 18)
	blocks := make([]pb.Block, 0, 33)
	for i := range chunks {
		b := adversary.Chunk(1024)
		chunks[i] = b.Cid
		if i < 15 {
			blocks = append(blocks, b)
		}
	}
	r := adversary.Root(0, chunks)
	blocks = append([]pb.Block{r}, blocks...)
	for range 16 {
		blocks = append(blocks, adversary.Chunk(1024))
	}
	ctx := attackCtx(t)
	ss, err := p.Offer(ctx, victim, r.Cid, 40, 1<<20)
	noErr(t, err, "offer")
	sent := 0
	for _, b := range blocks {
		if ss.Send(ctx, b) != nil {
			break
		}
		sent++
	}
	wctx, cancel := context.WithTimeout(ctx, 10*time.Second)
	defer cancel()
	if err := ss.AwaitReset(wctx); err != nil {
		t.Errorf("the victim did not reset a store sending blocks its root does not reach (%d sent): %v", sent, err)
	}
	ss.Reset() // abort the store, if the victim did not
	start := time.Now()
	waitFor(t, 90*time.Second, func() (bool, string) {
		var left []string
		for c := range blockNames(t, n.repo) {
			if !before[c] {
				left = append(left, c)
			}
		}
		return len(left) == 0, fmt.Sprintf("%d blocks of the aborted store are still on disk %v after it ended, e.g. %v",
			len(left), time.Since(start).Round(time.Second), left[:min(2, len(left))])
	})
	t.Logf("the aborted store's blocks were collected %v after it ended", time.Since(start).Round(time.Millisecond))
	requireIntact(t, n, root, path)
}
