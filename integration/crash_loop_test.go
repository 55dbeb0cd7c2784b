package integration

import (
	"bytes"
	"context"
	"crypto/sha256"
	"encoding/binary"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"math/rand/v2"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/ipfs/go-cid"
	mh "github.com/multiformats/go-multihash"
)

// TestCrashLoop: rounds (30, or $CASD_CRASH_ROUNDS) of one operation
// killed with SIGKILL at a random moment, drawn from a seeded RNG (the
// seed is logged; $CASD_CRASH_SEED replays one run): an add of a 64 MiB
// file (the offline CLI killed, or the daemon serving the add killed), an
// incoming store (the receiving daemon killed while the owner pushes the
// file to it), a gc of a repo with thousands of garbage blocks (the
// offline CLI killed, or the daemon serving the gc killed while it
// sweeps). The moment is uniform in [0, the operation's duration),
// measured on an uninterrupted run first, from when its work begins: the
// command's start for an add, the receiver's first block for a store, the
// first garbage block removed for a gc; one add or store round in three
// aims instead at its end, within a millisecond of its last block (the
// pin's commit is left then). After each kill the repo must verify clean (no corrupt block,
// no pin reaching a missing one), hold no temporary file once reopened,
// and the operation run again must complete: the add with the CID of the
// uninterrupted run, the store with the receiver holding the whole file
// pinned (the owner's challenge proves it), the gc with exactly the pinned
// file's blocks left. The end of the test logs, per kind, how many kills
// landed while the operation ran and how many after it had finished.
func TestCrashLoop(t *testing.T) {
	rounds := 30
	if v := os.Getenv("CASD_CRASH_ROUNDS"); v != "" {
		n, err := strconv.Atoi(v)
		noErr(t, err, "CASD_CRASH_ROUNDS")
		rounds = n
	}
	seed := uint64(time.Now().UnixNano())
	if v := os.Getenv("CASD_CRASH_SEED"); v != "" {
		s, err := strconv.ParseUint(v, 10, 64)
		noErr(t, err, "CASD_CRASH_SEED")
		seed = s
	}
	t.Logf("crash loop: %d rounds, seed %d (CASD_CRASH_SEED=%d replays it)", rounds, seed, seed)
	cl := newCrashLoop(t, rand.New(rand.NewPCG(seed, seed^0x9e3779b97f4a7c15)))

	kinds := make([]crashKind, rounds)
	for i := range kinds {
		kinds[i] = crashKind(i) % numCrashKinds
	}
	cl.rng.Shuffle(len(kinds), func(i, j int) { kinds[i], kinds[j] = kinds[j], kinds[i] })
	var tally [numCrashKinds]crashTally
	for i, k := range kinds {
		tl := &tally[k]
		tl.rounds++
		ok := t.Run(fmt.Sprintf("%02d-%s", i, k), func(t *testing.T) {
			mid := cl.round(t, k)
			if mid {
				tl.mid++
			} else {
				tl.after++
			}
		})
		if !ok {
			tl.failed++
		}
	}
	for k := range crashKind(numCrashKinds) {
		tl := tally[k]
		t.Logf("%-12s rounds %2d: killed mid-operation %2d, after it finished %2d, failed %d; states after the kill: %v",
			k, tl.rounds, tl.mid, tl.after, tl.failed, cl.states[k])
	}
}

// crashKind is what a round of the crash loop kills.
type crashKind int

const (
	crashAddOffline crashKind = iota // `casd add` without a daemon
	crashAddDaemon                   // the daemon serving `casd add`
	crashStore                       // the daemon receiving a store
	crashGCOffline                   // `casd repo gc` without a daemon
	crashGCDaemon                    // the daemon serving `casd repo gc`
	numCrashKinds
)

func (k crashKind) String() string {
	return [...]string{"add-offline", "add-daemon", "store", "gc-offline", "gc-daemon"}[k]
}

// crashTally counts the rounds of one kind.
type crashTally struct{ rounds, mid, after, failed int }

const (
	// crashFileSize is the size of the file that add and store rounds add.
	crashFileSize = 64 * mib
	// gcGarbage is how many unpinned blocks a gc round starts with, and
	// gcGarbageSize their size: enough for a sweep that lasts long enough
	// to be killed in.
	gcGarbage     = 6000
	gcGarbageSize = 2 << 10
	// gcSamples is how many garbage blocks are watched to see a sweep
	// begin: the first of them goes after about 1/65 of the sweep.
	gcSamples = 64
	// gcKeptSize is the size of the pinned file a gc round must keep.
	gcKeptSize = 8 * mib
)

// crashLoop holds what every round shares.
type crashLoop struct {
	rng *rand.Rand
	bin string // casd without -race: the operations run at their real speed
	// keys is a repo whose master key and convergence secret every
	// round's repo copies, so that a file gets the same CID in all.
	keys *node
	file string // the 64 MiB file of the add rounds
	sum  [sha256.Size]byte
	want string // its CID under keys

	// Durations of uninterrupted runs, from the start of their work (see
	// killPlan.begun), the bounds of the kill moments.
	durs [numCrashKinds]time.Duration

	// The store rounds: owner pushes a new file to recv in each.
	owner, recv   *node
	ownerD, recvD *daemon
	recvPins      int // the pins recv holds
	fileBlocks    int // the blocks of a crashFileSize file

	kept       string // a file that gc rounds keep
	keptSum    [sha256.Size]byte
	keptCID    string
	keptBlocks int

	states [numCrashKinds]map[string]int // what each kill left, by kind
}

func newCrashLoop(t *testing.T, rng *rand.Rand) *crashLoop {
	cl := &crashLoop{rng: rng, bin: measuredBin(t)}
	for k := range cl.states {
		cl.states[k] = map[string]int{}
	}
	dir := t.TempDir()
	cl.file, cl.sum = writeHashedFile(t, dir, "big.bin", crashFileSize)
	cl.kept, cl.keptSum = writeHashedFile(t, dir, "kept.bin", gcKeptSize)
	cl.keys = newNode(t)
	cl.calibrate(t)
	return cl
}

// writeHashedFile writes size bytes of /dev/urandom (the kernel's speed,
// not that of a race-instrumented generator) to dir/name and returns its
// path and sha256.
func writeHashedFile(t testing.TB, dir, name string, size int64) (string, [sha256.Size]byte) {
	t.Helper()
	p := filepath.Join(dir, name)
	f, err := os.Create(p)
	noErr(t, err)
	h := sha256.New()
	_, err = io.CopyN(io.MultiWriter(f, h), urandom(t), size)
	noErr(t, errors.Join(err, f.Close()), "write "+p)
	return p, [sha256.Size]byte(h.Sum(nil))
}

// urandom returns /dev/urandom, closed when the test ends.
func urandom(t testing.TB) io.Reader {
	t.Helper()
	f, err := os.Open("/dev/urandom")
	noErr(t, err)
	t.Cleanup(func() { _ = f.Close() })
	return f
}

// calibrate measures an uninterrupted run of every kind, and sets up the
// owner and the receiver of the store rounds.
func (cl *crashLoop) calibrate(t *testing.T) {
	n := cl.addNode(t)
	start := time.Now()
	res := cl.run(t, n, "add", "-q", "--progress=false", cl.file)
	cl.durs[crashAddOffline] = time.Since(start)
	n.requireOK(t, res)
	cl.want = strings.TrimSpace(res.out())
	requireCID(t, cl.want)
	noErr(t, os.RemoveAll(n.repo))

	n = cl.addNode(t)
	d := startDaemon(t, n)
	start = time.Now()
	res = cl.run(t, n, "add", "-q", "--progress=false", cl.file)
	cl.durs[crashAddDaemon] = time.Since(start)
	n.requireOK(t, res)
	check(t, strings.TrimSpace(res.out()) == cl.want, "the daemon added the file as %s, offline as %s", res.out(), cl.want)
	d.Stop(t)
	noErr(t, os.RemoveAll(n.repo))

	cl.owner = cl.addNode(t)
	cl.owner.requireOK(t, cl.owner.run(t, "config", "Replication.Factor", "1"))
	cl.ownerD = startDaemon(t, cl.owner)
	cl.recv = newNode(t)
	cl.recv.bin = cl.bin
	boot, err := json.Marshal([]string{cl.ownerD.tcpAddr(t)})
	noErr(t, err)
	cl.recv.requireOK(t, cl.recv.run(t, "config", "Bootstrap", string(boot)))
	cl.recv.requireOK(t, cl.recv.run(t, "config", "Replication.Factor", "0"))
	cl.recvD = startDaemon(t, cl.recv)
	waitConnected(t, cl.owner, cl.recvD.ID)
	cl.durs[crashStore] = cl.measure(t, cl.owner, cl.receiving(t, 1), "add", "-q", "--progress=false", cl.file)
	cl.recvPins++
	cl.requireReplica(t, cl.want)
	cl.fileBlocks = len(cl.owner.refs(t, cl.want))
	cl.recvD.Stop(t) // each store round starts it, under its own test

	for _, k := range []crashKind{crashGCOffline, crashGCDaemon} {
		n, samples := cl.gcNode(t)
		if k == crashGCDaemon {
			d = startDaemon(t, n)
		}
		cl.durs[k] = cl.measure(t, n, sweeping(samples), "repo", "gc")
		if k == crashGCDaemon {
			d.Stop(t)
		}
		noErr(t, os.RemoveAll(n.repo))
	}
	t.Logf("uninterrupted runs: add offline %v, add through the daemon %v, store to a peer %v from its first block, gc of %d garbage blocks from its first removal: offline %v, through the daemon %v",
		cl.durs[crashAddOffline], cl.durs[crashAddDaemon], cl.durs[crashStore], gcGarbage, cl.durs[crashGCOffline], cl.durs[crashGCDaemon])
}

// measure runs casd args on n and returns how long it took from when
// begun first held to its (successful) end.
func (cl *crashLoop) measure(t *testing.T, n *node, begun func() bool, args ...string) time.Duration {
	t.Helper()
	cmd := cl.command(t.Context(), n, args...)
	var out bytes.Buffer
	cmd.Stdout, cmd.Stderr = &out, &out
	noErr(t, cmd.Start(), "start casd "+quoteArgs(args))
	done := make(chan error, 1)
	go func() { done <- cmd.Wait() }() // waited for below
	err, ended := waitBegun(done, begun)
	if ended {
		t.Fatalf("casd %s ended (%v: %s) before its work began", quoteArgs(args), err, out.String())
	}
	start := time.Now()
	noErr(t, <-done, fmt.Sprintf("casd %s: %s", quoteArgs(args), out.String()))
	return time.Since(start)
}

// round runs one round of kind k and reports whether the kill landed while
// the operation ran.
func (cl *crashLoop) round(t *testing.T, k crashKind) (mid bool) {
	switch k {
	case crashAddOffline:
		return cl.addOffline(t)
	case crashAddDaemon:
		return cl.addDaemon(t)
	case crashStore:
		return cl.store(t)
	default:
		return cl.gc(t, k == crashGCDaemon)
	}
}

// endWindow is how soon after the last block of an add or a store is in
// place a kill aimed at the end lands: the pin's commit is left then.
const endWindow = time.Millisecond

// addPlan draws the kill of an add or a store round: one round in three
// aims at the end, within endWindow of the condition atEnd (the last block
// is in place), the others at a moment uniform over the measured duration,
// which leaves plan.begun nil for the caller to set.
func (cl *crashLoop) addPlan(k crashKind, atEnd func() bool) killPlan {
	if cl.rng.IntN(3) == 0 {
		return killPlan{label: "end: ", begun: atEnd, delay: time.Duration(cl.rng.Int64N(int64(endWindow)))}
	}
	return killPlan{delay: cl.killMoment(k)}
}

// killMoment draws the delay of a kill of kind k.
func (cl *crashLoop) killMoment(k crashKind) time.Duration {
	return time.Duration(cl.rng.Int64N(int64(cl.durs[k]) + 1))
}

// addOffline kills an offline add, then adds again.
func (cl *crashLoop) addOffline(t *testing.T) bool {
	n := cl.addNode(t)
	defer removeRepo(t, n)
	plan := cl.addPlan(crashAddOffline, hasBlock(n, cl.want))
	mid, _ := cl.killCommand(t, n, plan, "add", "-q", "--progress=false", cl.file)
	cl.note(crashAddOffline, plan.label+addState(t, cl, n, 0))
	cl.requireClean(t, n)
	cl.requireAdds(t, n)
	return mid
}

// addDaemon kills the daemon that serves an add, restarts it, and adds
// again through it.
func (cl *crashLoop) addDaemon(t *testing.T) bool {
	n := cl.addNode(t)
	defer removeRepo(t, n)
	d := startDaemon(t, n)
	plan := cl.addPlan(crashAddDaemon, hasBlock(n, cl.want))
	plan.kill = func() { d.Kill(t) }
	mid, _ := cl.killCommand(t, n, plan, "add", "-q", "--progress=false", cl.file)
	cl.note(crashAddDaemon, plan.label+addState(t, cl, n, 0))
	cl.requireClean(t, n)
	d = startDaemon(t, n)
	cl.requireAdds(t, n)
	d.Stop(t)
	return mid
}

// store has the owner push a new file to the receiver, kills the receiver
// during the transfer, restarts it, and has the owner push the file again.
func (cl *crashLoop) store(t *testing.T) bool {
	path, sum := writeHashedFile(t, t.TempDir(), "store.bin", crashFileSize)
	defer os.Remove(path)
	cl.recvD = startDaemon(t, cl.recv)
	waitConnected(t, cl.owner, cl.recvD.ID)
	plan := cl.addPlan(crashStore, cl.receiving(t, cl.fileBlocks))
	if plan.begun == nil {
		plan.begun = cl.receiving(t, 1)
	}
	plan.kill = func() { cl.recvD.Kill(t) }
	mid, out := cl.killCommand(t, cl.owner, plan, "add", "-q", "--progress=false", path)
	root := strings.TrimSpace(out)
	requireCID(t, root)
	st := addState(t, cl, cl.recv, cl.recvPins)
	cl.note(crashStore, plan.label+st)
	mid = mid && st != "pinned" // else the receiver had it all
	cl.recvPins++
	cl.requireClean(t, cl.recv)
	cl.recvD = startDaemon(t, cl.recv)
	waitConnected(t, cl.owner, cl.recvD.ID)
	res := cl.run(t, cl.owner, "add", "-q", "--progress=false", path)
	cl.owner.requireOK(t, res)
	check(t, strings.TrimSpace(res.out()) == root, "the owner added the file as %s, then as %s", root, res.out())
	cl.requireReplica(t, root)
	// The receiver reads it by capability from its own copy.
	got := cl.run(t, cl.recv, "cat", cl.owner.share(t, root))
	cl.recv.requireOK(t, got)
	check(t, sha256.Sum256(got.stdout) == sum, "the receiver reads the file back different")
	return mid
}

// gc kills a gc (offline, or the daemon that serves it) while it sweeps,
// then runs it again: what is left is the pinned file, whole.
func (cl *crashLoop) gc(t *testing.T, viaDaemon bool) bool {
	n, samples := cl.gcNode(t)
	defer removeRepo(t, n)
	k := crashGCOffline
	var d *daemon
	plan := killPlan{begun: sweeping(samples)}
	if viaDaemon {
		k = crashGCDaemon
		d = startDaemon(t, n)
		plan.kill = func() { d.Kill(t) }
	}
	plan.delay = cl.killMoment(k)
	mid, _ := cl.killCommand(t, n, plan, "repo", "gc")
	cl.note(k, cl.gcState(t, n))
	cl.requireClean(t, n)
	if viaDaemon {
		d = startDaemon(t, n)
	}
	n.requireOK(t, cl.run(t, n, "repo", "gc"))
	st := cl.stat(t, n)
	check(t, st.Blocks == cl.keptBlocks && st.Pins == 1, "after gc: %d blocks and %d pins, want the %d blocks of the one pinned file", st.Blocks, st.Pins, cl.keptBlocks)
	got := cl.run(t, n, "cat", cl.keptCID)
	n.requireOK(t, got)
	check(t, sha256.Sum256(got.stdout) == cl.keptSum, "the kept file reads back different after gc")
	if viaDaemon {
		d.Stop(t)
	}
	return mid
}

// killPlan says when and what a round kills.
type killPlan struct {
	// begun, if set, is polled until it holds (the operation's work
	// started: a receiver's first block) before delay starts.
	begun func() bool
	delay time.Duration
	// kill kills what the round kills (a daemon); nil kills the command.
	kill func()
	// label names the kind of moment in the tally ("end: " or "").
	label string
}

// killCommand starts casd args on n and kills as plan says. It reports
// whether the kill landed before the command ended: a command that ended
// before its kill must have succeeded, and one whose daemon was killed
// must have exited (with an error, or with success if it had its answer).
func (cl *crashLoop) killCommand(t *testing.T, n *node, plan killPlan, args ...string) (mid bool, stdout string) {
	t.Helper()
	ctx, cancel := context.WithTimeout(t.Context(), cmdTimeout)
	defer cancel()
	cmd := cl.command(ctx, n, args...)
	var out, stderr bytes.Buffer
	cmd.Stdout, cmd.Stderr = &out, &stderr
	noErr(t, cmd.Start(), "start casd "+quoteArgs(args))
	done := make(chan error, 1)
	go func() { done <- cmd.Wait() }() // waited for below, on every path
	start := time.Now()
	if err, ended := waitMoment(done, plan); ended {
		noErr(t, err, fmt.Sprintf("casd %s ended before its kill, %v in: %s", quoteArgs(args), time.Since(start), stderr.String()))
		t.Logf("casd %s ended %v in, before its kill", quoteArgs(args), time.Since(start))
		if plan.kill != nil {
			plan.kill()
		}
		return false, out.String()
	}
	at := time.Since(start)
	var err error
	if plan.kill == nil {
		kerr := cmd.Process.Kill()
		err = <-done
		if errors.Is(kerr, os.ErrProcessDone) { // it ended as the moment came
			noErr(t, err, "casd "+quoteArgs(args))
			return false, out.String()
		}
		noErr(t, kerr, "kill casd "+quoteArgs(args))
	} else {
		plan.kill()
		err = <-done
		var ee *exec.ExitError
		check(t, err == nil || errors.As(err, &ee) && ee.Exited(), "casd %s: %v after its daemon was killed", quoteArgs(args), err)
	}
	t.Logf("killed %v in (%v after its work began): casd %s: %v, %v later", at, plan.delay, quoteArgs(args), err, time.Since(start)-at)
	return err != nil, out.String()
}

// waitMoment waits until plan's moment, or until the command ends
// (ended, with its error).
func waitMoment(done <-chan error, plan killPlan) (err error, ended bool) {
	if plan.begun != nil {
		if err, ended := waitBegun(done, plan.begun); ended {
			return err, true
		}
	}
	timer := time.NewTimer(plan.delay)
	defer timer.Stop()
	select {
	case err := <-done:
		return err, true
	case <-timer.C:
		return nil, false
	}
}

// note records the state a kill of kind k left.
func (cl *crashLoop) note(k crashKind, state string) { cl.states[k][state]++ }

// addState describes a repo that held pins pins before an add or a store
// was killed: "empty" (no block file), "partial" (blocks, no new pin),
// "pinned" (the new root is pinned).
func addState(t *testing.T, cl *crashLoop, n *node, pins int) string {
	t.Helper()
	committed, temps := blockFiles(t, filepath.Join(n.repo, "blocks"))
	switch st := cl.stat(t, n); {
	case st.Pins > pins:
		return "pinned"
	case committed+temps > 0:
		return "partial"
	default:
		return "empty"
	}
}

// gcState describes a repo after a gc was killed: "unswept" (every
// garbage block left), "partly swept", "swept".
func (cl *crashLoop) gcState(t *testing.T, n *node) string {
	t.Helper()
	committed, _ := blockFiles(t, filepath.Join(n.repo, "blocks"))
	switch left := committed - cl.keptBlocks; {
	case left >= gcGarbage:
		return "unswept"
	case left > 0:
		return "partly swept"
	default:
		return "swept"
	}
}

// requireClean checks a repo after a kill, offline: verify finds nothing
// wrong, and no temporary block file is left once the repo was opened.
func (cl *crashLoop) requireClean(t *testing.T, n *node) {
	t.Helper()
	res := cl.run(t, n, "repo", "verify")
	n.requireOK(t, res)
	check(t, strings.HasPrefix(res.out(), "verified "), "verify after a kill: %s", res)
	_, temps := blockFiles(t, filepath.Join(n.repo, "blocks"))
	check(t, temps == 0, "%d temporary block files left after the repo was opened again", temps)
}

// requireAdds adds the file again on n and checks its CID and bytes.
func (cl *crashLoop) requireAdds(t *testing.T, n *node) {
	t.Helper()
	res := cl.run(t, n, "add", "-q", "--progress=false", cl.file)
	n.requireOK(t, res)
	check(t, strings.TrimSpace(res.out()) == cl.want, "re-add after a kill gave %q, an uninterrupted add %s", res.out(), cl.want)
	got := cl.run(t, n, "cat", cl.want)
	n.requireOK(t, got)
	check(t, sha256.Sum256(got.stdout) == cl.sum, "the re-added file reads back different")
	n.requireOK(t, cl.run(t, n, "repo", "verify"))
}

// requireReplica checks that the receiver holds root whole and pinned,
// and that the owner counts it as a replica (it passed a challenge).
func (cl *crashLoop) requireReplica(t *testing.T, root string) {
	t.Helper()
	st := status(t, cl.owner, root)
	check(t, slices.Contains(st.Replicas, cl.recv.id), "the owner's status lists replicas %q, not the receiver %s", st.Replicas, cl.recv.id)
	requireHolds(t, cl.recv.repo, cl.owner.refs(t, root))
	rst := cl.stat(t, cl.recv)
	check(t, rst.Pins == cl.recvPins, "the receiver holds %d pins, want %d", rst.Pins, cl.recvPins)
	cl.recv.requireOK(t, cl.run(t, cl.recv, "repo", "verify"))
}

// beginPoll is the period of waitBegun's polls: short, since a kill aimed
// at the end of an add must land within a millisecond of its last block.
const beginPoll = 100 * time.Microsecond

// waitBegun polls begun until it holds, or until the command ends (ended,
// with its error).
func waitBegun(done <-chan error, begun func() bool) (err error, ended bool) {
	tick := time.NewTicker(beginPoll)
	defer tick.Stop()
	for !begun() {
		select {
		case err := <-done:
			return err, true
		case <-tick.C:
		}
	}
	return nil, false
}

// receiving returns a condition that holds once the receiver has count
// block files more than now: with 1, a transfer to it began; with every
// block of a file, the transfer is at its end (the completeness check and
// the pin are left).
func (cl *crashLoop) receiving(t *testing.T, count int) func() bool {
	dir := filepath.Join(cl.recv.repo, "blocks")
	before, _ := blockFiles(t, dir)
	return func() bool {
		committed, _ := blockFiles(t, dir)
		if count == 1 {
			_, temps := blockFiles(t, dir)
			committed += temps
		}
		return committed >= before+count
	}
}

// hasBlock returns a condition that holds once n's store has block c.
func hasBlock(n *node, c string) func() bool {
	p := filepath.Join(n.repo, "blocks", c[len(c)-3:len(c)-1], c)
	return func() bool {
		_, err := os.Lstat(p)
		return err == nil
	}
}

// sweeping returns a condition that holds once one of the block files
// samples is gone: a sweep began.
func sweeping(samples []string) func() bool {
	return func() bool {
		for _, p := range samples {
			if _, err := os.Lstat(p); errors.Is(err, fs.ErrNotExist) {
				return true
			}
		}
		return false
	}
}

// addNode returns a fresh repo with the keys of cl.keys, which keeps
// its files local.
func (cl *crashLoop) addNode(t *testing.T) *node {
	t.Helper()
	n := newNode(t)
	n.bin = cl.bin
	for _, k := range []string{"master", "convergence"} {
		data, err := os.ReadFile(filepath.Join(cl.keys.repo, "keys", k))
		noErr(t, err)
		noErr(t, os.WriteFile(filepath.Join(n.repo, "keys", k), data, 0o600))
	}
	n.requireOK(t, n.run(t, "config", "Replication.Factor", "0"))
	return n
}

// gcNode returns a fresh repo that holds the pinned file cl.kept and
// gcGarbage unpinned blocks, and the paths of gcSamples of those.
func (cl *crashLoop) gcNode(t *testing.T) (*node, []string) {
	t.Helper()
	n := cl.addNode(t)
	res := cl.run(t, n, "add", "-q", "--progress=false", cl.kept)
	n.requireOK(t, res)
	c := strings.TrimSpace(res.out())
	if cl.keptCID == "" {
		cl.keptCID = c
		cl.keptBlocks = len(n.refs(t, c))
	}
	check(t, c == cl.keptCID, "the kept file added as %s here, %s before", c, cl.keptCID)
	paths := writeGarbage(t, n.repo, gcGarbage, gcGarbageSize)
	return n, paths[:gcSamples]
}

// writeGarbage writes count blocks of size random bytes into repo's store
// as the block store names them: blocks that no pin reaches, as an add
// killed before its pin leaves them. They are drawn so that they fall in
// the 64 shards whose name begins with "a" or "b": every open of a store
// fsyncs each shard directory (to make durable the renames of a process
// that crashed), which for 1024 shards just written costs every command
// of a round a good part of a second on a loaded machine.
func writeGarbage(t testing.TB, repo string, count, size int) (paths []string) {
	t.Helper()
	data := make([]byte, size)
	_, err := io.ReadFull(urandom(t), data)
	noErr(t, err, "read /dev/urandom")
	for i := uint64(0); len(paths) < count; i++ {
		binary.BigEndian.PutUint64(data, i) // each block its own
		h, err := mh.Sum(data, mh.SHA2_256, -1)
		noErr(t, err)
		name := cid.NewCidV1(cid.Raw, h).String()
		shard := name[len(name)-3 : len(name)-1]
		if shard[0] != 'a' && shard[0] != 'b' {
			continue
		}
		dir := filepath.Join(repo, "blocks", shard)
		noErr(t, os.MkdirAll(dir, 0o700))
		p := filepath.Join(dir, name)
		noErr(t, os.WriteFile(p, data, 0o600))
		paths = append(paths, p)
	}
	return paths
}

// stat is `casd repo stat --json` on n, run with cl's binary.
func (cl *crashLoop) stat(t testing.TB, n *node) repoStat {
	t.Helper()
	res := cl.run(t, n, "repo", "stat", "--json")
	n.requireOK(t, res)
	var st repoStat
	noErr(t, json.Unmarshal(res.stdout, &st), fmt.Sprintf("decode %s", res))
	return st
}

// removeRepo removes n's repo once a round is done with it: the rounds
// write gigabytes in all.
func removeRepo(t testing.TB, n *node) {
	t.Helper()
	if t.Failed() {
		return // kept for the transcript's reader
	}
	noErr(t, os.RemoveAll(n.repo))
}

// command prepares casd args on n with cl's binary.
func (cl *crashLoop) command(ctx context.Context, n *node, args ...string) *exec.Cmd {
	cmd := n.command(ctx, runOpts{}, args...)
	cmd.Path = cl.bin
	cmd.Args[0] = cl.bin
	return cmd
}

// run runs casd args on n with cl's binary, like node.run.
func (cl *crashLoop) run(t testing.TB, n *node, args ...string) result {
	t.Helper()
	ctx, cancel := context.WithTimeout(t.Context(), cmdTimeout)
	defer cancel()
	cmd := cl.command(ctx, n, args...)
	var stdout, stderr bytes.Buffer
	cmd.Stdout, cmd.Stderr = &stdout, &stderr
	err := cmd.Run()
	res := result{args: args, stdout: stdout.Bytes(), stderr: stderr.String()}
	var ee *exec.ExitError
	switch {
	case err == nil:
	case errors.As(err, &ee) && ee.Exited():
		res.code = ee.ExitCode()
	default:
		n.log(res)
		t.Fatalf("casd %s: %v\nstderr: %s", quoteArgs(args), err, res.stderr)
	}
	n.log(res)
	return res
}
