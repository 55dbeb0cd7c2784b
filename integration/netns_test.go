package integration

// A network lab: Linux network namespaces that a test creates, links with
// veth pairs and bridges, and deletes when it ends. Nothing of it lives in
// the machine's own (root) namespace and no namespace has a route out, so
// the traffic of a lab's daemons stays inside the lab.
//
// A node runs its commands and its daemon inside a namespace when
// node.netns is set ([node.argv] prefixes `ip netns exec <ns>`). Its CLI
// commands may as well run in the root namespace: they reach the daemon
// over the unix socket in the repo, which is a file, not a network address.

import (
	"bytes"
	"context"
	"fmt"
	"net/netip"
	"os"
	"os/exec"
	"strings"
	"sync/atomic"
	"testing"
	"time"
)

// labSubnet is where lab addresses come from.
var labSubnet = netip.MustParsePrefix("10.77.0.0/24")

// ipTimeout bounds one `ip` command.
const ipTimeout = 30 * time.Second

// labSeq numbers the namespaces of this test process.
var labSeq atomic.Int64

// requireNetAdmin skips the test unless it can make network namespaces
// (root and the `ip` tool); under CI (CI=true) that is a failure instead.
// It returns the path of `ip`.
func requireNetAdmin(t testing.TB) string {
	t.Helper()
	ip, err := exec.LookPath("ip")
	why := ""
	switch {
	case os.Geteuid() != 0:
		why = "not root"
	case err != nil:
		why = fmt.Sprintf("no ip command: %v", err)
	}
	if why == "" {
		return ip
	}
	if os.Getenv("CI") == "true" {
		t.Fatalf("network namespace tests need root and iproute2: %s", why)
	}
	t.Skipf("network namespace tests need root and iproute2: %s", why)
	return ""
}

// lab is the set of network namespaces of one test.
type lab struct {
	t  testing.TB
	ip string // path of the ip command
}

// newLab returns an empty lab; the namespaces it makes are deleted when
// the test ends, whether it passed or not.
func newLab(t testing.TB) *lab {
	t.Helper()
	return &lab{t: t, ip: requireNetAdmin(t)}
}

// run runs `ip args...` and fails the test if it fails.
func (l *lab) run(args ...string) string {
	l.t.Helper()
	out, err := l.try(args...)
	noErr(l.t, err)
	return out
}

// try runs `ip args...` and returns its output, or an error naming it.
func (l *lab) try(args ...string) (string, error) {
	ctx, cancel := context.WithTimeout(context.Background(), ipTimeout)
	defer cancel()
	var out bytes.Buffer
	cmd := exec.CommandContext(ctx, l.ip, args...)
	cmd.Stdout = &out
	cmd.Stderr = &out
	if err := cmd.Run(); err != nil {
		return out.String(), fmt.Errorf("ip %s: %w: %s", strings.Join(args, " "), err, strings.TrimSpace(out.String()))
	}
	return out.String(), nil
}

// newNS creates a namespace named "casd-<pid>-<n>-<role>" with lo up, and
// deletes it (and so every interface in it) when the test ends.
func (l *lab) newNS(role string) string {
	l.t.Helper()
	ns := fmt.Sprintf("casd-%d-%d-%s", os.Getpid(), labSeq.Add(1), role)
	l.run("netns", "add", ns)
	l.t.Cleanup(func() {
		if out, err := l.try("netns", "delete", ns); err != nil {
			l.t.Errorf("delete namespace %s: %v (%s)", ns, err, out)
		}
	})
	l.run("-n", ns, "link", "set", "lo", "up")
	return ns
}

// bridge creates the bridge br in ns and brings it up.
func (l *lab) bridge(ns, br string) {
	l.t.Helper()
	l.run("-n", ns, "link", "add", br, "type", "bridge")
	l.run("-n", ns, "link", "set", br, "up")
}

// veth creates a veth pair directly between namespaces: ifA in nsA, ifB
// in nsB (it never appears in the root namespace), both up.
func (l *lab) veth(nsA, ifA, nsB, ifB string) {
	l.t.Helper()
	l.run("-n", nsA, "link", "add", ifA, "type", "veth", "peer", "name", ifB, "netns", nsB)
	l.run("-n", nsA, "link", "set", ifA, "up")
	l.run("-n", nsB, "link", "set", ifB, "up")
}

// attach puts the interface ifc of ns into the bridge br of the same ns.
func (l *lab) attach(ns, ifc, br string) {
	l.t.Helper()
	l.run("-n", ns, "link", "set", ifc, "master", br)
}

// addr gives ifc in ns the address a (with its prefix length).
func (l *lab) addr(ns, ifc string, a netip.Prefix) {
	l.t.Helper()
	l.run("-n", ns, "addr", "add", a.String(), "dev", ifc)
}

// multicast routes multicast (mDNS's 224.0.0.251 among it) out of ifc in ns.
func (l *lab) multicast(ns, ifc string) {
	l.t.Helper()
	l.run("-n", ns, "route", "add", "224.0.0.0/4", "dev", ifc)
}

// labHost is one host namespace of a LAN.
type labHost struct {
	ns   string
	ifc  string     // its interface on the LAN
	addr netip.Addr // its address on the LAN
}

// lan is a switch (a bridge in a namespace of its own) and the hosts
// plugged into it.
type lan struct {
	l     *lab
	ns    string // the switch's namespace
	br    string // the bridge in it
	hosts []*labHost
}

// newLAN creates a namespace holding an empty bridge.
func (l *lab) newLAN() *lan {
	l.t.Helper()
	s := &lan{l: l, ns: l.newNS("lan"), br: "br0"}
	l.bridge(s.ns, s.br)
	return s
}

// addHost creates a host namespace plugged into the LAN by a veth pair,
// with the next address of labSubnet (10.77.0.1, .2, ...) on its eth0, a
// route for the subnet and for multicast, and no other route.
func (s *lan) addHost() *labHost {
	l := s.l
	l.t.Helper()
	i := len(s.hosts) + 1
	check(l.t, i < 255, "a lab LAN holds at most 254 hosts")
	h := &labHost{ns: l.newNS(fmt.Sprintf("h%d", i)), ifc: "eth0", addr: hostAddr(i)}
	port := fmt.Sprintf("p%d", i)
	l.veth(s.ns, port, h.ns, h.ifc)
	l.attach(s.ns, port, s.br)
	l.addr(h.ns, h.ifc, netip.PrefixFrom(h.addr, labSubnet.Bits()))
	l.multicast(h.ns, h.ifc)
	s.hosts = append(s.hosts, h)
	return h
}

// hostAddr is the i-th address of labSubnet.
func hostAddr(i int) netip.Addr {
	a := labSubnet.Addr().As4()
	a[3] = byte(i)
	return netip.AddrFrom4(a)
}

// routes lists the routes of ns, one per line.
func (l *lab) routes(ns string) string {
	l.t.Helper()
	return l.run("-n", ns, "route", "show")
}

// argv returns the program and arguments that run bin with args as n's
// commands run: inside n.netns when it is set.
func (n *node) argv(bin string, args ...string) (string, []string) {
	if n.netns == "" {
		return bin, args
	}
	return ipPath(), append([]string{"netns", "exec", n.netns, bin}, args...)
}

// ipPath is the ip command; a node with a netns was placed by a lab, which
// found it.
func ipPath() string {
	p, err := exec.LookPath("ip")
	if err != nil {
		return "ip"
	}
	return p
}
