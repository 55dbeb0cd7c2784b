package integration

import (
	"fmt"
	"slices"
	"strings"
	"testing"
	"time"
)

// The discovery tests (issue 9) start a dozen daemons each; like the
// other network tests they do not call t.Parallel.

const (
	// chainLen is the number of daemons of the chain tests.
	chainLen = 12
	// chainKnowsAtLeast is how many of the chainLen-1 others every node
	// of a chain must list once discovery has run.
	chainKnowsAtLeast = 9
	// discoveryPoll is the period of the discovery tests' polls: each
	// round runs one casd command on each node not yet done.
	discoveryPoll = 500 * time.Millisecond
)

// startChain inits n repos with the local profile, sets the config keys kv
// (key, JSON value, ...) on each, and starts their daemons one after the
// other, node i > 0 bootstrapped (`casd bootstrap add`) only from node
// i-1's TCP address. No node is told of any other: whatever more they
// know, they discovered.
func startChain(t testing.TB, n int, kv ...string) *cluster {
	t.Helper()
	start := time.Now()
	c := &cluster{nodes: make([]*node, n), daemons: make([]*daemon, n)}
	defer func() {
		t.Logf("started a chain of %d daemons in %.1f s (the first had run that long when the last was ready)", n, time.Since(start).Seconds())
	}()
	for i := range n {
		c.nodes[i] = newNode(t)
		setConfig(t, c.nodes[i], kv...)
		if i > 0 {
			c.nodes[i].requireOK(t, c.nodes[i].run(t, "bootstrap", "add", c.daemons[i-1].tcpAddr(t)))
		}
		c.daemons[i] = startDaemon(t, c.nodes[i])
	}
	return c
}

// knowledge is what one node of a cluster lists in `casd peers --all
// --json`: the other nodes of the cluster, by index.
type knowledge struct {
	peers  map[int]peerJSON
	others int // listed peers that are no node of the cluster
}

// known runs `casd peers --all --json` on node i and sorts what it lists
// by node. Listing itself fails the test.
func (c *cluster) known(t testing.TB, i int) knowledge {
	t.Helper()
	k := knowledge{peers: map[int]peerJSON{}}
	for _, p := range allPeers(t, c.nodes[i]) {
		j := c.byID(p.ID)
		check(t, j != i, "node %d lists itself (%s) among its peers: %+v", i, p.ID, p)
		if j < 0 {
			k.others++
			continue
		}
		k.peers[j] = p
	}
	return k
}

// withSource returns, sorted, the nodes k lists with source src.
func (k knowledge) withSource(src string) []int {
	var out []int
	for j, p := range k.peers {
		if p.hasSource(src) {
			out = append(out, j)
		}
	}
	slices.Sort(out)
	return out
}

// discovered reports whether k lists at least want nodes of the cluster,
// one of them at least through gossip.
func (k knowledge) discovered(want int) bool {
	return len(k.peers) >= want && len(k.withSource("gossip")) > 0
}

// describe says, for node i of a cluster of n, what it knows and what it
// lacks.
func (k knowledge) describe(i, n int) string {
	var knows, missing []int
	for j := range n {
		if _, ok := k.peers[j]; ok {
			knows = append(knows, j)
		} else if j != i {
			missing = append(missing, j)
		}
	}
	return fmt.Sprintf("node %d knows %d/%d %v (missing %v; via gossip %v, dht %v, bootstrap %v; connected %v; %d strangers)",
		i, len(knows), n-1, knows, missing, k.withSource("gossip"), k.withSource("dht"), k.withSource("bootstrap"),
		k.connected(), k.others)
}

// connected returns, sorted, the nodes k lists as connected.
func (k knowledge) connected() []int {
	var out []int
	for j, p := range k.peers {
		if p.Connected {
			out = append(out, j)
		}
	}
	slices.Sort(out)
	return out
}

// waitDiscovered polls every node of c until each has discovered (see
// knowledge.discovered) at least want of the others, bounded by timeout,
// and returns how long that took and the nodes' knowledge then.
func (c *cluster) waitDiscovered(t testing.TB, want int, timeout time.Duration) (time.Duration, []knowledge) {
	t.Helper()
	what := fmt.Sprintf("discovered %d of the %d others (with >= 1 via gossip)", want, len(c.nodes)-1)
	return c.waitKnowledge(t, c.others(), timeout, what, func(k knowledge) bool { return k.discovered(want) })
}

// waitKnowledge polls the nodes idx of c until ok holds for what each
// knows, bounded by timeout, and returns how long that took. A node that
// got there is not asked again; once all have, each is asked once more,
// and ok must hold for all at once. It returns the nodes' knowledge of
// that last round, indexed by node (empty for the nodes not in idx).
func (c *cluster) waitKnowledge(t testing.TB, idx []int, timeout time.Duration, what string, ok func(knowledge) bool) (time.Duration, []knowledge) {
	t.Helper()
	start := time.Now()
	ks := make([]knowledge, len(c.nodes))
	done := make([]bool, len(c.nodes))
	pollEvery(t, timeout, discoveryPoll, func() (bool, string) {
		all := true
		for _, i := range idx {
			if !done[i] {
				ks[i] = c.known(t, i)
				done[i] = ok(ks[i])
			}
			all = all && done[i]
		}
		return all, fmt.Sprintf("not every node of %v %s:\n%s", idx, what, c.describeAll(ks))
	})
	took := time.Since(start)
	for _, i := range idx {
		ks[i] = c.known(t, i)
	}
	for _, i := range idx {
		check(t, ok(ks[i]), "node %d %s within %v, but no longer does:\n%s", i, what, took, c.describeAll(ks))
	}
	return took, ks
}

// describeAll is one line per node of what it knows (none for a node
// not asked).
func (c *cluster) describeAll(ks []knowledge) string {
	var lines []string
	for i, k := range ks {
		if k.peers != nil {
			lines = append(lines, "  "+k.describe(i, len(c.nodes)))
		}
	}
	return strings.Join(lines, "\n")
}

// requireBootstrapSource fails unless every node i > 0 of a chain lists
// node i-1, its only bootstrap peer, with source "bootstrap".
func requireBootstrapSource(t testing.TB, c *cluster, ks []knowledge) {
	t.Helper()
	for i := 1; i < len(ks); i++ {
		p, ok := ks[i].peers[i-1]
		check(t, ok && p.hasSource("bootstrap"), "node %d must list its bootstrap peer, node %d, with source \"bootstrap\": %+v\n%s",
			i, i-1, p, c.describeAll(ks))
	}
}

// TestChainDiscovery (issue 9): twelve daemons in a chain, each
// bootstrapped only from the one before, the DHT on. Within 60 s every node
// lists at least 9 of the 11 others, at least one learned by gossip, and
// a file added at one end reads back by capability at the other.
func TestChainDiscovery(t *testing.T) {
	c := startChain(t, chainLen)
	took, ks := c.waitDiscovered(t, chainKnowsAtLeast, 60*time.Second)
	t.Logf("chain converged in %.1f s after its last daemon was ready (DHT on):\n%s", took.Seconds(), c.describeAll(ks))
	requireBootstrapSource(t, c, ks)
	var viaDHT []int
	for i, k := range ks {
		if len(k.withSource("dht")) > 0 {
			viaDHT = append(viaDHT, i)
		}
	}
	// What the WithoutDHT switch of TestChainDiscoveryGossipOnly turns off
	// must be on here, or its test of the switch proves nothing.
	check(t, len(viaDHT) > 0, "with the DHT on, no node lists a peer with source \"dht\":\n%s", c.describeAll(ks))
	t.Logf("%d of %d nodes list peers with source dht: %v", len(viaDHT), len(ks), viaDHT)

	first, last := c.nodes[0], c.nodes[len(c.nodes)-1]
	data := randBytes(2*mib + 333)
	root := first.add(t, writeFile(t, t.TempDir(), "end to end.bin", data))
	capability := first.share(t, root)
	start := time.Now()
	got := last.cat(t, capability)
	requireSameBytes(t, data, got, fmt.Sprintf("cat at node %d of the capability of a file added at node 0", len(c.nodes)-1))
	t.Logf("node %d read node 0's file (%d bytes) by capability in %.1f s", len(c.nodes)-1, len(data), time.Since(start).Seconds())
}

// TestChainDiscoveryGossipOnly (issue 9): the chain of TestChainDiscovery
// with the DHT kept out of discovery (Discovery.WithoutDHT) on every node:
// gossip alone brings every node to at least 9 of the 11 others within
// 90 s, and no node lists a peer with source "dht".
func TestChainDiscoveryGossipOnly(t *testing.T) {
	c := startChain(t, chainLen, "Discovery.WithoutDHT", "true")
	took, ks := c.waitDiscovered(t, chainKnowsAtLeast, 90*time.Second)
	t.Logf("chain converged in %.1f s after its last daemon was ready (gossip only):\n%s", took.Seconds(), c.describeAll(ks))
	requireBootstrapSource(t, c, ks)
	for i, k := range ks {
		check(t, len(k.withSource("dht")) == 0, "Discovery.WithoutDHT is set, yet node %d lists peers %v with source \"dht\":\n%s",
			i, k.withSource("dht"), c.describeAll(ks))
	}
}
