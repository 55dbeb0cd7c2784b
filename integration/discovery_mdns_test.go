package integration

import (
	"context"
	"fmt"
	"net/netip"
	"slices"
	"strings"
	"testing"
	"time"
)

const (
	// mdnsDiscoveryTimeout bounds how long two daemons on one LAN may take
	// to find each other by mDNS and connect (zeroconf queries at start,
	// then after 4 s, then backs off; a race build on two busy cores is slow
	// to start).
	mdnsDiscoveryTimeout = 90 * time.Second
	// mdnsQuietWindow is how long two daemons without mDNS are watched for
	// a connection that must not come.
	mdnsQuietWindow = 15 * time.Second
	// mdnsPoll is the period of the peers polls of these tests: each poll
	// is a CLI command per node.
	mdnsPoll = 500 * time.Millisecond
)

// TestMDNSInNamespaces runs two daemons, each in a network namespace of
// its own plugged into a bridge in a third (a LAN with no link to the
// machine's network and no bootstrap peers), and checks that they find
// each other by mDNS, list each other with source "mdns", and exchange a
// file. Without mDNS they never connect: what connects them is mDNS.
func TestMDNSInNamespaces(t *testing.T) {
	requireNetAdmin(t)
	t.Run("mdns", func(t *testing.T) {
		a, b := lanPair(t, true)
		start := time.Now()
		waitMDNSPeer(t, a, b)
		waitMDNSPeer(t, b, a)
		t.Logf("mDNS discovery: both daemons list each other connected with source mdns %v after both were ready", time.Since(start).Round(time.Millisecond))

		data := randBytes(mib)
		root := a.n.add(t, writeFile(t, a.n.work, "lan.bin", data))
		tok := a.n.share(t, root)
		requireSameBytes(t, data, b.n.cat(t, tok), "cat by capability at B of A's file")
	})
	t.Run("default profile", func(t *testing.T) {
		// mDNS is on in the default profile: repos made by a plain
		// `casd init`, nothing configured, find each other on a LAN.
		a, b := lanPairProfile(t, "default")
		start := time.Now()
		waitMDNSPeer(t, a, b)
		waitMDNSPeer(t, b, a)
		t.Logf("default profile: both daemons list each other with source mdns %v after both were ready", time.Since(start).Round(time.Millisecond))
	})
	t.Run("without mdns", func(t *testing.T) {
		a, b := lanPair(t, false)
		never(t, mdnsQuietWindow, mdnsPoll, func() string {
			for _, p := range [][2]*lanNode{{a, b}, {b, a}} {
				ps := peerList(t, p[0].cli, true)
				if slices.ContainsFunc(ps, func(q peerJSON) bool { return q.ID == p[1].d.ID }) {
					return fmt.Sprintf("with Discovery.MDNS false on both, %s knows %s: %+v", p[0].d.ID, p[1].d.ID, ps)
				}
			}
			return ""
		})
	})
}

// lanNode is a node whose daemon runs in a lab namespace.
type lanNode struct {
	n   *node   // runs its commands in the namespace
	cli *node   // the same repo, its commands run in the root namespace
	d   *daemon // its daemon
	h   *labHost
}

// lanPair makes a LAN of two hosts and starts a daemon on each: a repo
// of the local profile listening on every address of its namespace at
// the default ports, with no bootstrap peers, replication factor 1 and
// Discovery.MDNS as mdns. It returns when both are ready.
func lanPair(t *testing.T, mdns bool) (a, b *lanNode) {
	t.Helper()
	return lanPairProfile(t, "local",
		"Discovery.MDNS", fmt.Sprint(mdns),
		"Addresses.Swarm", `["/ip4/0.0.0.0/tcp/4001","/ip4/0.0.0.0/udp/4001/quic-v1"]`,
		"Bootstrap", `[]`,
		"Replication.Factor", "1")
}

// lanPairProfile makes a LAN of two hosts and starts a daemon on each,
// its repo made with `casd init --profile=profile` and then the config
// keys of kv (key, JSON value, ...). It returns when both are ready.
func lanPairProfile(t *testing.T, profile string, kv ...string) (a, b *lanNode) {
	t.Helper()
	lan := newLab(t).newLAN()
	nodes := []*lanNode{{h: lan.addHost()}, {h: lan.addHost()}}
	for _, ln := range nodes {
		ln.n = newEmptyNode(t)
		res := ln.n.run(t, "init", "--profile="+profile)
		ln.n.requireOK(t, res)
		ln.n.id = parseInit(t, ln.n, res)
		setConfig(t, ln.n, kv...)
		ln.n.netns = ln.h.ns
		ln.cli = &node{repo: ln.n.repo, home: ln.n.home, work: ln.n.work, id: ln.n.id}
		ln.d = spawnDaemon(t, ln.n)
	}
	for _, ln := range nodes {
		ln.d.waitReady(t)
		requireLabAddrs(t, ln)
	}
	return nodes[0], nodes[1]
}

// requireLabAddrs checks that the daemon of ln listens on its LAN address
// and on no address of the machine's own network.
func requireLabAddrs(t testing.TB, ln *lanNode) {
	t.Helper()
	var onLAN bool
	for _, a := range ln.d.Addrs {
		ip, ok := addrIP(a)
		check(t, ok, "daemon in %s: listen address %q has no IP", ln.h.ns, a)
		check(t, ip.IsLoopback() || ip.IsLinkLocalUnicast() || labSubnet.Contains(ip),
			"daemon in %s listens on %s, outside the lab (%s, loopback, link-local)", ln.h.ns, a, labSubnet)
		onLAN = onLAN || ip == ln.h.addr
	}
	check(t, onLAN, "daemon in %s lists no address on %s: %q", ln.h.ns, ln.h.addr, ln.d.Addrs)
}

// waitMDNSPeer polls `casd peers --all --json` of a, from the root
// namespace, until it lists b connected with source "mdns", then checks
// that it knows b by b's address on the LAN.
func waitMDNSPeer(t testing.TB, a, b *lanNode) {
	t.Helper()
	var p peerJSON
	pollEvery(t, mdnsDiscoveryTimeout, mdnsPoll, func() (bool, string) {
		ps := allPeers(t, a.cli)
		i := slices.IndexFunc(ps, func(p peerJSON) bool { return p.ID == b.d.ID })
		if i < 0 {
			return false, fmt.Sprintf("daemon in %s does not know %s: %+v", a.h.ns, b.d.ID, ps)
		}
		p = ps[i]
		return p.Connected && p.hasSource("mdns"),
			fmt.Sprintf("daemon in %s lists %s as %+v, want connected with source mdns", a.h.ns, b.d.ID, p)
	})
	check(t, slices.ContainsFunc(p.Addrs, func(s string) bool { ip, ok := addrIP(s); return ok && ip == b.h.addr }),
		"daemon in %s knows %s by %q, none of them its LAN address %s", a.h.ns, b.d.ID, p.Addrs, b.h.addr)
}

// never calls bad every period for window and fails the test as soon as
// it returns a message: it watches for something that must not happen.
func never(t testing.TB, window, period time.Duration, bad func() string) {
	t.Helper()
	ctx, cancel := context.WithTimeout(t.Context(), window)
	defer cancel()
	tick := time.NewTicker(period)
	defer tick.Stop()
	for {
		if msg := bad(); msg != "" {
			t.Fatal(msg)
		}
		select {
		case <-ctx.Done():
			check(t, t.Context().Err() == nil, "test context ended while watching: %v", t.Context().Err())
			return
		case <-tick.C:
		}
	}
}

// addrIP returns the IP address of a multiaddr "/ip4/<ip>/..." or
// "/ip6/<ip>/...".
func addrIP(a string) (netip.Addr, bool) {
	rest, ok := strings.CutPrefix(a, "/ip4/")
	if !ok {
		if rest, ok = strings.CutPrefix(a, "/ip6/"); !ok {
			return netip.Addr{}, false
		}
	}
	s, _, _ := strings.Cut(rest, "/")
	ip, err := netip.ParseAddr(s)
	return ip, err == nil
}
