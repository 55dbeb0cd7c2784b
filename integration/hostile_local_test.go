package integration

import (
	"strings"
	"testing"
	"time"
)

// TestLocalCorruptionRepaired (hostile peers, point 11): one flipped byte
// in a chunk on the owner's disk does not make an owned file unreadable
// while three replicas hold it. With the daemon running, `casd cat` gets
// every byte (the chunk comes from a replica) and rewrites the local copy,
// so that `casd repo verify` is clean right after. Offline, with nobody to
// ask, a second damaged chunk fails the read as an integrity error that
// names the block and says to run `casd repo verify`.
func TestLocalCorruptionRepaired(t *testing.T) {
	t.Parallel()
	c := startCluster(t, 4)
	const owner = 1
	n := c.nodes[owner]
	data := randBytes(6*mib + 321)
	root := n.add(t, writeFile(t, t.TempDir(), "deeds.pdf", data))
	c.replicasOf(t, owner, root, replicationGoal)
	refs := n.refs(t, root)
	check(t, len(refs) >= 6, "a 6 MiB file in 1 MiB chunks has at least 6 blocks, refs lists %d", len(refs))

	before := n.repoStat(t)
	chunk, path := pickChunk(t, n.repo, refs)
	flipByte(t, path)
	res := n.run(t, "repo", "verify")
	check(t, res.code == exitIntegrity && strings.Contains(res.out(), "corrupt "+chunk),
		"repo verify must see the damaged chunk %s before the read: %s", chunk, res)

	start := time.Now()
	requireSameBytes(t, data, n.cat(t, root), "cat of an owned file with a damaged local chunk")
	t.Logf("cat with one damaged local chunk (%s): %v", chunk, time.Since(start).Round(time.Millisecond))
	res = n.run(t, "repo", "verify")
	check(t, res.code == exitOK, "repo verify after the read must be clean (the chunk rewritten): %s", res)
	after := n.repoStat(t)
	check(t, after == before, "repo stat after the repair %+v, want %+v as before the damage", after, before)

	c.daemons[owner].Stop(t)
	other, path := pickChunk(t, n.repo, refs[len(refs)/2:])
	check(t, other != chunk, "the offline case damages a second chunk, not %s again", chunk)
	flipByte(t, path)
	res = n.run(t, "cat", root)
	msg := requireFail(t, res, exitIntegrity)
	check(t, strings.Contains(msg, other) && strings.Contains(msg, "casd repo verify"),
		"an offline read of a damaged chunk must name it (%s) and suggest 'casd repo verify': %s", other, res)
	check(t, len(res.stdout) < len(data), "cat printed %d bytes of a %d byte file with a damaged chunk", len(res.stdout), len(data))
}
