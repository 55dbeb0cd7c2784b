package integration

import (
	"fmt"
	"testing"
	"time"
)

// heldOf returns the blocks of refs that are files under repo/blocks.
func heldOf(t testing.TB, repo string, refs []string) []string {
	t.Helper()
	names := blockNames(t, repo)
	var held []string
	for _, c := range refs {
		if names[c] {
			held = append(held, c)
		}
	}
	return held
}

// waitFreed polls until no block of refs is in the repo of any node of
// idx and each of them offers 0 bytes, and returns when that was seen.
func waitFreed(t testing.TB, c *cluster, idx []int, refs []string, timeout time.Duration, what string) time.Time {
	t.Helper()
	pollEvery(t, timeout, durPoll, func() (bool, string) {
		for _, i := range idx {
			if held := heldOf(t, c.nodes[i].repo, refs); len(held) > 0 {
				return false, fmt.Sprintf("%s: node %d still holds %d of the %d blocks", what, i, len(held), len(refs))
			}
			if st := c.nodes[i].repoStat(t); st.Offered != 0 {
				return false, fmt.Sprintf("%s: node %d still offers %d bytes: %+v", what, i, st.Offered, st)
			}
		}
		return true, ""
	})
	return time.Now()
}

// TestRmFreesReplicas (issue 8, removal): `casd rm` on the owner makes
// every replica drop the file's blocks at once (a signed Remove, then a
// GC), and the owner's own copy goes at its GC; cat of it on the owner
// then fails with not found. rm refuses, with one line, what is not a
// CID and what the node does not own, a replica's root included, which
// it leaves in place.
func TestRmFreesReplicas(t *testing.T) {
	c := startClusterWith(t, 5, ownerIntervals()...)
	const owner = 1
	on := c.nodes[owner]
	root := on.add(t, writeFile(t, t.TempDir(), "draft.odt", randBytes(3*mib+17)))
	refs := on.refs(t, root)
	st := waitLive(t, on, root, time.Minute, func(l []string) bool { return len(l) == replicationGoal }, "after add")
	replicas := c.indexes(t, st.live())
	for _, r := range replicas {
		requireHolds(t, c.nodes[r].repo, refs)
		rs := c.nodes[r].repoStat(t)
		check(t, rs.Offered > 0, "replica %d offers 0 bytes while it holds the file: %+v", r, rs)
	}

	// A replica cannot remove what it holds for another owner.
	rn := c.nodes[replicas[0]]
	res := rn.run(t, "rm", root)
	check(t, res.code != exitOK, "rm on a replica of a root it does not own must fail: %s", res)
	requireErrLine(t, res)
	requireHolds(t, rn.repo, refs)

	start := time.Now()
	res = on.run(t, "rm", root)
	on.requireOK(t, res)
	freed := waitFreed(t, c, replicas, refs, time.Minute, "after rm")
	t.Logf("rm: every replica freed the %d blocks %v after rm began", len(refs), freed.Sub(start).Round(time.Millisecond))
	pollEvery(t, time.Minute, durPoll, func() (bool, string) {
		held := heldOf(t, on.repo, refs)
		return len(held) == 0, fmt.Sprintf("the owner still holds %d of the %d blocks after rm", len(held), len(refs))
	})
	t.Logf("rm: the owner freed its copy %v after rm began", time.Since(start).Round(time.Millisecond))

	res = on.run(t, "cat", root)
	requireFail(t, res, exitNotFound)

	res = on.run(t, "rm", "not-a-cid")
	requireFail(t, res, exitUsage)
	for _, ref := range []string{root, randomCID(t)} { // removed already; never known
		res = on.run(t, "rm", ref)
		requireCode(t, res, exitUsage, exitNotFound)
		requireErrLine(t, res)
	}
}

// TestLeaseExpiryFrees (issue 8, leases): with a 20 s lease and no check
// (so no renewal) while the test runs, a reader with the capability reads
// the file with the owner's daemon stopped, within the lease; after the
// lease every replica has dropped the file's blocks on its own.
func TestLeaseExpiryFrees(t *testing.T) {
	const lease = 20 * time.Second
	const owner = 1
	c := startClusterCfg(t, 5, func(i int) []string {
		kv := []string{"Storage.CollectInterval", jsonDuration(time.Second)}
		if i == owner {
			kv = append(kv, "Replication.Lease", jsonDuration(lease), "Replication.CheckInterval", jsonDuration(time.Hour))
		}
		return kv
	})
	on := c.nodes[owner]

	data := randBytes(3*mib + 5)
	addStart := time.Now()
	root := on.add(t, writeFile(t, t.TempDir(), "minutes.txt", data))
	addEnd := time.Now()
	refs := on.refs(t, root)
	capability := on.share(t, root)
	// A check (here run at once, since the owner's next one is an hour
	// away) records the replicas' leases for status.
	on.requireOK(t, on.run(t, "repair", root))
	st := waitLive(t, on, root, 10*time.Second, func(l []string) bool { return len(l) == replicationGoal }, "after add")
	replicas := c.indexes(t, st.live())
	var expires time.Time
	for _, id := range st.live() {
		h, _ := st.holder(id)
		// The lease is stated in whole seconds.
		check(t, !h.LeaseExpires.Before(addStart.Add(lease).Truncate(time.Second)) && !h.LeaseExpires.After(addEnd.Add(lease+time.Second)),
			"holder %s: lease expires %v, want %v after the add (%v..%v)", id, h.LeaseExpires, lease, addStart, addEnd)
		if h.LeaseExpires.After(expires) {
			expires = h.LeaseExpires
		}
	}
	c.daemons[owner].Stop(t)

	reader := c.others(append(replicas, owner)...)[0]
	got := c.nodes[reader].cat(t, capability)
	readAt := time.Now()
	requireSameBytes(t, data, got, "cat by capability with the owner away, within the lease")
	check(t, readAt.Before(expires), "the read ended at %v, after the lease expired at %v: the lease is too short for this machine", readAt, expires)
	for _, r := range replicas {
		requireHolds(t, c.nodes[r].repo, refs)
	}
	t.Logf("lease %v: read by capability %v before it expired", lease, expires.Sub(readAt).Round(time.Millisecond))

	freed := waitFreed(t, c, replicas, refs, lease+time.Minute, "after the lease")
	check(t, freed.After(expires), "the replicas dropped the file at %v, before its lease expired at %v", freed, expires)
	t.Logf("lease %v: every replica dropped the %d blocks %v after the lease expired (%v after the add)",
		lease, len(refs), freed.Sub(expires).Round(time.Millisecond), freed.Sub(addEnd).Round(time.Millisecond))
}
