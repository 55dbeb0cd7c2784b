package integration

import (
	"encoding/json"
	"fmt"
	"path/filepath"
	"slices"
	"strings"
	"testing"
	"time"
)

// repairJSON is one report of `casd repair --json`.
type repairJSON struct {
	CID     string   `json:"cid"`
	Goal    int      `json:"goal"`
	Live    []string `json:"live"`
	Added   []string `json:"added"`
	Dropped []string `json:"dropped"`
}

// TestRestoredNodeRepairs: the owner's machine is gone; a node restored
// from its key file runs `repair <cid>`, which fetches the file from the
// replicas, keeps it as its own, and checks the replicas: the file is then
// in its `ls`, and its status, answered from the check, shows the goal met
// by cluster nodes (never the dead owner) that passed a light and a tree
// audit and hold a lease.
func TestRestoredNodeRepairs(t *testing.T) {
	c := startCluster(t, 5)
	const owner = 1
	root := c.nodes[owner].add(t, writeFile(t, t.TempDir(), "notes.txt", randBytes(2*mib+77)))
	c.replicasOf(t, owner, root, replicationGoal)
	keyFile := filepath.Join(t.TempDir(), "casd.key")
	c.nodes[owner].requireOK(t, c.nodes[owner].runPass(t, testPassphrase, "key", "export", "-o", keyFile))
	c.daemons[owner].Kill(t)

	laptop := newEmptyNode(t)
	laptop.requireOK(t, laptop.runPass(t, testPassphrase, "init", "--profile=local", "--restore", keyFile))
	boot, err := json.Marshal([]string{c.daemons[0].tcpAddr(t)})
	noErr(t, err)
	laptop.requireOK(t, laptop.run(t, "config", "Bootstrap", string(boot)))
	startDaemon(t, laptop)
	res := laptop.run(t, "ls")
	laptop.requireOK(t, res)
	check(t, !strings.Contains(res.out(), root), "the restored node lists %s before repair: %s", root, res)

	res = laptop.run(t, "repair", "--json", root)
	laptop.requireOK(t, res)
	var reports []repairJSON
	noErr(t, json.Unmarshal(res.stdout, &reports), fmt.Sprintf("decode %s", res))
	check(t, len(reports) == 1 && reports[0].CID == root, "repair reports %+v, want one of %s", reports, root)
	rep := reports[0]
	check(t, rep.Goal == replicationGoal && len(rep.Live) >= replicationGoal, "repair: %+v, want the goal %d met", rep, replicationGoal)
	for _, id := range rep.Live {
		check(t, id != c.daemons[owner].ID && c.byID(id) >= 0, "repair counts %s, not a live cluster node", id)
	}

	res = laptop.run(t, "ls")
	laptop.requireOK(t, res)
	check(t, strings.Contains(res.out(), root), "after repair the restored node does not list %s: %s", root, res)

	st := status(t, laptop, root)
	check(t, st.Verified && !st.LastCheck.IsZero(), "status not from a check: %+v", st)
	check(t, len(st.Replicas) >= replicationGoal && len(st.Holders) == len(st.Replicas), "status: %+v", st)
	for _, h := range st.Holders {
		check(t, slices.Contains(rep.Live, h.ID), "status holder %s not live in the repair %+v", h.ID, rep)
		check(t, h.Verified && !h.LastAudit.IsZero() && !h.LastTreeAudit.IsZero(),
			"holder %s not audited (light and tree): %+v", h.ID, h)
		check(t, h.LeaseExpires.After(time.Now().Add(24*time.Hour)), "holder %s lease %s not renewed", h.ID, h.LeaseExpires)
	}

	// The text form: one line per root, the goal met.
	res = laptop.run(t, "repair", root)
	laptop.requireOK(t, res)
	want := fmt.Sprintf("%s %d/%d replicas (+0 new)\n", root, len(rep.Live), replicationGoal)
	check(t, res.out() == want, "repair printed %q, want %q", res.out(), want)
}

// TestRmOffline: without the daemon, rm deletes the file locally and says
// on stderr that its replicas free it at lease end; rm again, or of a CID
// this node does not own, fails with one line (not found); a bad CID is
// bad usage; repair needs the daemon.
func TestRmOffline(t *testing.T) {
	t.Parallel()
	n := newNode(t)
	root := n.add(t, writeFile(t, t.TempDir(), "gone.txt", randBytes(300*1024)))
	res := n.run(t, "rm", root)
	n.requireOK(t, res)
	check(t, len(res.stdout) == 0, "rm wrote to stdout: %s", res)
	check(t, strings.Contains(res.stderr, "lease") && strings.Count(res.stderr, "\n") == 1, "rm offline: want one warning line about leases: %s", res)
	res = n.run(t, "ls")
	n.requireOK(t, res)
	check(t, !strings.Contains(res.out(), root), "ls still lists the removed file: %s", res)
	res = n.run(t, "repo", "stat")
	n.requireOK(t, res)
	check(t, strings.Contains(res.out(), "blocks: 0\n"), "the removed file's blocks were not collected: %s", res)

	msg := requireFail(t, n.run(t, "rm", root), exitNotFound)
	check(t, strings.Contains(msg, root) && strings.Contains(msg, "not one of this node's files"), "rm again: %s", msg)
	requireFail(t, n.run(t, "rm", randomCID(t)), exitNotFound)
	requireFail(t, n.run(t, "rm", "not-a-cid"), exitUsage)
	requireFail(t, n.run(t, "repair", root), exitBusy)
}
