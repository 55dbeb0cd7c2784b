package integration

import (
	"bytes"
	"encoding/base64"
	"encoding/json"
	"fmt"
	"os"
	"path/filepath"
	"slices"
	"testing"
	"time"

	"github.com/libp2p/go-libp2p/core/peer"
	"github.com/libp2p/go-libp2p/core/record"
	ma "github.com/multiformats/go-multiaddr"
)

const (
	// rememberedFile is the repo file of the remembered peers.
	rememberedFile = "peers.json"
	// rememberMax is gossip.RememberMax, the bound of that file.
	rememberMax = 64
	// rememberedMinPeers is how many peers a restarted node must reach
	// through the peers it remembers.
	rememberedMinPeers = 3
)

// rememberedJSON is the repo's peers.json.
type rememberedJSON struct {
	Version int              `json:"version"`
	Peers   []rememberedPeer `json:"peers"`
}

// rememberedPeer is one element of peers.json's peers.
type rememberedPeer struct {
	ID            string    `json:"id"`
	Record        string    `json:"record"` // base64 (std) of a marshalled record envelope
	Addrs         []string  `json:"addrs"`
	LastConnected time.Time `json:"last_connected"`
	Outbound      bool      `json:"outbound"` // the node dialled the peer; absent when false
}

// readRemembered reads n's peers.json and checks it: mode 0600, version
// 1, at most rememberMax peers (a quarter of them at most inbound-only),
// none twice and not n itself, most recently
// connected first, each with addresses and a record signed by the peer it
// names. It returns the IDs of the peers with a record, in the file's
// order (a casd peer always has one: the host exchanges signed records at
// every connection).
func readRemembered(t testing.TB, n *node) []string {
	t.Helper()
	path := filepath.Join(n.repo, rememberedFile)
	fi, err := os.Stat(path)
	noErr(t, err, "the daemon of "+n.repo+" left no "+rememberedFile)
	check(t, fi.Mode().Perm() == 0o600, "%s: mode %v, want 0600", path, fi.Mode().Perm())
	data, err := os.ReadFile(path)
	noErr(t, err)
	dec := json.NewDecoder(bytes.NewReader(data))
	dec.DisallowUnknownFields()
	var f rememberedJSON
	noErr(t, dec.Decode(&f), fmt.Sprintf("decode %s: %s", path, clip(data, 2000)))
	check(t, f.Version == 1, "%s: version %d, want 1", path, f.Version)
	check(t, len(f.Peers) <= rememberMax, "%s lists %d peers, more than %d", path, len(f.Peers), rememberMax)
	var ids, all []string
	inbound := 0
	for i, p := range f.Peers {
		if !p.Outbound {
			inbound++
		}
		check(t, p.ID != n.id, "%s lists the node itself (%s)", path, p.ID)
		check(t, !slices.Contains(all, p.ID), "%s lists peer %s twice", path, p.ID)
		all = append(all, p.ID)
		if i > 0 {
			prev := f.Peers[i-1]
			check(t, !p.LastConnected.After(prev.LastConnected),
				"%s: peer %d (%s) connected at %v, after peer %d (%v): most recent must come first", path, i, p.ID, p.LastConnected, i-1, prev.LastConnected)
		}
		check(t, !p.LastConnected.IsZero() && !p.LastConnected.After(time.Now().Add(time.Second)),
			"%s: peer %s last_connected %v, want a time before now", path, p.ID, p.LastConnected)
		requireRememberedRecord(t, path, p)
		if p.Record != "" {
			ids = append(ids, p.ID)
		}
	}
	check(t, inbound <= rememberMax/4, "%s lists %d peers that only connected inbound, more than %d", path, inbound, rememberMax/4)
	return ids
}

// requireRememberedRecord fails unless p has addresses and, if it has a
// record (gossip may know none of a peer), a peer record signed by p.ID
// itself.
func requireRememberedRecord(t testing.TB, path string, p rememberedPeer) {
	t.Helper()
	check(t, len(p.Addrs) > 0, "%s: peer %s has no addrs", path, p.ID)
	for _, a := range p.Addrs {
		_, err := ma.NewMultiaddr(a)
		noErr(t, err, fmt.Sprintf("%s: peer %s: addr %q", path, p.ID, a))
	}
	if p.Record == "" {
		return
	}
	raw, err := base64.StdEncoding.DecodeString(p.Record)
	noErr(t, err, fmt.Sprintf("%s: peer %s: record is not base64", path, p.ID))
	env, rec, err := record.ConsumeEnvelope(raw, peer.PeerRecordEnvelopeDomain)
	noErr(t, err, fmt.Sprintf("%s: peer %s: record is no valid signed peer record", path, p.ID))
	pr, ok := rec.(*peer.PeerRecord)
	check(t, ok, "%s: peer %s: record holds a %T, want a peer record", path, p.ID, rec)
	signer, err := peer.IDFromPublicKey(env.PublicKey)
	noErr(t, err)
	check(t, pr.PeerID.String() == p.ID && signer == pr.PeerID,
		"%s: peer %s: record names %s, signed by %s: want both the peer itself", path, p.ID, pr.PeerID, signer)
	check(t, len(pr.Addrs) > 0, "%s: peer %s: its record has no addresses", path, p.ID)
}

// holdFor calls cond every period for d and fails the test as soon as it
// returns false, with its message: it checks that something does not
// happen within a window that would have seen it happen.
func holdFor(t testing.TB, d, period time.Duration, cond func() (bool, string)) {
	t.Helper()
	end := time.Now().Add(d)
	tick := time.NewTicker(period)
	defer tick.Stop()
	for {
		ok, msg := cond()
		check(t, ok, "%s", msg)
		if !time.Now().Before(end) {
			return
		}
		select {
		case <-t.Context().Done():
			t.Fatalf("test ended while holding: %s", msg)
		case <-tick.C:
		}
	}
}

// connectedVia returns, sorted, the nodes among idx of c that n lists as
// connected and (unless src is "") with source src, and everything n
// lists, for messages.
func (c *cluster) connectedVia(t testing.TB, n *node, idx []int, src string) ([]int, []peerJSON) {
	t.Helper()
	ps := allPeers(t, n)
	var out []int
	for _, p := range ps {
		if j := c.byID(p.ID); p.Connected && slices.Contains(idx, j) && (src == "" || p.hasSource(src)) {
			out = append(out, j)
		}
	}
	slices.Sort(out)
	return out, ps
}

// TestRememberedPeersAfterRestart (issue 9): nodes X and Y, bootstrapped
// only from B, join B and four others and connect to at least three of
// those four; they stop and remember them in peers.json. B stops too, so
// the only bootstrap peer of X and Y is down when they start again. X,
// with its peers.json, connects to at least three of the four within 60 s,
// each listed with source "remembered"; Y, whose peers.json is deleted,
// connects to none: without the remembered dial the test fails.
func TestRememberedPeersAfterRestart(t *testing.T) {
	c := startCluster(t, 5) // node 0 is B
	others := c.others(0)
	_, ks := c.waitKnowledge(t, others, 60*time.Second, "lists the 3 others but B", func(k knowledge) bool {
		n := 0
		for _, j := range others {
			if _, ok := k.peers[j]; ok {
				n++
			}
		}
		return n == len(others)-1
	})
	t.Logf("the four others know each other:\n%s", c.describeAll(ks))

	x, y := c.joinFromB(t), c.joinFromB(t)
	// Connected is enough: gossip keeps the signed record each peer sends
	// in identify, so what X and Y remember carries records.
	pollEvery(t, 60*time.Second, discoveryPoll, func() (bool, string) {
		cx, px := c.connectedVia(t, x.n, others, "")
		cy, py := c.connectedVia(t, y.n, others, "")
		return len(cx) >= rememberedMinPeers && len(cy) >= rememberedMinPeers,
			fmt.Sprintf("X and Y must connect to >= %d of nodes %v: X is connected to %v (lists %+v), Y to %v (lists %+v)",
				rememberedMinPeers, others, cx, px, cy, py)
	})
	stopAll(t, []*daemon{x, y})
	var remembered [2][]string
	for i, d := range []*daemon{x, y} {
		ids := readRemembered(t, d.n)
		remembered[i] = ids
		known := c.indexes(t, slices.DeleteFunc(slices.Clone(ids), func(id string) bool { return c.byID(id) < 0 }))
		data, _ := os.ReadFile(filepath.Join(d.n.repo, rememberedFile))
		check(t, len(known) >= rememberedMinPeers, "%s of %s remembers nodes %v of %v with records (%q), want >= %d of the four:\n%s",
			rememberedFile, "XY"[i:i+1], known, others, ids, rememberedMinPeers, data)
	}
	t.Logf("X remembers %q, Y %q (with records)", remembered[0], remembered[1])
	c.daemons[0].Stop(t)

	var tookX time.Duration
	t.Run("remembered", func(t *testing.T) {
		start := time.Now()
		d := startDaemon(t, x.n)
		pollEvery(t, 60*time.Second, discoveryPoll, func() (bool, string) {
			conn, _ := c.connectedVia(t, d.n, others, "")
			viaMemory, ps := c.connectedVia(t, d.n, others, "remembered")
			return len(viaMemory) >= rememberedMinPeers,
				fmt.Sprintf("restarted X, its bootstrap peer down, must connect to >= %d of nodes %v listed with source \"remembered\": connected to %v, %v of them remembered; lists %+v",
					rememberedMinPeers, others, conn, viaMemory, ps)
		})
		tookX = time.Since(start)
		t.Logf("restarted X reached %d remembered peers %.1f s after it was started", rememberedMinPeers, tookX.Seconds())
	})
	t.Run("without peers.json", func(t *testing.T) {
		noErr(t, os.Remove(filepath.Join(y.n.repo, rememberedFile)))
		// The window: at least 7 gossip rounds of the local profile, and
		// twice what X took to connect.
		window := max(15*time.Second, 2*tookX)
		d := startDaemon(t, y.n)
		holdFor(t, window, discoveryPoll, func() (bool, string) {
			ps := allPeers(t, d.n)
			conn := slices.DeleteFunc(ps, func(p peerJSON) bool { return !p.Connected })
			return len(conn) == 0, fmt.Sprintf("restarted Y, its bootstrap peer down and its %s deleted, has nothing to dial, yet is connected to %+v",
				rememberedFile, conn)
		})
		t.Logf("restarted Y without %s stayed alone for %v", rememberedFile, window)
	})
}

// joinFromB starts a new node bootstrapped only from node 0 of c.
func (c *cluster) joinFromB(t testing.TB) *daemon {
	t.Helper()
	n := newNode(t)
	setConfig(t, n, "Bootstrap", bootstrapFrom(t, c.daemons[0]))
	return startDaemon(t, n)
}
