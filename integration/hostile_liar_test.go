package integration

import (
	"context"
	"encoding/json"
	"fmt"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/ipfs/go-cid"
	"github.com/libp2p/go-libp2p/core/host"
	"github.com/libp2p/go-libp2p/core/network"
	"github.com/libp2p/go-libp2p/core/peer"

	"github.com/casd/casd/internal/adversary"
	"github.com/casd/casd/protocol"
)

// maxStrikes is the number of strikes after which a daemon bans a peer
// (node/internal/peers.MaxStrikes, documented in docs/wire.md).
const maxStrikes = 3

// liarTimeout bounds a liar's set-up steps (DHT bootstrap, provide).
const liarTimeout = time.Minute

// startLiars starts n hostile peers that tell lie, each with a DHT server
// bootstrapped from boot, so that they sit in the same DHT as the daemons.
// They are closed when the test ends.
func startLiars(t testing.TB, n int, lie adversary.Lie, boot *daemon) []*adversary.Liar {
	t.Helper()
	ai, err := peer.AddrInfoFromString(boot.tcpAddr(t))
	noErr(t, err, "parse "+boot.tcpAddr(t))
	liars := make([]*adversary.Liar, n)
	for i := range n {
		ctx, cancel := context.WithTimeout(t.Context(), liarTimeout)
		p, err := adversary.New(ctx, adversary.Options{DHT: true, Bootstrap: []peer.AddrInfo{*ai}})
		cancel()
		noErr(t, err, "start liar")
		t.Cleanup(func() { noErr(t, p.Close(), "close liar") })
		liars[i] = p.Lie(lie)
	}
	return liars
}

// provideAll makes every liar publish a provider record for root, retrying
// while a liar's routing table is still empty after its bootstrap.
func provideAll(t testing.TB, liars []*adversary.Liar, root string) {
	t.Helper()
	c := requireCID(t, root)
	for _, l := range liars {
		var last error
		waitFor(t, liarTimeout, func() (bool, string) {
			ctx, cancel := context.WithTimeout(t.Context(), 10*time.Second)
			defer cancel()
			last = l.Provide(ctx, c)
			return last == nil, fmt.Sprintf("liar cannot provide %s: %v", root, last)
		})
	}
}

// daemonWith inits a node, sets each config key of kv (key, JSON value,
// ...) and starts its daemon.
func daemonWith(t testing.TB, kv ...string) (*node, *daemon) {
	t.Helper()
	n := newNode(t)
	for i := 0; i+1 < len(kv); i += 2 {
		n.requireOK(t, n.run(t, "config", kv[i], kv[i+1]))
	}
	return n, startDaemon(t, n)
}

// bootstrapFrom is the config value that bootstraps a node from d.
func bootstrapFrom(t testing.TB, d *daemon) string {
	t.Helper()
	b, err := json.Marshal([]string{d.tcpAddr(t)})
	noErr(t, err)
	return string(b)
}

// TestLyingProvidersDoNotBlockReads (hostile peers, point 6): an owner,
// one honest replica, and twelve peers in the same DHT that publish
// provider records for the file, claim to hold it whole and answer
// Missing for every block. A reader with the capability reads the file 20
// times in a row: every read returns every byte, and the liars are
// dropped and struck: no liar lies more than the strike limit allows
// before the reader bans it (plus the requests already in flight when it
// is banned), and every liar that reached the limit is banned.
func TestLyingProvidersDoNotBlockReads(t *testing.T) {
	t.Parallel()
	const nLiars, reads = 12, 20
	_, replicaD := daemonWith(t)
	owner, _ := daemonWith(t, "Bootstrap", bootstrapFrom(t, replicaD), "Replication.Factor", "1")
	waitConnected(t, owner, replicaD.ID)
	data := randBytes(8*mib + 99)
	root := owner.add(t, writeFile(t, t.TempDir(), "ledger.db", data))
	st := status(t, owner, root)
	check(t, slices.Equal(st.Replicas, []string{replicaD.ID}), "the one replica is %s: %+v", replicaD.ID, st)
	capability := owner.share(t, root)

	liars := startLiars(t, nLiars, adversary.MissingAll, replicaD)
	provideAll(t, liars, root)
	reader, readerD := daemonWith(t, "Bootstrap", bootstrapFrom(t, replicaD))

	var times []time.Duration
	for i := range reads {
		start := time.Now()
		res := reader.run(t, "cat", capability)
		times = append(times, time.Since(start))
		reader.requireOK(t, res)
		requireSameBytes(t, data, res.stdout, fmt.Sprintf("cat %d of %d with %d lying providers", i+1, reads, nLiars))
	}
	t.Logf("cat of %d MiB, %d times, %d liars: %s", len(data)>>20, reads, nLiars, durations(times))

	log := daemonLog(t, readerD)
	var total, claims int64
	for i, l := range liars {
		n := l.Counts()
		total += n.Lies
		claims += n.Claims
		banned := bannedIn(log, l.Peer().ID())
		t.Logf("liar %2d: %d claims, %d lies, banned %v", i, n.Claims, n.Lies, banned)
		check(t, n.Lies <= maxStrikes+networkWindow,
			"liar %d told %d lies: a liar is struck at each and banned at %d (plus the %d requests a read keeps in flight)",
			i, n.Lies, maxStrikes, networkWindow)
		check(t, n.Lies < maxStrikes || banned, "liar %d told %d lies and was never banned", i, n.Lies)
	}
	check(t, claims > 0 && total > 0, "no liar was ever asked (%d claims, %d lies): the test mounted no attack", claims, total)
	t.Logf("liars: %d claims, %d lies in all over %d reads", claims, total, reads)
}

// networkWindow is how many chunks a daemon's read keeps in flight
// (node.networkWindow).
const networkWindow = 16

// bannedIn reports whether the daemon log records a ban of p.
func bannedIn(log string, p peer.ID) bool {
	for _, line := range strings.Split(log, "\n") {
		if strings.Contains(line, "banning misbehaving peer") && strings.Contains(line, p.String()) {
			return true
		}
	}
	return false
}

// durations summarises per-operation times: min, median, max, total.
func durations(ds []time.Duration) string {
	s := slices.Clone(ds)
	slices.Sort(s)
	var sum time.Duration
	for _, d := range s {
		sum += d
	}
	r := func(d time.Duration) time.Duration { return d.Round(time.Millisecond) }
	return fmt.Sprintf("min %v, median %v, max %v, total %v", r(s[0]), r(s[len(s)/2]), r(s[len(s)-1]), r(sum))
}

// TestWrongBytesPeerBanned (hostile peers, point 12): a peer that serves
// wrong bytes is struck for each wrong block and, at the third strike,
// banned: the victim drops its connections and refuses the next one, and
// the one after, and its reads never ask the peer again, although the
// peer still publishes provider records.
func TestWrongBytesPeerBanned(t *testing.T) {
	t.Parallel()
	ownerN, ownerD := daemonWith(t, "Replication.Factor", "0")
	data := randBytes(6*mib + 5)
	root := ownerN.add(t, writeFile(t, t.TempDir(), "payroll.csv", data))
	capability := ownerN.share(t, root)
	liar := startLiars(t, 1, adversary.WrongBytes, ownerD)[0]
	liarID := liar.Peer().ID()
	provideAll(t, []*adversary.Liar{liar}, root)
	victim, victimD := daemonWith(t, "Bootstrap", bootstrapFrom(t, ownerD))

	for i := 0; liar.Counts().Lies < maxStrikes; i++ {
		check(t, i < 10, "after %d reads the liar told only %d lies; it is not being asked", i, liar.Counts().Lies)
		requireSameBytes(t, data, victim.cat(t, capability), fmt.Sprintf("cat %d with a peer serving wrong bytes", i+1))
	}
	waitFor(t, 10*time.Second, func() (bool, string) {
		return bannedIn(daemonLog(t, victimD), liarID), "the victim never logged a ban of " + liarID.String()
	})
	lies := liar.Counts().Lies

	vid, err := peer.Decode(victimD.ID)
	noErr(t, err)
	vai, err := peer.AddrInfoFromString(victimD.tcpAddr(t))
	noErr(t, err)
	h := liar.Peer().Host
	waitFor(t, 10*time.Second, func() (bool, string) {
		return h.Network().Connectedness(vid) != network.Connected, "the victim kept its connection with the banned peer"
	})
	for _, attempt := range []string{"dial", "redial"} {
		requireRefused(t, h, *vai, requireCID(t, root), attempt)
	}
	check(t, !slices.ContainsFunc(peerList(t, victim, false), func(p peerJSON) bool { return p.ID == liarID.String() && p.Connected }),
		"the victim lists the banned peer as connected")

	requireSameBytes(t, data, victim.cat(t, capability), "cat after the ban")
	check(t, liar.Counts().Lies == lies, "the victim asked the banned peer again: %d lies, %d before", liar.Counts().Lies, lies)
	t.Logf("banned after %d wrong blocks; dial and redial refused", lies)
}

// requireRefused checks that the banned host h gets nothing through to the
// victim: its dial fails, or the connection it seems to get (the victim
// refuses only once the handshake names the peer) carries no request and
// is gone at once.
func requireRefused(t testing.TB, h host.Host, victim peer.AddrInfo, root cid.Cid, attempt string) {
	t.Helper()
	ctx, cancel := context.WithTimeout(t.Context(), 10*time.Second)
	defer cancel()
	err := h.Connect(ctx, victim)
	if err == nil {
		_, herr := protocol.HasRoot(ctx, h, victim.ID, root)
		check(t, herr != nil, "%s: the banned peer's request got through", attempt)
		waitFor(t, 10*time.Second, func() (bool, string) {
			return h.Network().Connectedness(victim.ID) != network.Connected,
				attempt + ": the banned peer stays connected"
		})
	}
	t.Logf("%s of the banned peer: %v", attempt, err)
}

// TestFakeReplicasNotCounted (hostile peers, point 5): three peers that
// accept every store offer and acknowledge it as complete, holding
// nothing, are neither counted by `casd add` nor listed by `casd status`:
// with one honest peer, add of a file with the default goal of 3 exits 1
// saying it reached 1 of 3 replicas, and status lists only the honest
// peer.
func TestFakeReplicasNotCounted(t *testing.T) {
	t.Parallel()
	c := startCluster(t, 2)
	const owner, honest = 1, 0
	liars := startLiars(t, 3, adversary.ClaimAll, c.daemons[owner])
	var want []string
	for _, l := range liars {
		want = append(want, l.Peer().ID().String())
	}
	waitConnected(t, c.nodes[owner], want...)

	n := c.nodes[owner]
	res := n.run(t, "add", writeFile(t, t.TempDir(), "will.pdf", randBytes(3*mib+1)))
	var stored int64
	for _, l := range liars {
		stored += l.Counts().Stores
	}
	t.Logf("add: exit %d, %q; the liars acknowledged %d stores of nothing", res.code, strings.TrimSpace(res.stderr), stored)
	// Both verdicts are reported: the count add makes and the list status
	// makes come from different code.
	if res.code != exitFailure || !strings.Contains(res.stderr, "reached 1 of 3 replicas") {
		t.Errorf("add with one honest peer of the 3 asked for must exit 1 saying it reached 1 of 3 replicas: %s", res)
	} else {
		requireErrLine(t, res)
	}
	fields := strings.Fields(res.out())
	check(t, len(fields) == 3 && fields[0] == "added", "add must print \"added <cid> will.pdf\" even when under-replicated: %s", res)
	st := status(t, n, fields[1])
	check(t, slices.Equal(st.Replicas, []string{c.daemons[honest].ID}),
		"status must list only the honest peer %s, not the fakes %q: %+v", c.daemons[honest].ID, want, st)
}
