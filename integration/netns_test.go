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
	"errors"
	"fmt"
	"net/netip"
	"os"
	"os/exec"
	"regexp"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"syscall"
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
// the test ends, whether it passed or not. The first lab of a process
// deletes the namespaces left by test processes that were killed before
// their cleanups ran.
func newLab(t testing.TB) *lab {
	t.Helper()
	l := &lab{t: t, ip: requireNetAdmin(t)}
	sweepOnce.Do(l.sweep)
	return l
}

var sweepOnce sync.Once

// labNSRE matches the namespaces labs make and captures the pid of the
// test process that made it.
var labNSRE = regexp.MustCompile(`^casd-([0-9]+)-[0-9]+-`)

// sweep deletes the lab namespaces of test processes that no longer run.
func (l *lab) sweep() {
	out, err := l.try("netns", "list")
	if err != nil {
		l.t.Logf("list namespaces: %v", err)
		return
	}
	for _, line := range strings.Split(out, "\n") {
		ns, _, _ := strings.Cut(strings.TrimSpace(line), " ")
		m := labNSRE.FindStringSubmatch(ns)
		if m == nil {
			continue
		}
		pid, err := strconv.Atoi(m[1])
		if err != nil || pid == os.Getpid() || !processGone(pid) {
			continue
		}
		if _, err := l.try("netns", "delete", ns); err != nil {
			l.t.Logf("delete stale namespace %s: %v", ns, err)
			continue
		}
		l.t.Logf("deleted namespace %s of a test process (pid %d) that is gone", ns, pid)
	}
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

// processGone reports whether no process has the id pid.
func processGone(pid int) bool {
	p, err := os.FindProcess(pid)
	if err != nil {
		return true
	}
	return errors.Is(p.Signal(syscall.Signal(0)), os.ErrProcessDone)
}

// TestLabIsolation checks the lab's rules: building a LAN adds nothing to
// the root namespace, a host reaches the lab's subnet through its LAN
// interface and nothing else (no default route), and the namespaces are
// gone when the test that made them ends.
func TestLabIsolation(t *testing.T) {
	l := newLab(t)
	rootLinks := l.run("-o", "link", "show")
	var made []string
	t.Run("lan", func(t *testing.T) {
		l := newLab(t)
		s := l.newLAN()
		a, b := s.addHost(), s.addHost()
		made = []string{s.ns, a.ns, b.ns}
		check(t, l.run("-o", "link", "show") == rootLinks, "building a LAN changed the root namespace's links")
		for _, h := range []*labHost{a, b} {
			other := b
			if h == b {
				other = a
			}
			via := l.run("-n", h.ns, "route", "get", other.addr.String())
			check(t, strings.Contains(via, "dev "+h.ifc), "%s reaches %s by %q, want dev %s", h.ns, other.addr, via, h.ifc)
			out, err := l.try("-n", h.ns, "route", "get", "192.0.2.1")
			check(t, err != nil, "%s has a route out of the lab: %s", h.ns, out)
			check(t, strings.Contains(out, "unreachable"), "%s: route get 192.0.2.1: %v, want network unreachable", h.ns, err)
			routes := l.run("-n", h.ns, "route", "show")
			check(t, !strings.Contains(routes, "default"), "%s has a default route: %s", h.ns, routes)
			check(t, strings.Contains(l.run("-n", h.ns, "addr", "show", "dev", h.ifc), h.addr.String()+"/24"), "%s lacks %s on %s", h.ns, h.addr, h.ifc)
		}
	})
	list := l.run("netns", "list")
	for _, ns := range made {
		check(t, !strings.Contains(list, ns), "namespace %s outlived its test: %s", ns, list)
	}
	check(t, len(made) == 3, "the lan subtest made %d namespaces, want 3", len(made))

	// A namespace left by a test process that was killed is swept.
	gone := exec.Command("true")
	noErr(t, gone.Run(), "run true")
	stale := fmt.Sprintf("casd-%d-1-stale", gone.Process.Pid)
	l.run("netns", "add", stale)
	t.Cleanup(func() { _, _ = l.try("netns", "delete", stale) }) // if sweep failed to
	l.sweep()
	check(t, !strings.Contains(l.run("netns", "list"), stale), "sweep left %s of the exited pid %d", stale, gone.Process.Pid)
}
