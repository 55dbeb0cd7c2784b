package integration

import (
	"fmt"
	"slices"
	"strings"
	"testing"
)

// TestFullPeerRefusedOwnerGoesOn (issue 8, space): the owner has three
// peers, one of which has less room for others than the owner's file
// needs, though its own files take four times its quota. The add tries
// all three: the full peer refuses and holds nothing, the add reports 2
// of 3 replicas; once a fourth peer joins, `casd repair` reaches the goal
// on it, and the full peer is still none of the replicas.
func TestFullPeerRefusedOwnerGoesOn(t *testing.T) {
	const full, owner, quota = 1, 0, mib
	c := startClusterCfg(t, 4, func(i int) []string {
		if i == full {
			return []string{"Storage.Quota", fmt.Sprint(quota)}
		}
		return nil
	})
	fn := c.nodes[full]
	fn.add(t, writeFile(t, t.TempDir(), "own.bin", randBytes(4*quota)))
	sp := fn.repoStat(t)
	check(t, sp.Own > 4*quota && sp.Offered == 0 && sp.FreeToOffer == quota,
		"the full peer's own 4 MiB must not count against its 1 MiB quota: %+v", sp)

	on := c.nodes[owner]
	path := writeFile(t, t.TempDir(), "deed.pdf", randBytes(2*quota))
	res := on.run(t, "add", path)
	check(t, res.code == exitFailure && strings.Contains(requireErrLine(t, res), "2 of 3"),
		"add with one of three peers full: %s; want exit 1, 2 of 3 replicas", res)
	root := strings.Fields(res.out())[1] // "added <cid> <name>"
	requireCID(t, root)
	check(t, len(heldOf(t, fn.repo, on.refs(t, root))) == 0, "the full peer holds blocks of a file past its quota")

	extra := newNode(t)
	extra.requireOK(t, extra.run(t, "config", "Bootstrap", bootstrapFrom(t, c.daemons[owner])))
	ed := startDaemon(t, extra)
	waitConnected(t, on, ed.ID)
	res = on.run(t, "repair", root, "--json")
	on.requireOK(t, res)
	live := status(t, on, root).live()
	check(t, len(live) == replicationGoal && slices.Contains(live, ed.ID) && !slices.Contains(live, c.daemons[full].ID),
		"after repair: live %v; want %d replicas, the new peer %s among them, not the full peer", live, replicationGoal, ed.ID)
}
