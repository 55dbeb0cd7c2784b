package integration

import (
	"bytes"
	"context"
	"crypto/sha256"
	"encoding/json"
	"errors"
	"fmt"
	"io/fs"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strings"
	"testing"
	"time"
)

// The network tests run real daemons on loopback. They do not call
// t.Parallel: each starts up to six daemons, and CI has two cores.

// replicationGoal is the default Replication.Factor.
const replicationGoal = 3

// statusJSON is the output of `casd status --json`.
type statusJSON struct {
	CID       string       `json:"cid"`
	Goal      int          `json:"goal"`
	Replicas  []string     `json:"replicas"`
	Verified  bool         `json:"verified"`
	LastCheck time.Time    `json:"lastCheck"`
	Holders   []holderJSON `json:"holders"`
}

// holderJSON is one element of the holders of `casd status --json`.
type holderJSON struct {
	ID            string    `json:"id"`
	Verified      bool      `json:"verified"`
	LastAudit     time.Time `json:"lastAudit"`
	LastTreeAudit time.Time `json:"lastTreeAudit"`
	LeaseExpires  time.Time `json:"leaseExpires"`
}

// daemonIDJSON is the output of `casd id --json` of a running daemon.
type daemonIDJSON struct {
	ID           string   `json:"id"`
	Addrs        []string `json:"addrs"`
	AgentVersion string   `json:"agentVersion"`
	Protocols    []string `json:"protocols"`
}

// status runs `casd status --json c` on n.
func status(t testing.TB, n *node, c string) statusJSON {
	t.Helper()
	res := n.run(t, "status", "--json", c)
	n.requireOK(t, res)
	var st statusJSON
	noErr(t, json.Unmarshal(res.stdout, &st), fmt.Sprintf("decode %s", res))
	check(t, st.CID == c, "status names CID %q, want %s", st.CID, c)
	return st
}

// replicasOf checks that the owner's status of c names exactly goal
// distinct replicas of the cluster, none of them the owner, and returns
// their indexes in the cluster.
func (c *cluster) replicasOf(t testing.TB, owner int, root string, goal int) []int {
	t.Helper()
	st := status(t, c.nodes[owner], root)
	check(t, st.CID == root, "status names CID %q, want %s", st.CID, root)
	check(t, st.Goal == goal, "status goal %d, want %d", st.Goal, goal)
	check(t, len(st.Replicas) == goal, "status lists %d replicas %q, want exactly %d", len(st.Replicas), st.Replicas, goal)
	var idx []int
	for _, id := range st.Replicas {
		check(t, id != c.daemons[owner].ID, "status lists the owner %s among the replicas", id)
		i := c.byID(id)
		check(t, i >= 0, "status lists replica %s, which is no node of the cluster", id)
		check(t, !slices.Contains(idx, i), "status lists replica %s twice", id)
		idx = append(idx, i)
	}
	return idx
}

// others returns the indexes of the cluster not in exclude.
func (c *cluster) others(exclude ...int) []int {
	var out []int
	for i := range c.nodes {
		if !slices.Contains(exclude, i) {
			out = append(out, i)
		}
	}
	return out
}

// requireHolds fails unless every CID of refs is a file named after it
// under repo/blocks.
func requireHolds(t testing.TB, repo string, refs []string) {
	t.Helper()
	names := blockNames(t, repo)
	var missing []string
	for _, c := range refs {
		if !names[c] {
			missing = append(missing, c)
		}
	}
	check(t, len(missing) == 0, "%s/blocks lacks %d of the %d blocks of the file, e.g. %s",
		repo, len(missing), len(refs), strings.Join(missing[:min(3, len(missing))], " "))
}

// plantMarker writes marker into data at the start, every 256 KiB (so that
// every chunk holds it several times) and at the end.
func plantMarker(data []byte, marker string) {
	for off := 0; off+len(marker) <= len(data); off += 256 << 10 {
		copy(data[off:], marker)
	}
	copy(data[len(data)-len(marker):], marker)
}

// TestReplicationPlacesCiphertext adds a 32 MiB file on one node of six and
// checks that exactly three other nodes hold all of its blocks, and that no
// repo, the owner's included, holds its content or name in the clear.
func TestReplicationPlacesCiphertext(t *testing.T) {
	c := startCluster(t, 6)
	const owner = 1

	contentMarker := "content-marker-" + randHex(16)
	nameMarker := "name-marker-" + randHex(16)
	data := randBytes(32 * mib)
	plantMarker(data, contentMarker)
	path := writeFile(t, t.TempDir(), "secret "+nameMarker+".bin", data)

	root := c.nodes[owner].add(t, path)
	replicas := c.replicasOf(t, owner, root, replicationGoal)
	refs := c.nodes[owner].refs(t, root)
	check(t, refs[0] == root, "refs must list the root %s first, got %s", root, refs[0])
	check(t, len(refs) > 32, "a 32 MiB file in 1 MiB chunks has more than 32 blocks, refs lists %d", len(refs))
	requireHolds(t, c.nodes[owner].repo, refs)
	for _, r := range replicas {
		requireHolds(t, c.nodes[r].repo, refs)
	}

	stopAll(t, c.daemons)
	for i, n := range c.nodes {
		var scanned int
		err := filepath.WalkDir(n.repo, func(p string, d fs.DirEntry, err error) error {
			if err != nil {
				return err
			}
			if strings.Contains(p, nameMarker) {
				t.Errorf("node %d: a path under the repo holds the name marker: %s", i, p)
			}
			if !d.Type().IsRegular() {
				return nil
			}
			b, err := os.ReadFile(p)
			if err != nil {
				return err
			}
			scanned++
			for _, m := range []string{contentMarker, nameMarker} {
				if bytes.Contains(b, []byte(m)) {
					t.Errorf("node %d: %s holds the plaintext marker %q", i, p, m)
				}
			}
			return nil
		})
		noErr(t, err, "walk repo "+n.repo)
		check(t, scanned > 0, "no files under the repo %s", n.repo)
	}
}

// TestCapabilityRetrievalWithoutOwner checks that a node that neither owns
// nor holds a file cannot read it by CID, and reads it by capability from
// the replicas after the owner's daemon was killed.
func TestCapabilityRetrievalWithoutOwner(t *testing.T) {
	c := startCluster(t, 6)
	const owner = 1
	data := randBytes(5*mib + 12345)
	root := c.nodes[owner].add(t, writeFile(t, t.TempDir(), "report.pdf", data))
	replicas := c.replicasOf(t, owner, root, replicationGoal)
	capability := c.nodes[owner].share(t, root)
	reader := c.nodes[c.others(append(replicas, owner)...)[0]]

	res := reader.run(t, "cat", root)
	msg := requireFail(t, res, exitIntegrity)
	check(t, strings.Contains(strings.ToLower(msg), "capability"), "cat of a bare CID by a stranger must say a capability is needed: %s", res)

	c.daemons[owner].Kill(t)
	got := reader.cat(t, capability)
	check(t, sha256.Sum256(got) == sha256.Sum256(data), "cat by capability without the owner: got %d bytes, want the %d bytes added", len(got), len(data))
}

// TestCorruptReplicaBlocks checks that a reader never accepts a damaged
// block: with one replica's copy of a chunk damaged it reads the file from
// the others, and with every replica's copy damaged it fails.
func TestCorruptReplicaBlocks(t *testing.T) {
	c := startCluster(t, 6)
	const owner = 1
	data := randBytes(6*mib + 777)
	root := c.nodes[owner].add(t, writeFile(t, t.TempDir(), "film.mkv", data))
	replicas := c.replicasOf(t, owner, root, replicationGoal)
	capability := c.nodes[owner].share(t, root)
	refs := c.nodes[owner].refs(t, root)
	check(t, len(refs) >= 4, "a 6 MiB file has more than 4 blocks, refs lists %d", len(refs))
	chunk := refs[len(refs)/2] // not the root: refs lists it first
	readers := c.others(append(replicas, owner)...)
	check(t, len(readers) == 2, "want two nodes that are neither owner nor replica, got %v", readers)

	// damage stops node i, flips a byte in the middle of its copy of chunk,
	// restarts it and reconnects it to every running daemon (its addresses
	// changed, and node 0's daemon has no bootstrap peers of its own).
	damage := func(i int) {
		t.Helper()
		c.daemons[i].Stop(t)
		n := c.nodes[i]
		flipByte(t, blockFile(t, n.repo, chunk))
		c.daemons[i] = startDaemon(t, n)
		for j, d := range c.daemons {
			if j == i || !d.running() {
				continue
			}
			n.requireOK(t, n.run(t, "connect", d.tcpAddr(t)))
		}
	}

	// One damaged copy: the reader gets the chunk from another replica.
	// Replica nodes other than node 0 are damaged first, so that the
	// bootstrap node keeps its addresses.
	slices.SortFunc(replicas, func(a, b int) int {
		if (a == 0) != (b == 0) {
			if a == 0 {
				return 1
			}
			return -1
		}
		return a - b
	})
	c.daemons[owner].Kill(t) // first, so that it cannot repair what is damaged
	damage(replicas[0])
	got := c.nodes[readers[0]].cat(t, capability)
	check(t, sha256.Sum256(got) == sha256.Sum256(data), "cat with one damaged replica: got %d bytes, want the %d bytes added", len(got), len(data))

	// Every copy damaged. The first reader is stopped, since it may keep
	// what it read; the second reader must fail rather than accept the
	// damaged chunk.
	c.daemons[readers[0]].Stop(t)
	for _, r := range replicas[1:] {
		damage(r)
	}
	for _, r := range replicas {
		res := c.nodes[r].run(t, "repo", "verify")
		check(t, res.code == exitIntegrity && strings.Contains(res.out(), "corrupt "+chunk),
			"repo verify on replica %d must report the damaged chunk %s: %s", r, chunk, res)
	}
	// Each replica checks the chunk against its CID before serving it and
	// says it lacks it: the reader is told the chunk is not found, and no
	// peer sent it a wrong block.
	res := c.nodes[readers[1]].run(t, "cat", capability)
	requireCode(t, res, exitNotFound)
	requireErrLine(t, res)
	check(t, !strings.Contains(res.stderr, "bad block"), "a replica served its damaged chunk instead of reporting it missing: %s", res)
	check(t, len(res.stdout) < len(data), "cat printed %d bytes of a %d byte file whose chunk %s no peer holds intact", len(res.stdout), len(data), chunk)
}

// TestSigtermDuringTransfer stops every daemon with SIGTERM while a 256 MiB
// file is being pushed to its replicas, and then requires every repo to
// verify clean.
func TestSigtermDuringTransfer(t *testing.T) {
	c := startCluster(t, 4)
	const owner = 1
	path := writeRandomFile(t, t.TempDir(), "archive.tar", 256*mib)
	replicas := c.others(owner)
	before := map[int]int{}
	for _, r := range replicas {
		before[r] = len(blockNames(t, c.nodes[r].repo))
	}

	// The add runs in the background; this test owns its goroutine and
	// waits for it below.
	ctx, cancel := context.WithCancel(t.Context())
	defer cancel()
	n := c.nodes[owner]
	cmd := n.command(ctx, runOpts{}, "add", "--progress=false", path)
	var stdout, stderr bytes.Buffer
	cmd.Stdout, cmd.Stderr = &stdout, &stderr
	noErr(t, cmd.Start(), "start casd add")
	added := make(chan error, 1)
	go func() { added <- cmd.Wait() }()
	var addDone bool
	defer func() {
		if !addDone {
			cancel()
			<-added
		}
	}()

	limit := 10 * time.Minute
	if d, ok := t.Deadline(); ok {
		limit = min(limit, time.Until(d)-time.Minute) // leave time for the cleanups
	}
	waitFor(t, limit, func() (bool, string) {
		select {
		case err := <-added:
			addDone = true
			t.Fatalf("casd add finished (%v) before any replica received a block; stdout %q, stderr %q", err, stdout.String(), stderr.String())
		default:
		}
		for _, r := range replicas {
			if len(blockNames(t, c.nodes[r].repo)) > before[r] {
				return true, ""
			}
		}
		return false, "no replica received a block of the file being added"
	})

	// SIGTERM to every daemon at once, then wait for each: each must exit 0.
	stopAll(t, c.daemons)
	err := <-added
	addDone = true
	res := result{args: cmd.Args[1:], stdout: stdout.Bytes(), stderr: stderr.String()}
	var exitErr *exec.ExitError
	if errors.As(err, &exitErr) {
		res.code = exitErr.ExitCode()
	}
	n.log(res)
	t.Logf("the interrupted add: exit %d, stderr %q", res.code, res.stderr)

	for i, nd := range c.nodes {
		res := nd.run(t, "repo", "verify")
		check(t, res.code == exitOK, "repo verify of node %d after SIGTERM during a transfer: %s", i, res)
	}
}

// TestUnderReplication adds a file on a network of two nodes, where only one
// replica of the three asked for can be placed.
func TestUnderReplication(t *testing.T) {
	c := startCluster(t, 2)
	const owner = 1
	n := c.nodes[owner]
	data := randBytes(2*mib + 5)
	res := n.run(t, "add", writeFile(t, t.TempDir(), "lonely.bin", data))
	check(t, res.code == exitFailure, "add with one reachable peer of the 3 asked for must exit 1: %s", res)
	msg := requireErrLine(t, res)
	check(t, strings.Contains(msg, "1 of 3"), "add must say it reached 1 of 3 replicas: %s", res)

	lsRes := n.run(t, "ls", "--json")
	n.requireOK(t, lsRes)
	var files []lsEntry
	noErr(t, json.Unmarshal(lsRes.stdout, &files), "decode "+lsRes.out())
	check(t, len(files) == 1 && files[0].Name == "lonely.bin", "ls must list the under-replicated file: %s", lsRes)
	root := files[0].CID
	if out := res.out(); out != "" {
		check(t, out == "added "+root+" lonely.bin\n", "add printed %q, want nothing or \"added %s lonely.bin\"", out, root)
	}
	requireSameBytes(t, data, n.cat(t, root), "cat of the under-replicated file with the daemon")
	st := status(t, n, root)
	check(t, len(st.Replicas) == 1 && st.Replicas[0] == c.daemons[0].ID,
		"status must list node 0 (%s) as the one replica: %+v", c.daemons[0].ID, st)

	c.daemons[owner].Stop(t)
	requireSameBytes(t, data, n.cat(t, root), "cat of the under-replicated file offline")
}

// TestDaemonIdentityAndPeers checks `casd id`, `casd peers` and
// `casd connect` against running daemons.
func TestDaemonIdentityAndPeers(t *testing.T) {
	c := startCluster(t, 2)
	n, d := c.nodes[1], c.daemons[1]

	res := n.run(t, "id", "--json")
	n.requireOK(t, res)
	var id daemonIDJSON
	noErr(t, json.Unmarshal(res.stdout, &id), "decode "+res.out())
	check(t, id.ID == d.ID, "id --json names %s, the daemon printed %s", id.ID, d.ID)
	check(t, len(id.Addrs) > 0, "id --json of a running daemon lists no addresses: %s", res)
	for _, a := range id.Addrs {
		check(t, strings.HasSuffix(a, "/p2p/"+d.ID), "id --json address %q must end in /p2p/%s", a, d.ID)
	}
	for _, a := range d.Addrs {
		check(t, slices.Contains(id.Addrs, a), "id --json must list the address %s the daemon listens on: %s", a, res)
	}
	check(t, id.AgentVersion != "", "id --json has no agentVersion: %s", res)
	check(t, len(id.Protocols) > 0, "id --json lists no protocols: %s", res)
	for _, p := range []string{"/cas/store/1.0", "/cas/get/1.0"} {
		check(t, slices.Contains(id.Protocols, p), "id --json must list protocol %s: %s", p, res)
	}

	check(t, len(connectedTo(t, n, []string{c.daemons[0].ID})) == 0, "peers --json must show node 0 connected: %+v", peerList(t, n, false))

	// A third node without bootstrap peers knows nobody until told.
	lone := newNode(t)
	ld := startDaemon(t, lone)
	check(t, len(peerList(t, lone, false)) == 0, "a daemon without bootstrap peers is connected to %+v", peerList(t, lone, false))
	check(t, len(connectedTo(t, n, []string{ld.ID})) == 1, "node 1 is connected to the lone node before connect")

	res = n.run(t, "connect", ld.tcpAddr(t))
	n.requireOK(t, res)
	check(t, len(connectedTo(t, n, []string{ld.ID})) == 0, "after connect, peers --json must show %s connected: %+v", ld.ID, peerList(t, n, false))
	all := peerList(t, n, true)
	check(t, slices.ContainsFunc(all, func(p peerJSON) bool { return p.ID == ld.ID }), "peers --all --json must list %s: %+v", ld.ID, all)
	waitConnected(t, lone, d.ID)

	res = n.run(t, "peers")
	n.requireOK(t, res)
	check(t, strings.Contains(res.out(), ld.ID) && strings.Contains(res.out(), c.daemons[0].ID), "peers must list both connected peers: %s", res)

	res = n.run(t, "connect", "/ip4/127.0.0.1/tcp/1/p2p/"+ld.ID+"x")
	check(t, res.code != exitOK, "connect to a malformed address must fail: %s", res)
	requireErrLine(t, res)
}
