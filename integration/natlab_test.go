package integration

// The NAT lab: an "internet" and two homes behind home routers, built of
// network namespaces as netns_test.go builds its LANs (veth pairs made
// directly between the test's namespaces, nothing in the root namespace,
// every namespace deleted when the test ends, also when it fails).
//
//	            internet: bridge br0 in its own namespace, natInternet
//	   ┌──────────────┬──────────────┬──────────────┐
//	 host 11.77.0.11  host .12 ...   wan0 .1        wan0 .2
//	                                 router 1       router 2
//	                                 lan0 192.168.1.1   lan0 192.168.2.1
//	                                 home 1 bridge  home 2 bridge
//	                                 hosts .11 ...  hosts .11 ...
//
// What the lab promises:
//
//   - Internet addresses are public to libp2p (manet.IsPublicAddr), home
//     addresses are private; newNATLab checks both for every address it
//     hands out. The internet range, natInternet, is a slice of 11.0.0.0/8
//     used only inside the lab: no packet leaves it, since no namespace of
//     the lab has a link to the machine's network.
//   - Internet hosts reach each other and the routers' WAN addresses on the
//     internet segment, and have no default route: they cannot address a
//     home's LAN (a test that plays an attacker next to a router may add a
//     route via its WAN address and still gets nothing through).
//   - Home hosts have a default route via their router, which forwards
//     (net.ipv4.ip_forward=1 in its namespace) from its LAN to the internet
//     and masquerades behind its WAN address: an internet host sees the
//     router's WAN address as the source. The router itself has no default
//     route: nothing is routed beyond the internet segment.
//   - A router lets in only what belongs to a connection a home host (or
//     the router) opened: INPUT and FORWARD policy DROP with conntrack
//     ESTABLISHED,RELATED accepted. Unsolicited packets, to a home host or
//     to the router's own WAN address, are dropped silently: no RST, no
//     ICMP unreachable (a home router answers nothing; at the lab's
//     sub-millisecond round trips an answer would kill every hole punch).
//     The router is silent on IPv6 too (ip6tables, same policies; the lab
//     has IPv6 link-local addresses only).
//   - natMasquerade maps every flow from one home address and port to one
//     WAN port (endpoint-independent mapping; Linux keeps the host's port
//     when it is free); natRandomFully (MASQUERADE --random-fully) picks a
//     new random WAN port for every flow, so hole punching cannot guess it.
//     So a UDP hole punch between the homes (each learns its public
//     endpoint from an internet host, then both send to each other's) gets
//     through behind MASQUERADE and never behind --random-fully.
//
// Tests run clients and servers inside the lab with inNS: a socket opened
// on an OS thread that joined a namespace belongs to that namespace for
// its whole life. Daemons run in a host's namespace through node.netns.

import (
	"errors"
	"fmt"
	"net"
	"net/netip"
	"os"
	"os/exec"
	"runtime"
	"slices"
	"strings"
	"sync"
	"sync/atomic"
	"syscall"
	"testing"
	"time"

	ma "github.com/multiformats/go-multiaddr"
	manet "github.com/multiformats/go-multiaddr/net"
	"golang.org/x/sys/unix"
)

// natInternet is the lab's internet. 11.0.0.0/8 is allocated, routed
// address space (so libp2p counts it public, unlike 10/8, 100.64/10,
// 198.18/15 and the documentation ranges), which is why only the lab may
// use it: its namespaces have no link out, so these addresses never meet
// the real 11/8. Routers take .1 and .2, internet hosts .11 on.
var natInternet = netip.MustParsePrefix("11.77.0.0/24")

const (
	// natHostBase is the last octet before a segment's first host.
	natHostBase = 10
	// natMaxHosts bounds the hosts of one segment.
	natMaxHosts = 200
	// natAnswerTimeout bounds an exchange that must succeed: the lab's
	// round trips are sub-millisecond; this is for a loaded machine.
	natAnswerTimeout = 10 * time.Second
	// natSilenceTimeout is how long a probe that must get no answer
	// waits. An answer (RST, ICMP) comes within milliseconds.
	natSilenceTimeout = 1500 * time.Millisecond
)

// natMode is how a lab's routers masquerade.
type natMode string

const (
	// natMasquerade is iptables MASQUERADE: endpoint-independent mapping.
	natMasquerade natMode = "MASQUERADE"
	// natRandomFully is MASQUERADE --random-fully: a random port per flow.
	natRandomFully natMode = "MASQUERADE --random-fully"
)

// natModes are the kinds of home router the lab builds.
var natModes = []natMode{natMasquerade, natRandomFully}

// target is the iptables target of m.
func (m natMode) target() []string {
	return strings.Fields("-j " + string(m))
}

// natLab is an internet segment and two homes behind routers.
type natLab struct {
	l        *lab
	mode     natMode     // how both routers masquerade
	ipt      natTables   // the iptables commands the routers were built with
	internet *natSegment // internet.ns is the internet bridge's namespace
	homes    [2]*natHome // home 1 and home 2
}

// natSegment is a bridge in a namespace of its own, a subnet, and the
// hosts plugged into it.
type natSegment struct {
	l      *lab
	ns     string // the bridge's namespace
	br     string
	subnet netip.Prefix
	gw     netip.Addr // the default route of its hosts; invalid for none
	hosts  []*labHost
}

// natHome is a home: its router and its LAN.
type natHome struct {
	router string     // the router's namespace
	wan    netip.Addr // the router's address on the internet
	lan    *natSegment
}

// newNATLab builds an internet segment and two homes whose routers
// masquerade as mode says, and returns it with no hosts yet. Everything
// is deleted when the test ends.
func newNATLab(t testing.TB, mode natMode) *natLab {
	t.Helper()
	n := &natLab{l: newLab(t), mode: mode, ipt: requireIPTables(t)}
	n.internet = n.segment("inet", natInternet, netip.Addr{})
	for i := range n.homes {
		n.homes[i] = n.home(i + 1)
	}
	return n
}

// segment creates the namespace and bridge of a segment.
func (n *natLab) segment(role string, subnet netip.Prefix, gw netip.Addr) *natSegment {
	n.l.t.Helper()
	s := &natSegment{l: n.l, ns: n.l.newNS(role), br: "br0", subnet: subnet, gw: gw}
	n.l.bridge(s.ns, s.br)
	return s
}

// home builds home i (1 or 2): LAN 192.168.i.0/24 and a router with
// WAN address .i of the internet and LAN address 192.168.i.1.
func (n *natLab) home(i int) *natHome {
	l := n.l
	l.t.Helper()
	lanNet := netip.MustParsePrefix(fmt.Sprintf("192.168.%d.0/24", i))
	gw := nthAddr(lanNet, 1)
	h := &natHome{router: l.newNS(fmt.Sprintf("r%d", i)), wan: nthAddr(natInternet, i)}
	n.firewall(h.router) // before its links exist: the router is never open
	h.lan = n.segment(fmt.Sprintf("home%d", i), lanNet, gw)
	n.checkPublic(h.wan, true)
	n.checkPublic(gw, false)

	wanPort := fmt.Sprintf("r%d", i)
	l.veth(n.internet.ns, wanPort, h.router, "wan0")
	l.attach(n.internet.ns, wanPort, n.internet.br)
	l.addr(h.router, "wan0", netip.PrefixFrom(h.wan, natInternet.Bits()))
	l.veth(h.lan.ns, "gw", h.router, "lan0")
	l.attach(h.lan.ns, "gw", h.lan.br)
	l.addr(h.router, "lan0", netip.PrefixFrom(gw, lanNet.Bits()))
	l.run("netns", "exec", h.router, "sysctl", "-qw", "net.ipv4.ip_forward=1")
	return h
}

// firewall makes the router in ns a home router: masquerade out of wan0,
// let in only what belongs to a known connection, answer nothing else.
// Rules name wan0 and lan0, which need not exist yet.
func (n *natLab) firewall(ns string) {
	n.l.t.Helper()
	for _, bin := range []string{n.ipt.v4, n.ipt.v6} {
		for _, chain := range []string{"INPUT", "FORWARD"} {
			n.l.run("netns", "exec", ns, bin, "-P", chain, "DROP")
		}
		for _, rule := range []string{
			"-A INPUT -i lo -j ACCEPT",
			"-A INPUT -i lan0 -j ACCEPT",
			"-A INPUT -m conntrack --ctstate ESTABLISHED,RELATED -j ACCEPT",
			"-A FORWARD -i lan0 -o wan0 -j ACCEPT",
			"-A FORWARD -i wan0 -o lan0 -m conntrack --ctstate ESTABLISHED,RELATED -j ACCEPT",
		} {
			n.l.run(append([]string{"netns", "exec", ns, bin}, strings.Fields(rule)...)...)
		}
	}
	masq := append([]string{"netns", "exec", ns, n.ipt.v4, "-t", "nat", "-A", "POSTROUTING", "-o", "wan0"}, n.mode.target()...)
	n.l.run(masq...)
}

// addInternetHost plugs a new host into the internet: the next address
// of natInternet from .11, no default route.
func (n *natLab) addInternetHost() *labHost {
	n.l.t.Helper()
	h := n.internet.addHost("i")
	n.checkPublic(h.addr, true)
	return h
}

// addHomeHost plugs a new host into home i (1 or 2): the next address of
// its LAN from .11, default route via its router.
func (n *natLab) addHomeHost(i int) *labHost {
	n.l.t.Helper()
	check(n.l.t, i == 1 || i == 2, "the NAT lab has homes 1 and 2, not %d", i)
	h := n.homes[i-1].lan.addHost(fmt.Sprintf("h%d-", i))
	n.checkPublic(h.addr, false)
	return h
}

// wan is the WAN address of home i's router.
func (n *natLab) wan(i int) netip.Addr {
	return n.homes[i-1].wan
}

// addHost creates a host namespace on s, named role and its number.
func (s *natSegment) addHost(role string) *labHost {
	l := s.l
	l.t.Helper()
	k := len(s.hosts) + 1
	check(l.t, k <= natMaxHosts, "a NAT lab segment holds at most %d hosts", natMaxHosts)
	h := &labHost{ns: l.newNS(fmt.Sprintf("%s%d", role, k)), ifc: "eth0", addr: nthAddr(s.subnet, natHostBase+k)}
	port := fmt.Sprintf("p%d", k)
	l.veth(s.ns, port, h.ns, h.ifc)
	l.attach(s.ns, port, s.br)
	l.addr(h.ns, h.ifc, netip.PrefixFrom(h.addr, s.subnet.Bits()))
	if s.gw.IsValid() {
		l.run("-n", h.ns, "route", "add", "default", "via", s.gw.String())
	}
	s.hosts = append(s.hosts, h)
	return h
}

// checkPublic fails the test unless libp2p counts a as public when public
// is true, private otherwise.
func (n *natLab) checkPublic(a netip.Addr, public bool) {
	n.l.t.Helper()
	check(n.l.t, isPublic(a) == public, "manet.IsPublicAddr(%s) = %v, the NAT lab needs %v", a, !public, public)
}

// isPublic reports whether libp2p counts a as a public address.
func isPublic(a netip.Addr) bool {
	m, err := ma.NewMultiaddr("/ip4/" + a.String())
	return err == nil && manet.IsPublicAddr(m)
}

// nthAddr is the i-th address of the IPv4 prefix p, whose last octet is 0
// (i < 256; the lab's segments are /24s holding natHostBase+natMaxHosts).
func nthAddr(p netip.Prefix, i int) netip.Addr {
	a := p.Addr().As4()
	a[3] += byte(i)
	return netip.AddrFrom4(a)
}

// natTables are the iptables commands the lab's routers are built with.
type natTables struct{ v4, v6 string }

// requireIPTables skips the test unless iptables and ip6tables are
// installed; under CI (CI=true) that is a failure instead. It prefers
// the nf_tables variants (iptables-nft works inside a namespace here),
// then whatever `iptables` is.
func requireIPTables(t testing.TB) natTables {
	t.Helper()
	find := func(names ...string) string {
		for _, name := range names {
			if p, err := exec.LookPath(name); err == nil {
				return p
			}
		}
		return ""
	}
	ipt := natTables{v4: find("iptables-nft", "iptables"), v6: find("ip6tables-nft", "ip6tables")}
	if ipt.v4 != "" && ipt.v6 != "" {
		return ipt
	}
	if os.Getenv("CI") == "true" {
		t.Fatalf("NAT lab tests need iptables and ip6tables (%+v)", ipt)
	}
	t.Skipf("NAT lab tests need iptables and ip6tables (%+v)", ipt)
	return natTables{}
}

// inNS calls open on an OS thread that has joined the network namespace
// ns and returns what it opened. A socket belongs to the namespace it was
// created in for its whole life, whichever thread uses it afterwards. The
// thread stays locked, so it ends with the goroutine instead of going
// back to the pool in another namespace.
func inNS[T any](ns string, open func() (T, error)) (T, error) {
	type result struct {
		v   T
		err error
	}
	done := make(chan result, 1)
	go func() {
		runtime.LockOSThread() // never unlocked: the thread dies with us
		var r result
		r.err = joinNS(ns)
		if r.err == nil {
			r.v, r.err = open()
		}
		done <- r
	}()
	r := <-done
	return r.v, r.err
}

// joinNS moves the calling thread into the network namespace ns.
func joinNS(ns string) error {
	fd, err := unix.Open("/run/netns/"+ns, unix.O_RDONLY|unix.O_CLOEXEC, 0)
	if err != nil {
		return fmt.Errorf("open namespace %s: %w", ns, err)
	}
	defer unix.Close(fd)
	if err := unix.Setns(fd, unix.CLONE_NEWNET); err != nil {
		return fmt.Errorf("join namespace %s: %w", ns, err)
	}
	return nil
}

// listenTCP listens on a in the namespace of h, until the test ends.
func listenTCP(t testing.TB, h *labHost, port uint16) *net.TCPListener {
	t.Helper()
	a := net.TCPAddrFromAddrPort(netip.AddrPortFrom(h.addr, port))
	ln, err := inNS(h.ns, func() (*net.TCPListener, error) { return net.ListenTCP("tcp4", a) })
	noErr(t, err, "listen on tcp ", a, " in ", h.ns)
	t.Cleanup(func() { _ = ln.Close() })
	return ln
}

// listenUDP opens a UDP socket on port (0: any) of h, in its namespace,
// until the test ends.
func listenUDP(t testing.TB, h *labHost, port uint16) *net.UDPConn {
	t.Helper()
	a := net.UDPAddrFromAddrPort(netip.AddrPortFrom(h.addr, port))
	c, err := inNS(h.ns, func() (*net.UDPConn, error) { return net.ListenUDP("udp4", a) })
	noErr(t, err, "listen on udp ", a, " in ", h.ns)
	t.Cleanup(func() { _ = c.Close() })
	return c
}

// dialTCP connects from the namespace of h to to within timeout.
func dialTCP(h *labHost, to netip.AddrPort, timeout time.Duration) (net.Conn, error) {
	d := net.Dialer{Timeout: timeout}
	c, err := inNS(h.ns, func() (net.Conn, error) { return d.Dial("tcp4", to.String()) })
	if err != nil {
		return nil, fmt.Errorf("tcp from %s to %s: %w", h.ns, to, err)
	}
	return c, nil
}

// dialUDP opens a UDP socket in the namespace of h connected to to: an
// ICMP error for what it sends shows as ECONNREFUSED on its next read.
func dialUDP(t testing.TB, h *labHost, to netip.AddrPort) *net.UDPConn {
	t.Helper()
	c, err := inNS(h.ns, func() (*net.UDPConn, error) { return net.DialUDP("udp4", nil, net.UDPAddrFromAddrPort(to)) })
	noErr(t, err, "udp from ", h.ns, " to ", to)
	t.Cleanup(func() { _ = c.Close() })
	return c
}

// answered reports what a probe got, "" when it got nothing (it timed
// out): an error other than a timeout means something answered (RST:
// ECONNREFUSED; ICMP: EHOSTUNREACH, ENETUNREACH, ECONNREFUSED...).
func answered(err error) string {
	switch {
	case err == nil:
		return "an answer"
	case isTimeout(err):
		return ""
	default:
		return fmt.Sprintf("an answer: %v", err)
	}
}

// isTimeout reports whether err is a deadline or dial timeout.
func isTimeout(err error) bool {
	var ne net.Error
	return errors.As(err, &ne) && ne.Timeout()
}

// TestNATLabAddresses checks the lab's address plan against libp2p's idea
// of public: the internet range counts as public, the homes' as private.
// (newNATLab checks each address it gives out as well.)
func TestNATLabAddresses(t *testing.T) {
	for _, c := range []struct {
		addr   string
		public bool
	}{
		{natInternet.Addr().String(), true},
		{nthAddr(natInternet, 1).String(), true},
		{nthAddr(natInternet, natHostBase+natMaxHosts).String(), true},
		{"192.168.1.11", false},
		{"192.168.2.11", false},
		// Ranges libp2p ignores, so a lab internet must not use them.
		{"10.77.0.1", false},
		{"100.64.0.1", false},
		{"198.18.0.1", false},
		{"203.0.113.1", false},
	} {
		a := netip.MustParseAddr(c.addr)
		check(t, isPublic(a) == c.public, "manet.IsPublicAddr(%s) = %v, want %v", a, !c.public, c.public)
	}
	last := netip.MustParsePrefix(fmt.Sprintf("%s/%d", nthAddr(natInternet, natHostBase+natMaxHosts), natInternet.Bits()))
	check(t, last.Masked() == natInternet, "the last internet host %s falls outside %s", last.Addr(), natInternet)
}

// TestNATLab checks that the lab behaves like the internet and home
// routers, for each kind of router: home hosts reach the internet behind
// their router's WAN address, the internet reaches nothing at home and
// gets no answer, the routers map UDP flows as their kind says, and a UDP
// hole punch between the homes gets through exactly behind MASQUERADE.
func TestNATLab(t *testing.T) {
	requireNetAdmin(t)
	requireIPTables(t)
	for _, mode := range natModes {
		t.Run(strings.ReplaceAll(string(mode), " ", "_"), func(t *testing.T) {
			t.Parallel()
			testNATLab(t, mode)
		})
	}
}

// testNATLab runs TestNATLab's checks on a lab whose routers use mode.
func testNATLab(t *testing.T, mode natMode) {
	rootLinks := newLab(t).run("-o", "link", "show")
	n := newNATLab(t, mode)
	srv, srv2 := n.addInternetHost(), n.addInternetHost()
	home := [2]*labHost{n.addHomeHost(1), n.addHomeHost(2)}
	check(t, n.l.run("-o", "link", "show") == rootLinks, "building the NAT lab changed the root namespace's links")

	t.Run("routes", func(t *testing.T) { natRoutes(t, n, srv, home) })
	t.Run("outbound", func(t *testing.T) {
		for i, h := range home {
			natOutboundTCP(t, h, srv, n.wan(i+1))
			natOutboundUDP(t, h, srv, n.wan(i+1))
		}
	})
	t.Run("unsolicited", func(t *testing.T) { natUnsolicited(t, n, srv, srv2, home[0]) })
	t.Run("mapping", func(t *testing.T) { natMapping(t, mode, home[0], srv, srv2) })
	t.Run("punch", func(t *testing.T) { natPunchCheck(t, mode, home, srv) })
}

// natRoutes checks the routes: internet hosts have no default route, home
// hosts go via their router, and routers route nothing beyond the
// internet segment.
func natRoutes(t *testing.T, n *natLab, srv *labHost, home [2]*labHost) {
	l := n.l
	routes := l.run("-n", srv.ns, "route", "show")
	check(t, !strings.Contains(routes, "default"), "internet host %s has a default route: %s", srv.ns, routes)
	for i, h := range home {
		gw := n.homes[i].lan.gw
		via := l.run("-n", h.ns, "route", "get", srv.addr.String())
		check(t, strings.Contains(via, "via "+gw.String()), "%s reaches the internet by %q, want via %s", h.ns, via, gw)
		out, err := l.try("-n", n.homes[i].router, "route", "get", "192.0.2.1")
		check(t, err != nil && strings.Contains(out, "unreachable"), "router %s routes beyond the lab: %s (%v)", n.homes[i].router, out, err)
	}
}

// natOutboundTCP checks that h connects to srv, srv sees wan as the
// source, and the reply gets back.
func natOutboundTCP(t *testing.T, h, srv *labHost, wan netip.Addr) {
	const port = 4001
	ln := listenTCP(t, srv, port)
	defer ln.Close()
	c, err := dialTCP(h, netip.AddrPortFrom(srv.addr, port), natAnswerTimeout)
	noErr(t, err)
	defer c.Close()
	// The kernel completed the handshake: Accept returns it at once.
	noErr(t, ln.SetDeadline(time.Now().Add(natAnswerTimeout)))
	s, err := ln.Accept()
	noErr(t, err, "accept at ", srv.ns)
	defer s.Close()
	from := s.RemoteAddr().(*net.TCPAddr).AddrPort().Addr().Unmap()
	check(t, from == wan, "tcp from %s (%s) arrives at the internet from %s, want the router's WAN address %s", h.ns, h.addr, from, wan)
	noErr(t, ln.Close())

	exchange(t, c, s)
	t.Logf("tcp %s -> %s: source seen %s", h.addr, srv.addr, s.RemoteAddr())
}

// exchange sends a line each way between a and b.
func exchange(t *testing.T, a, b net.Conn) {
	t.Helper()
	for _, p := range [][2]net.Conn{{a, b}, {b, a}} {
		noErr(t, p[0].SetDeadline(time.Now().Add(natAnswerTimeout)))
		noErr(t, p[1].SetDeadline(time.Now().Add(natAnswerTimeout)))
		_, err := p[0].Write([]byte("ping"))
		noErr(t, err, "write ", p[0].LocalAddr(), " -> ", p[0].RemoteAddr())
		buf := make([]byte, 4)
		_, err = p[1].Read(buf)
		noErr(t, err, "read at ", p[1].LocalAddr())
		check(t, string(buf) == "ping", "read %q, want ping", buf)
	}
}

// natOutboundUDP checks that a datagram from h reaches srv from wan and
// srv's answer to that source gets back to h.
func natOutboundUDP(t *testing.T, h, srv *labHost, wan netip.Addr) {
	const port = 4002
	s := listenUDP(t, srv, port)
	defer s.Close()
	c := dialUDP(t, h, netip.AddrPortFrom(srv.addr, port))
	defer c.Close()
	noErr(t, s.SetDeadline(time.Now().Add(natAnswerTimeout)))
	noErr(t, c.SetDeadline(time.Now().Add(natAnswerTimeout)))
	_, err := c.Write([]byte("ping"))
	noErr(t, err, "udp write from ", h.ns)
	buf := make([]byte, 16)
	k, from, err := s.ReadFromUDPAddrPort(buf)
	noErr(t, err, "udp read at ", srv.ns)
	check(t, string(buf[:k]) == "ping", "udp read %q, want ping", buf[:k])
	check(t, from.Addr().Unmap() == wan, "udp from %s (%s) arrives from %s, want the router's WAN address %s", h.ns, h.addr, from, wan)
	_, err = s.WriteToUDPAddrPort([]byte("pong"), from)
	noErr(t, err, "udp answer from ", srv.ns)
	k, err = c.Read(buf)
	noErr(t, err, "udp answer at ", h.ns)
	check(t, string(buf[:k]) == "pong", "udp answer %q, want pong", buf[:k])
	t.Logf("udp %s -> %s: source seen %s", c.LocalAddr(), srv.addr, from)
}

// natUnsolicited checks that an internet host opens nothing at home: not a
// TCP connection nor a UDP flow to the home host h (even with a route to
// home 1's LAN via the router) nor to the router's WAN address, and that
// it gets no answer at all. The same probes to an internet host's unused
// port are answered (RST, ICMP port unreachable), which shows the probes
// tell an answer from silence.
func natUnsolicited(t *testing.T, n *natLab, srv, attacker, h *labHost) {
	const (
		port   = 4003 // listened on by h
		unused = 4004 // listened on by nobody
	)
	wan := n.wan(1)
	n.l.run("-n", attacker.ns, "route", "add", n.homes[0].lan.subnet.String(), "via", wan.String())
	ln := listenTCP(t, h, port)
	u := listenUDP(t, h, port)

	_, err := dialTCP(attacker, netip.AddrPortFrom(srv.addr, unused), natAnswerTimeout)
	check(t, errors.Is(err, syscall.ECONNREFUSED), "tcp to an unused port of an internet host: %v, want ECONNREFUSED (the probe must see an RST)", err)
	got, err := udpProbe(attacker, netip.AddrPortFrom(srv.addr, unused))
	noErr(t, err)
	check(t, got != "", "udp to an unused port of an internet host got no ICMP port unreachable")

	// The probes that must time out run at once, so the test waits one
	// natSilenceTimeout rather than six.
	var probes []func() (string, error)
	for _, to := range []netip.AddrPort{
		netip.AddrPortFrom(h.addr, port),
		netip.AddrPortFrom(wan, port),
		netip.AddrPortFrom(wan, unused),
	} {
		probes = append(probes, func() (string, error) {
			c, err := dialTCP(attacker, to, natSilenceTimeout)
			if c != nil {
				_ = c.Close()
			}
			if got := answered(err); got != "" {
				return fmt.Sprintf("unsolicited tcp from the internet to %s got %s; a home router answers nothing", to, got), nil
			}
			return "", nil
		}, func() (string, error) {
			got, err := udpProbe(attacker, to)
			if got != "" {
				got = fmt.Sprintf("unsolicited udp from the internet to %s got %s; a home router answers nothing", to, got)
			}
			return got, err
		})
	}
	for _, bad := range runAll(probes) {
		t.Error(bad)
	}
	if t.Failed() {
		t.FailNow()
	}

	noErr(t, ln.SetDeadline(time.Now().Add(100*time.Millisecond)))
	c, err := ln.Accept()
	if c != nil {
		_ = c.Close()
	}
	check(t, answered(err) == "", "the home host accepted a connection from the internet: %v", err)
	noErr(t, u.SetDeadline(time.Now().Add(100*time.Millisecond)))
	buf := make([]byte, 16)
	k, from, err := u.ReadFromUDPAddrPort(buf)
	check(t, answered(err) == "", "the home host got %q from %s from the internet: %v", buf[:k], from, err)
}

// udpProbe sends a datagram from h to to and reports what came back ("":
// nothing within natSilenceTimeout).
func udpProbe(h *labHost, to netip.AddrPort) (string, error) {
	c, err := inNS(h.ns, func() (*net.UDPConn, error) { return net.DialUDP("udp4", nil, net.UDPAddrFromAddrPort(to)) })
	if err != nil {
		return "", fmt.Errorf("udp probe from %s to %s: %w", h.ns, to, err)
	}
	defer c.Close()
	if _, err := c.Write([]byte("probe")); err != nil {
		return "", fmt.Errorf("udp probe from %s to %s: %w", h.ns, to, err)
	}
	if err := c.SetReadDeadline(time.Now().Add(natSilenceTimeout)); err != nil {
		return "", fmt.Errorf("udp probe from %s to %s: %w", h.ns, to, err)
	}
	_, err = c.Read(make([]byte, 16))
	return answered(err), nil
}

// runAll runs the probes at once, waits for all of them, and returns
// what they found wrong (their messages and errors).
func runAll(probes []func() (string, error)) []string {
	out := make([]string, len(probes))
	var wg sync.WaitGroup
	for i, p := range probes {
		wg.Go(func() {
			msg, err := p()
			if err != nil {
				msg = err.Error()
			}
			out[i] = msg
		})
	}
	wg.Wait()
	return slices.DeleteFunc(out, func(s string) bool { return s == "" })
}

// natMapping sends datagrams from one port of h to three destinations
// (two ports of srv, one of srv2) and checks the WAN ports they arrive
// from: one port for all under MASQUERADE (endpoint-independent mapping);
// under --random-fully not one port for all (each flow draws a random
// port, so two of three may still collide, all three about never).
func natMapping(t *testing.T, mode natMode, h, srv, srv2 *labHost) {
	c := listenUDP(t, h, 0)
	local := c.LocalAddr().(*net.UDPAddr).AddrPort().Port()
	var ports []uint16
	for _, d := range []struct {
		h    *labHost
		port uint16
	}{{srv, 5001}, {srv, 5002}, {srv2, 5001}} {
		s := listenUDP(t, d.h, d.port)
		to := netip.AddrPortFrom(d.h.addr, d.port)
		_, err := c.WriteToUDPAddrPort([]byte("map"), to)
		noErr(t, err, "udp from ", h.ns, " to ", to)
		noErr(t, s.SetReadDeadline(time.Now().Add(natAnswerTimeout)))
		_, from, err := s.ReadFromUDPAddrPort(make([]byte, 16))
		noErr(t, err, "udp read at ", to)
		ports = append(ports, from.Port())
	}
	distinct := slices.Compact(slices.Sorted(slices.Values(ports)))
	t.Logf("%s: udp from local port %d to 3 destinations left by WAN ports %v", mode, local, ports)
	switch mode {
	case natMasquerade:
		check(t, len(distinct) == 1, "MASQUERADE mapped one local port to WAN ports %v, want one port for every destination", ports)
	case natRandomFully:
		check(t, len(distinct) > 1, "--random-fully mapped one local port to WAN port %v for every destination, want a new port per flow", ports)
	}
}

// TestNATLabDaemons runs casd daemons in the lab, one on the internet and
// one in each home behind a MASQUERADE router, and checks that a home
// daemon connects to the public one by its multiaddr (home 1 over TCP,
// home 2 over QUIC), that the public one sees each connection come from
// the router's WAN address, and that a file added at home reads back on
// the internet by capability over it. Before that, the public daemon's
// dial of the home daemon at the router's WAN address fails without an
// answer.
func TestNATLabDaemons(t *testing.T) {
	requireNetAdmin(t)
	n := newNATLab(t, natMasquerade)
	pub := natDaemon(t, n.addInternetHost(), "local")
	homes := []*lanNode{natDaemon(t, n.addHomeHost(1), "local"), natDaemon(t, n.addHomeHost(2), "local")}

	// Dialled on the router's WAN address, where its port would be if it
	// were forwarded, the home daemon is out of reach: the dial fails,
	// and not because something answered.
	start := time.Now()
	res := pub.cli.run(t, "connect", fmt.Sprintf("/ip4/%s/tcp/4001/p2p/%s", n.wan(1), homes[0].d.ID))
	check(t, res.code != 0, "the public daemon connected to the home daemon through its router's WAN address: %s", res)
	check(t, !strings.Contains(res.stderr, "refused") && !strings.Contains(res.stderr, "unreachable"),
		"the router answered the public daemon's dial: %s", res)
	t.Logf("the public daemon's dial of the home daemon at the WAN address failed after %v: %s", time.Since(start).Round(time.Millisecond), strings.TrimSpace(res.stderr))

	for i, transport := range []string{"/tcp/", "/quic-v1"} {
		home := homes[i]
		natConnectOut(t, pub, home, n.wan(i+1), transport)
		data := randBytes(mib)
		root := home.n.add(t, writeFile(t, home.n.work, "home.bin", data))
		tok := home.n.share(t, root)
		requireSameBytes(t, data, pub.n.cat(t, tok), fmt.Sprintf("cat on the internet by capability of a file added in home %d", i+1))
	}
}

// natConnectOut has home's daemon connect to pub's over transport and
// checks that pub lists it connected from wan over that transport, and
// not from its LAN address.
func natConnectOut(t *testing.T, pub, home *lanNode, wan netip.Addr, transport string) {
	t.Helper()
	home.cli.requireOK(t, home.cli.run(t, "connect", natLabAddr(t, pub, transport)))
	var seen peerJSON
	waitFor(t, daemonStartTimeout, func() (bool, string) {
		ps := peerList(t, pub.cli, false)
		i := slices.IndexFunc(ps, func(p peerJSON) bool { return p.ID == home.d.ID })
		if i < 0 {
			return false, fmt.Sprintf("the public daemon does not list %s connected: %+v", home.d.ID, ps)
		}
		seen = ps[i]
		return true, ""
	})
	fromWAN := func(s string) bool { ip, ok := addrIP(s); return ok && ip == wan && strings.Contains(s, transport) }
	check(t, slices.ContainsFunc(seen.Addrs, fromWAN),
		"the public daemon sees the home daemon at %q, want the router's WAN address %s over %s", seen.Addrs, wan, transport)
	check(t, !slices.ContainsFunc(seen.Addrs, func(s string) bool { ip, ok := addrIP(s); return ok && ip == home.h.addr }),
		"the public daemon sees the home daemon at its LAN address: %q", seen.Addrs)
	t.Logf("over %s the public daemon sees the home daemon in %s connected from %q", transport, home.h.ns, seen.Addrs)
}

// natDaemon starts a daemon on h: a repo of the given profile listening
// on every address of h's namespace at the default ports, no bootstrap
// peers, no mDNS, replication factor 1, then the config keys of kv (key,
// JSON value, ...). It returns when the daemon is ready, having checked it
// listens on h's address and nowhere outside the lab.
func natDaemon(t *testing.T, h *labHost, profile string, kv ...string) *lanNode {
	t.Helper()
	ln := &lanNode{h: h, n: newEmptyNode(t)}
	res := ln.n.run(t, "init", "--profile="+profile)
	ln.n.requireOK(t, res)
	ln.n.id = parseInit(t, ln.n, res)
	setConfig(t, ln.n, append([]string{
		"Discovery.MDNS", "false",
		"Addresses.Swarm", `["/ip4/0.0.0.0/tcp/4001","/ip4/0.0.0.0/udp/4001/quic-v1"]`,
		"Bootstrap", `[]`,
		"Replication.Factor", "1",
	}, kv...)...)
	ln.n.netns = h.ns
	ln.cli = &node{repo: ln.n.repo, home: ln.n.home, work: ln.n.work, id: ln.n.id}
	ln.d = startDaemon(t, ln.n)
	var onHost bool
	for _, a := range ln.d.Addrs {
		ip, ok := addrIP(a)
		check(t, ok, "daemon in %s: listen address %q has no IP", h.ns, a)
		check(t, ip.IsLoopback() || ip.IsLinkLocalUnicast() || ip == h.addr,
			"daemon in %s listens on %s, not its lab address %s (or loopback, link-local)", h.ns, a, h.addr)
		onHost = onHost || ip == h.addr
	}
	check(t, onHost, "daemon in %s lists no address on %s: %q", h.ns, h.addr, ln.d.Addrs)
	return ln
}

// natLabAddr is a listen address of ln's daemon on its lab address whose
// transport part contains transport ("/tcp/", "/quic-v1").
func natLabAddr(t *testing.T, ln *lanNode, transport string) string {
	t.Helper()
	for _, a := range ln.d.Addrs {
		if ip, ok := addrIP(a); ok && ip == ln.h.addr && strings.Contains(a, transport) {
			return a
		}
	}
	t.Fatalf("daemon in %s lists no %s address on %s: %q", ln.h.ns, transport, ln.h.addr, ln.d.Addrs)
	return ""
}

const (
	// natPunchWindow bounds a UDP hole punch: behind MASQUERADE it takes
	// a round trip or two.
	natPunchWindow = 3 * time.Second
	// natPunchEvery is how often a puncher sends.
	natPunchEvery = 20 * time.Millisecond
)

// natPunchCheck checks that the lab's NATs are what hole punching needs to
// tell apart: behind MASQUERADE a UDP hole punch between the two homes
// gets through both ways; behind --random-fully it gets through neither.
func natPunchCheck(t *testing.T, mode natMode, home [2]*labHost, srv *labHost) {
	start := time.Now()
	got, err := natPunch(t, home, srv)
	noErr(t, err)
	t.Logf("%s: udp hole punch between the homes: home 1 received %v, home 2 received %v (%v)", mode, got[0], got[1], time.Since(start).Round(time.Millisecond))
	switch mode {
	case natMasquerade:
		check(t, got[0] && got[1], "MASQUERADE: the hole punch between the homes got through %v, want both ways", got)
	case natRandomFully:
		check(t, !got[0] && !got[1], "--random-fully: the hole punch between the homes got through %v, want neither way", got)
	}
}

// natPunch has the home hosts h[0] and h[1] learn their public endpoints
// from srv, as from a STUN server, then each send to the other's endpoint
// every natPunchEvery until both received the other's datagram or
// natPunchWindow ends. got[i] is whether h[i] received.
func natPunch(t *testing.T, h [2]*labHost, srv *labHost) (got [2]bool, err error) {
	stun := listenUDP(t, srv, 5003)
	defer stun.Close()
	var c [2]*net.UDPConn
	var public [2]netip.AddrPort
	for i := range h {
		c[i] = listenUDP(t, h[i], 0)
		defer c[i].Close()
		if _, err := c[i].WriteToUDPAddrPort([]byte("stun"), netip.AddrPortFrom(srv.addr, 5003)); err != nil {
			return got, fmt.Errorf("stun from %s: %w", h[i].ns, err)
		}
		if err := stun.SetReadDeadline(time.Now().Add(natAnswerTimeout)); err != nil {
			return got, fmt.Errorf("stun deadline: %w", err)
		}
		if _, public[i], err = stun.ReadFromUDPAddrPort(make([]byte, 16)); err != nil {
			return got, fmt.Errorf("stun read: %w", err)
		}
	}
	var received [2]atomic.Bool
	deadline := time.Now().Add(natPunchWindow)
	errs := runAll([]func() (string, error){
		func() (string, error) { return "", punchFrom(c[0], public[1], deadline, &received[0], &received[1]) },
		func() (string, error) { return "", punchFrom(c[1], public[0], deadline, &received[1], &received[0]) },
	})
	if len(errs) > 0 {
		return got, errors.New(strings.Join(errs, "; "))
	}
	return [2]bool{received[0].Load(), received[1].Load()}, nil
}

// punchFrom sends "punch" on c to peer every natPunchEvery and reads
// between sends, setting mine when a datagram from peer arrives, until
// mine and theirs are both set or deadline passes.
func punchFrom(c *net.UDPConn, peer netip.AddrPort, deadline time.Time, mine, theirs *atomic.Bool) error {
	buf := make([]byte, 16)
	for time.Now().Before(deadline) && !(mine.Load() && theirs.Load()) {
		if _, err := c.WriteToUDPAddrPort([]byte("punch"), peer); err != nil {
			return fmt.Errorf("punch %s -> %s: %w", c.LocalAddr(), peer, err)
		}
		if err := c.SetReadDeadline(time.Now().Add(natPunchEvery)); err != nil {
			return fmt.Errorf("punch deadline: %w", err)
		}
		k, from, err := c.ReadFromUDPAddrPort(buf)
		if err != nil && !isTimeout(err) {
			return fmt.Errorf("punch read at %s: %w", c.LocalAddr(), err)
		}
		if err == nil && from == peer && string(buf[:k]) == "punch" {
			mine.Store(true)
		}
	}
	return nil
}
