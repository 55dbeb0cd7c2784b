package integration

import (
	"context"
	"encoding/json"
	"fmt"
	"os"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/libp2p/go-libp2p/core/peer"

	"github.com/casd/casd/internal/adversary"
)

// The durability tests (issue 8) run real daemons with short check and
// audit intervals, set by `casd config` as a user would.

const (
	// durCheck and durAudit are the owner's Replication.CheckInterval and
	// Replication.AuditInterval in these tests (the local profile's).
	durCheck = 3 * time.Second
	durAudit = 10 * time.Second
	// transferSlack is what a repair may take beyond its check intervals:
	// placing a few MiB on a new peer and auditing it, under -race on two
	// shared cores.
	transferSlack = 10 * time.Second
	// durPoll is how often the durability tests ask a daemon for a
	// status: each ask runs a process, and the daemons share two cores.
	durPoll = 500 * time.Millisecond
)

// live returns the IDs of the holders marked verified.
func (st statusJSON) live() []string {
	var ids []string
	for _, h := range st.Holders {
		if h.Verified {
			ids = append(ids, h.ID)
		}
	}
	slices.Sort(ids)
	return ids
}

// holder returns the holder with id, if listed.
func (st statusJSON) holder(id string) (holderJSON, bool) {
	i := slices.IndexFunc(st.Holders, func(h holderJSON) bool { return h.ID == id })
	if i < 0 {
		return holderJSON{}, false
	}
	return st.Holders[i], true
}

// requireConsistent checks that status's replicas are its verified
// holders, as the contract says.
func requireConsistent(t testing.TB, st statusJSON) {
	t.Helper()
	reps := slices.Sorted(slices.Values(st.Replicas))
	check(t, slices.Equal(reps, st.live()), "status replicas %q are not its verified holders %q: %+v", reps, st.live(), st)
}

// waitLive polls the status of root on n until ok accepts its verified
// holders, and returns that status.
func waitLive(t testing.TB, n *node, root string, timeout time.Duration, ok func(live []string) bool, what string) statusJSON {
	t.Helper()
	var st statusJSON
	pollEvery(t, timeout, durPoll, func() (bool, string) {
		st = status(t, n, root)
		return ok(st.live()), fmt.Sprintf("%s: verified holders %q, status %+v", what, st.live(), st)
	})
	return st
}

// startClusterWith is [startCluster] with the config keys of kv (key, JSON
// value, ...) set on every node before its daemon starts.
func startClusterWith(t testing.TB, n int, kv ...string) *cluster {
	t.Helper()
	return startClusterCfg(t, n, func(int) []string { return kv })
}

// startClusterCfg is [startCluster] with the config keys that kv returns
// for node i (key, JSON value, ...) set on it before its daemon starts.
func startClusterCfg(t testing.TB, n int, kv func(i int) []string) *cluster {
	t.Helper()
	c := &cluster{nodes: make([]*node, n), daemons: make([]*daemon, n)}
	for i := range n {
		c.nodes[i] = newNode(t)
		setConfig(t, c.nodes[i], kv(i)...)
	}
	c.daemons[0] = startDaemon(t, c.nodes[0])
	boot := bootstrapFrom(t, c.daemons[0])
	for i := 1; i < n; i++ {
		c.nodes[i].requireOK(t, c.nodes[i].run(t, "config", "Bootstrap", boot))
		c.daemons[i] = spawnDaemon(t, c.nodes[i])
	}
	var want []string
	for _, d := range c.daemons[1:] {
		d.waitReady(t)
		want = append(want, d.ID)
	}
	waitConnected(t, c.nodes[0], want...)
	return c
}

// setConfig sets each config key of kv (key, JSON value, ...) on n.
func setConfig(t testing.TB, n *node, kv ...string) {
	t.Helper()
	for i := 0; i+1 < len(kv); i += 2 {
		n.requireOK(t, n.run(t, "config", kv[i], kv[i+1]))
	}
}

// jsonDuration is d as a config value.
func jsonDuration(d time.Duration) string { return `"` + d.String() + `"` }

// ownerIntervals are the config keys of an owner in these tests.
func ownerIntervals() []string {
	return []string{
		"Replication.CheckInterval", jsonDuration(durCheck),
		"Replication.AuditInterval", jsonDuration(durAudit),
		"Storage.CollectInterval", jsonDuration(time.Second),
	}
}

// ids returns the peer IDs of the cluster's nodes idx.
func (c *cluster) ids(idx []int) []string {
	var out []string
	for _, i := range idx {
		out = append(out, c.daemons[i].ID)
	}
	return out
}

// indexes maps peer IDs to node indexes, failing on an ID of no node.
func (c *cluster) indexes(t testing.TB, ids []string) []int {
	t.Helper()
	var out []int
	for _, id := range ids {
		i := c.byID(id)
		check(t, i >= 0, "peer %s is no node of the cluster", id)
		out = append(out, i)
	}
	return out
}

// TestRepairAfterReplicaLoss (issue 8, repair): with 7 daemons and a file
// at 3 replicas, two replica daemons are killed; within two check
// intervals (plus the time to transfer the file) the owner has 3 live,
// proven replicas again, none of them a killed one, and with the owner
// and the surviving original replica stopped a node that held nothing
// reads the file by capability from the new replicas alone.
func TestRepairAfterReplicaLoss(t *testing.T) {
	c := startClusterWith(t, 7, ownerIntervals()...)
	const owner = 1
	on := c.nodes[owner]
	data := randBytes(4 * mib)
	root := on.add(t, writeFile(t, t.TempDir(), "deed.pdf", data))
	capability := on.share(t, root)
	refs := on.refs(t, root)
	st := waitLive(t, on, root, time.Minute, func(l []string) bool { return len(l) == replicationGoal }, "after add")
	requireConsistent(t, st)
	check(t, st.Goal == replicationGoal, "status goal %d, want %d", st.Goal, replicationGoal)
	originals := c.indexes(t, st.live())
	check(t, !slices.Contains(originals, owner), "the owner lists itself as a holder: %+v", st)

	// Kill two replicas other than node 0, the one everybody bootstrapped
	// from (at most one replica is node 0).
	var killed, survivor []int
	for _, r := range originals {
		if r != 0 && len(killed) < 2 {
			killed = append(killed, r)
		} else {
			survivor = append(survivor, r)
		}
	}
	check(t, len(killed) == 2 && len(survivor) == 1, "originals %v: cannot pick two to kill", originals)
	for _, k := range killed {
		c.daemons[k].Kill(t)
	}
	start := time.Now()
	killedIDs := c.ids(killed)
	st = waitLive(t, on, root, 2*durCheck+transferSlack+time.Minute, func(l []string) bool {
		return len(l) == replicationGoal && !slices.ContainsFunc(l, func(id string) bool { return slices.Contains(killedIDs, id) })
	}, "repair after killing "+strings.Join(killedIDs, ", "))
	took := time.Since(start)
	t.Logf("repair: %d live replicas again %v after killing 2 of 3 (bound %v: 2 check intervals of %v + %v)",
		replicationGoal, took.Round(time.Millisecond), 2*durCheck+transferSlack, durCheck, transferSlack)
	check(t, took <= 2*durCheck+transferSlack, "repair took %v, more than 2 check intervals + %v", took, transferSlack)
	check(t, !st.LastCheck.IsZero() && st.LastCheck.After(start.Add(-time.Second)), "status lastCheck %v is not after the kill at %v", st.LastCheck, start)
	requireConsistent(t, st)

	requireRepairReport(t, on, root, st.live())

	holders := c.indexes(t, st.live())
	check(t, slices.Contains(holders, survivor[0]), "the surviving original %d is no longer counted: %+v", survivor[0], st)
	var added []int
	for _, h := range holders {
		if h != survivor[0] {
			requireHolds(t, c.nodes[h].repo, refs)
			added = append(added, h)
		}
	}
	reader := c.others(append(append([]int{owner}, originals...), added...)...)
	check(t, len(reader) == 1, "want one node that never held the file, got %v", reader)

	c.daemons[owner].Stop(t)
	c.daemons[survivor[0]].Stop(t)
	got := c.nodes[reader[0]].cat(t, capability)
	requireSameBytes(t, data, got, "cat by capability from the new replicas alone")
	t.Logf("node %d read %d bytes from the new replicas %v alone", reader[0], len(got), added)
}

// requireRepairReport runs `casd repair root` on n, in JSON and in text,
// on a root that meets its goal with the replicas live: both exit 0, and
// report those replicas and nothing added or dropped.
func requireRepairReport(t testing.TB, n *node, root string, live []string) {
	t.Helper()
	res := n.run(t, "repair", "--json", root)
	n.requireOK(t, res)
	var reps []repairJSON
	noErr(t, json.Unmarshal(res.stdout, &reps), fmt.Sprintf("decode %s", res))
	check(t, len(reps) == 1, "repair --json of one root lists %d reports: %s", len(reps), res)
	r := reps[0]
	check(t, r.CID == root && r.Goal == replicationGoal && len(r.Added) == 0 && len(r.Dropped) == 0,
		"repair of a root at its goal: %+v", r)
	check(t, slices.Equal(slices.Sorted(slices.Values(r.Live)), live), "repair reports live %q, status %q", r.Live, live)
	res = n.run(t, "repair", root)
	n.requireOK(t, res)
	want := fmt.Sprintf("%s %d/%d replicas (+0 new)\n", root, replicationGoal, replicationGoal)
	check(t, res.out() == want, "repair printed %q, want %q", res.out(), want)
}

// TestAuditCatchesDeletedBlock (issue 8, audits): a replica that lost one
// chunk of a file fails its next audit and is replaced.
func TestAuditCatchesDeletedBlock(t *testing.T) {
	testAuditCatches(t, "deleted", func(path string) {
		noErr(t, os.Remove(path), "delete block file")
	})
}

// TestAuditCatchesCorruptedBlock (issue 8, audits): a replica whose copy of
// one chunk was overwritten with garbage of the same length fails its
// next audit and is replaced.
func TestAuditCatchesCorruptedBlock(t *testing.T) {
	testAuditCatches(t, "corrupted", func(path string) {
		fi, err := os.Stat(path)
		noErr(t, err)
		noErr(t, os.WriteFile(path, randBytes(int(fi.Size())), 0o600), "overwrite block file")
	})
}

// testAuditCatches adds a file of four chunks on one node of five,
// damages one replica's copy of one chunk with damage, and requires the
// owner to list 3 verified holders without that replica within two audit
// intervals (plus a check interval and the transfer to the new replica).
//
// The damage is done under the running daemon, as a failing disk or a
// peer that throws blocks away does it: stopping the replica would let
// the owner drop it for not answering, and then the test would not show
// that an audit catches it. The block store reads a block's file on each
// use, so the daemon sees the damage at once.
func testAuditCatches(t *testing.T, how string, damage func(path string)) {
	c := startClusterWith(t, 5, ownerIntervals()...)
	const owner = 1
	on := c.nodes[owner]
	root := on.add(t, writeFile(t, t.TempDir(), "ledger.db", randBytes(3*mib+4321)))
	refs := on.refs(t, root)
	check(t, len(refs) >= 5, "a file of 4 chunks has a root and 4 chunks, refs lists %d", len(refs))
	st := waitLive(t, on, root, time.Minute, func(l []string) bool { return len(l) == replicationGoal }, "after add")
	replicas := c.indexes(t, st.live())
	victim := replicas[0]
	if victim == 0 {
		victim = replicas[1]
	}
	vid := c.daemons[victim].ID
	chunk := refs[1+len(refs[1:])/2]
	damage(blockFile(t, c.nodes[victim].repo, chunk))
	start := time.Now()
	res := c.nodes[victim].run(t, "repo", "verify")
	check(t, res.code == exitIntegrity, "repo verify on the victim must find the %s chunk %s: %s", how, chunk, res)

	bound := 2*durAudit + durCheck + transferSlack
	st = waitLive(t, on, root, bound+time.Minute, func(l []string) bool {
		return len(l) == replicationGoal && !slices.Contains(l, vid)
	}, fmt.Sprintf("replica %s with a %s chunk", vid, how))
	took := time.Since(start)
	t.Logf("%s chunk: replica dropped and replaced after %v (bound %v: 2 audit intervals of %v + %v + %v)",
		how, took.Round(time.Millisecond), bound, durAudit, durCheck, transferSlack)
	check(t, took <= bound, "the %s chunk was caught after %v, more than %v", how, took, bound)
	requireConsistent(t, st)
	// It was dropped for failing, not for being away.
	check(t, c.daemons[victim].running(), "the victim's daemon stopped")
	check(t, len(connectedTo(t, c.nodes[victim], []string{c.daemons[owner].ID})) == 0,
		"the victim is not connected to the owner: it may have been dropped for not answering")
}

// startHoarder starts an adversary peer that stores what it is offered and
// proves falsely as lie says, in the DHT of boot, connected to owner. It
// is closed when the test ends.
func startHoarder(t testing.TB, lie adversary.ProofLie, boot *daemon, owner *node) *adversary.Hoarder {
	t.Helper()
	ai, err := peer.AddrInfoFromString(boot.tcpAddr(t))
	noErr(t, err, "parse "+boot.tcpAddr(t))
	ctx, cancel := context.WithTimeout(t.Context(), liarTimeout)
	defer cancel()
	p, err := adversary.New(ctx, adversary.Options{DHT: true, Bootstrap: []peer.AddrInfo{*ai}})
	noErr(t, err, "start hoarder")
	t.Cleanup(func() { noErr(t, p.Close(), "close hoarder") })
	h := p.Hoard(lie, 256*mib)
	waitConnected(t, owner, p.ID().String())
	return h
}

// TestAuditCatchesGarbageProver (issue 8, audits): a peer that accepts and
// stores the file but answers every challenge with a garbage proof is
// never listed as a holder, and the owner reaches 3 honest holders. The
// owner has two honest peers and the prover, so its add must place on
// the prover; a third honest node joins after the add.
func TestAuditCatchesGarbageProver(t *testing.T) {
	c := startClusterWith(t, 3, ownerIntervals()...)
	const owner = 1
	on := c.nodes[owner]
	h := startHoarder(t, adversary.GarbageProofs, c.daemons[owner], on)
	hid := h.Peer().ID().String()

	res := on.run(t, "add", writeFile(t, t.TempDir(), "vault.tar", randBytes(2*mib+77)))
	t.Logf("add with two honest peers and the prover: exit %d, %q", res.code, strings.TrimSpace(res.stderr))
	fields := strings.Fields(res.out())
	check(t, len(fields) == 3 && fields[0] == "added", "add must print \"added <cid> vault.tar\": %s", res)
	root := fields[1]
	check(t, h.Holds(requireCID(t, root)), "the prover was never given the file: the test mounts no attack (%+v)", h.Counts())
	check(t, res.code == exitFailure && strings.Contains(res.stderr, "reached 2 of 3"),
		"add must not count the garbage prover: %s", res)

	joined := newNode(t)
	setConfig(t, joined, "Bootstrap", bootstrapFrom(t, c.daemons[0]))
	jd := startDaemon(t, joined)
	want := []string{c.daemons[0].ID, c.daemons[2].ID, jd.ID}
	slices.Sort(want)
	st := waitLive(t, on, root, 2*durCheck+transferSlack+time.Minute, func(l []string) bool {
		check(t, !slices.Contains(l, hid), "status lists the garbage prover %s as a verified holder", hid)
		return slices.Equal(l, want)
	}, "3 honest holders")
	requireConsistent(t, st)
	hc := h.Counts()
	t.Logf("prover: %+v", hc)
	check(t, hc.Garbage > 0, "the prover was never challenged: %+v", hc)
	// Some more checks and audits: it stays out.
	deadline := time.Now().Add(durAudit + durCheck)
	pollEvery(t, 2*durAudit+durCheck, durPoll, func() (bool, string) {
		st := status(t, on, root)
		check(t, !slices.Contains(st.live(), hid) && !slices.Contains(st.Replicas, hid), "status lists the garbage prover: %+v", st)
		return time.Now().After(deadline), ""
	})
}

// TestAuditCatchesGarbageTreeProver (issue 8, full audits): a peer that
// stores the file and proves single blocks honestly, but answers the
// tree challenge with garbage, passes the add and the light checks and is
// dropped at its first full audit, within two audit intervals.
func TestAuditCatchesGarbageTreeProver(t *testing.T) {
	c := startClusterWith(t, 3, ownerIntervals()...)
	const owner = 1
	on := c.nodes[owner]
	h := startHoarder(t, adversary.GarbageTreeProofs, c.daemons[owner], on)
	hid := h.Peer().ID().String()

	root := on.add(t, writeFile(t, t.TempDir(), "vault.tar", randBytes(2*mib+77)))
	added := time.Now()
	st := status(t, on, root)
	check(t, slices.Contains(st.live(), hid), "the owner does not count the prover, whose light proofs are honest: %+v (%+v)", st, h.Counts())

	joined := newNode(t)
	setConfig(t, joined, "Bootstrap", bootstrapFrom(t, c.daemons[0]))
	jd := startDaemon(t, joined)
	want := []string{c.daemons[0].ID, c.daemons[2].ID, jd.ID}
	slices.Sort(want)
	bound := 2*durAudit + durCheck + transferSlack
	st = waitLive(t, on, root, bound+time.Minute, func(l []string) bool { return slices.Equal(l, want) }, "3 honest holders")
	took := time.Since(added)
	hc := h.Counts()
	t.Logf("tree prover dropped and replaced %v after the add (bound %v); prover: %+v", took.Round(time.Millisecond), bound, hc)
	check(t, took <= bound, "the garbage tree prover was dropped after %v, more than %v", took, bound)
	check(t, hc.TreeChallenges > 0 && hc.Garbage > 0, "the prover was never sent a tree challenge: %+v", hc)
	requireConsistent(t, st)
}

// TestAuditCatchesTurnedProver (issue 8, light checks): a peer that
// stores the file and proves it honestly, so that the add counts it, then
// answers every block challenge with garbage (its tree proofs stay
// true), is dropped by the owner's light checks and replaced, within two
// check intervals plus the transfer to the new replica: sooner than any
// full audit would.
func TestAuditCatchesTurnedProver(t *testing.T) {
	c := startClusterWith(t, 3, ownerIntervals()...)
	const owner = 1
	on := c.nodes[owner]
	h := startHoarder(t, adversary.HonestProofs, c.daemons[owner], on)
	hid := h.Peer().ID().String()

	root := on.add(t, writeFile(t, t.TempDir(), "vault.tar", randBytes(2*mib+77)))
	st := status(t, on, root)
	check(t, slices.Contains(st.live(), hid), "the owner does not count the prover, whose proofs are honest so far: %+v (%+v)", st, h.Counts())
	joined := newNode(t)
	setConfig(t, joined, "Bootstrap", bootstrapFrom(t, c.daemons[0]))
	jd := startDaemon(t, joined)
	want := []string{c.daemons[0].ID, c.daemons[2].ID, jd.ID}
	slices.Sort(want)

	h.SetLie(adversary.GarbageBlockProofs)
	turned := time.Now()
	bound := 2*durCheck + transferSlack
	st = waitLive(t, on, root, bound+time.Minute, func(l []string) bool { return slices.Equal(l, want) }, "3 honest holders")
	took := time.Since(turned)
	hc := h.Counts()
	t.Logf("turned prover dropped and replaced %v after it turned (bound %v); prover: %+v", took.Round(time.Millisecond), bound, hc)
	check(t, took <= bound, "the turned prover was dropped after %v, more than %v", took, bound)
	check(t, hc.Garbage > 0, "the prover was never challenged after it turned: %+v", hc)
	requireConsistent(t, st)
}
