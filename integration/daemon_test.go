package integration

import (
	"bufio"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io/fs"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"
)

const (
	// daemonStartTimeout bounds how long a daemon may take to print
	// "daemon is ready".
	daemonStartTimeout = 2 * time.Minute
	// daemonStopTimeout bounds how long a daemon may take to exit after
	// SIGTERM (its own API shutdown timeout is 10s).
	daemonStopTimeout = time.Minute
	// pollInterval is the period of the tickers that wait for a condition
	// another process brings about.
	pollInterval = 50 * time.Millisecond
)

// daemon is one running `casd daemon` process.
type daemon struct {
	n       *node
	cmd     *exec.Cmd
	logPath string // stdout and stderr of the daemon

	// ID and Addrs are what the daemon printed before "daemon is ready":
	// its peer identity and its listen addresses, each ending in /p2p/<ID>.
	ID    string
	Addrs []string

	ready chan struct{} // closed when "daemon is ready" was read
	done  chan struct{} // closed when the process has exited and its output was read

	mu      sync.Mutex // guards the fields below, shared with the reader goroutine
	lines   []string   // stdout lines up to "daemon is ready"
	waitErr error      // what cmd.Wait returned, set before done is closed
	ended   bool       // Stop or Kill was called
}

// startDaemon starts `casd daemon` on n's repo, with GOLOG_LOG_LEVEL=info
// (or $CASD_TEST_LOG_LEVEL), and waits, bounded by the test's context and
// daemonStartTimeout, until it prints "daemon is ready". Its stdout and
// stderr go to a log file in the test's temp dir, printed if the test
// fails. The daemon is stopped with SIGTERM (and its exit code checked)
// when the test ends, unless the test stopped or killed it before.
func startDaemon(t testing.TB, n *node) *daemon {
	t.Helper()
	d := spawnDaemon(t, n)
	d.waitReady(t)
	return d
}

// spawnDaemon starts `casd daemon` without waiting for it to be ready.
func spawnDaemon(t testing.TB, n *node) *daemon {
	t.Helper()
	logFile, err := os.CreateTemp(t.TempDir(), "daemon-*.log")
	noErr(t, err, "create daemon log")
	pr, pw, err := os.Pipe()
	noErr(t, err, "make stdout pipe")

	// Not CommandContext: the test's context ends before its cleanups run,
	// and the cleanup must stop the daemon with SIGTERM, not SIGKILL.
	bin := casdBin
	if n.bin != "" {
		bin = n.bin
	}
	prog, argv := n.argv(bin, "daemon")
	cmd := exec.Command(prog, argv...)
	level := "info"
	if v := os.Getenv("CASD_TEST_LOG_LEVEL"); v != "" {
		level = v // e.g. "info,casd/node=debug" to debug a failure
	}
	cmd.Env = n.environ(map[string]string{"GOLOG_LOG_LEVEL": level})
	cmd.Dir = n.work
	cmd.Stdout = pw
	cmd.Stderr = logFile
	d := &daemon{
		n:       n,
		cmd:     cmd,
		logPath: logFile.Name(),
		ready:   make(chan struct{}),
		done:    make(chan struct{}),
	}
	err = cmd.Start()
	// The child holds its own copies now; the pipe reaches EOF when the
	// daemon exits.
	_ = pw.Close()
	if err != nil {
		_ = pr.Close()
		_ = logFile.Close()
		t.Fatalf("start casd daemon on %s: %v", n.repo, err)
	}
	go d.read(pr, logFile) // owned by d: Stop, Kill and the cleanup wait for done

	t.Cleanup(func() {
		d.mu.Lock()
		ended := d.ended
		d.mu.Unlock()
		if !ended {
			d.Stop(t)
		} else {
			select {
			case <-d.done:
			default: // the test failed while the daemon was stopping
				_ = d.cmd.Process.Kill()
				<-d.done
			}
		}
		if t.Failed() {
			data, err := os.ReadFile(d.logPath)
			if err != nil {
				t.Logf("read daemon log %s: %v", d.logPath, err)
				return
			}
			const keep = 256 << 10 // the end tells why it failed
			if len(data) > keep {
				data = append([]byte("...\n"), data[len(data)-keep:]...)
			}
			t.Logf("log of the daemon of %s (%s):\n%s", n.repo, d.logPath, data)
		}
	})
	return d
}

// read copies the daemon's stdout into its log, line by line, notes the
// lines up to "daemon is ready", then reaps the process.
func (d *daemon) read(pr *os.File, logFile *os.File) {
	defer close(d.done)
	sc := bufio.NewScanner(pr)
	sc.Buffer(make([]byte, 64*1024), 1<<20)
	isReady := false
	for sc.Scan() {
		line := sc.Text()
		_, _ = fmt.Fprintln(logFile, line)
		if isReady {
			continue
		}
		d.mu.Lock()
		d.lines = append(d.lines, line)
		d.mu.Unlock()
		if line == "daemon is ready" {
			isReady = true
			close(d.ready)
		}
	}
	if err := sc.Err(); err != nil {
		_, _ = fmt.Fprintf(logFile, "integration: reading daemon stdout: %v\n", err)
	}
	_ = pr.Close()
	err := d.cmd.Wait()
	_ = logFile.Close()
	d.mu.Lock()
	d.waitErr = err
	d.mu.Unlock()
}

// waitReady waits for "daemon is ready" and parses the lines before it.
func (d *daemon) waitReady(t testing.TB) {
	t.Helper()
	ctx, cancel := context.WithTimeout(t.Context(), daemonStartTimeout)
	defer cancel()
	select {
	case <-d.ready:
	case <-d.done:
		t.Fatalf("casd daemon on %s exited before it was ready: %v", d.n.repo, d.exitErr())
	case <-ctx.Done():
		t.Fatalf("casd daemon on %s not ready after %v: %v", d.n.repo, daemonStartTimeout, ctx.Err())
	}
	d.mu.Lock()
	lines := slices.Clone(d.lines)
	d.mu.Unlock()
	var api bool
	for _, l := range lines {
		switch {
		case strings.HasPrefix(l, "peer identity: "):
			d.ID = strings.TrimPrefix(l, "peer identity: ")
		case strings.HasPrefix(l, "swarm listening on "):
			d.Addrs = append(d.Addrs, strings.TrimPrefix(l, "swarm listening on "))
		case strings.HasPrefix(l, "API listening on "):
			api = true
		}
	}
	check(t, d.ID != "", "daemon printed no \"peer identity: <id>\" line before it was ready: %q", lines)
	check(t, d.n.id == "" || d.ID == d.n.id, "daemon identity %s, but init printed %s", d.ID, d.n.id)
	check(t, len(d.Addrs) > 0, "daemon printed no \"swarm listening on\" line: %q", lines)
	check(t, api, "daemon printed no \"API listening on\" line: %q", lines)
	for _, a := range d.Addrs {
		check(t, strings.HasSuffix(a, "/p2p/"+d.ID), "listen address %q must end in /p2p/%s", a, d.ID)
	}
}

// exitErr returns what Wait returned; call it only after done is closed.
func (d *daemon) exitErr() error {
	d.mu.Lock()
	defer d.mu.Unlock()
	return d.waitErr
}

// running reports whether the daemon was neither stopped nor killed.
func (d *daemon) running() bool {
	d.mu.Lock()
	defer d.mu.Unlock()
	return !d.ended
}

// tcpAddr returns the daemon's first plain TCP listen address.
func (d *daemon) tcpAddr(t testing.TB) string {
	t.Helper()
	for _, a := range d.Addrs {
		if strings.Contains(a, "/tcp/") && !strings.Contains(a, "/ws") {
			return a
		}
	}
	t.Fatalf("daemon %s has no TCP address among %q", d.ID, d.Addrs)
	return ""
}

// send marks the daemon ended and sends it sig unless it has exited.
func (d *daemon) send(t testing.TB, sig os.Signal) {
	t.Helper()
	d.mu.Lock()
	d.ended = true
	d.mu.Unlock()
	select {
	case <-d.done:
		return // already gone
	default:
	}
	if err := d.cmd.Process.Signal(sig); err != nil && !errors.Is(err, os.ErrProcessDone) {
		t.Errorf("send %v to the daemon of %s: %v", sig, d.n.repo, err)
	}
}

// wait waits, bounded by daemonStopTimeout, for the daemon to exit after
// a signal, and returns what Wait returned. A daemon that does not exit in
// time is killed and fails the test.
func (d *daemon) wait(t testing.TB) error {
	t.Helper()
	timer := time.NewTimer(daemonStopTimeout)
	defer timer.Stop()
	select {
	case <-d.done:
		return d.exitErr()
	case <-timer.C:
		_ = d.cmd.Process.Kill()
		<-d.done
		t.Errorf("the daemon of %s did not exit within %v of a signal; killed it", d.n.repo, daemonStopTimeout)
		return d.exitErr()
	}
}

// Stop sends SIGTERM, waits for the daemon to exit and fails the test
// unless it exited 0 after saying "shutting down".
func (d *daemon) Stop(t testing.TB) {
	t.Helper()
	d.send(t, syscall.SIGTERM)
	d.checkStopped(t)
}

// checkStopped waits for the daemon to exit after SIGTERM and fails the
// test unless it exited 0 after saying "shutting down".
func (d *daemon) checkStopped(t testing.TB) {
	t.Helper()
	if err := d.wait(t); err != nil {
		t.Errorf("the daemon of %s exited after SIGTERM with %v, want exit code 0", d.n.repo, err)
		return
	}
	data, err := os.ReadFile(d.logPath)
	noErr(t, err, "read daemon log")
	if !strings.Contains(string(data), "shutting down") {
		t.Errorf("the daemon of %s exited 0 after SIGTERM without printing \"shutting down\"", d.n.repo)
	}
}

// stopAll sends SIGTERM to every daemon of ds first, then waits for each
// as Stop does.
func stopAll(t testing.TB, ds []*daemon) {
	t.Helper()
	for _, d := range ds {
		d.send(t, syscall.SIGTERM)
	}
	for _, d := range ds {
		d.checkStopped(t)
	}
}

// Kill sends SIGKILL and waits for the process to be gone.
func (d *daemon) Kill(t testing.TB) {
	t.Helper()
	d.send(t, syscall.SIGKILL)
	err := d.wait(t)
	var exitErr *exec.ExitError
	if !errors.As(err, &exitErr) {
		t.Errorf("the daemon of %s after SIGKILL: %v, want killed", d.n.repo, err)
	}
}

// cluster is a set of nodes whose daemons run, all bootstrapped from the
// first one.
type cluster struct {
	nodes   []*node
	daemons []*daemon
}

// byID returns the index of the node with peer identity id, or -1.
func (c *cluster) byID(id string) int {
	return slices.IndexFunc(c.daemons, func(d *daemon) bool { return d.ID == id })
}

// startCluster inits n repos with the local profile, starts the daemon of
// node 0, sets the Bootstrap of every other node to node 0's TCP address,
// starts the others concurrently, and waits until node 0 is connected to
// all of them.
func startCluster(t testing.TB, n int) *cluster {
	t.Helper()
	c := &cluster{nodes: make([]*node, n), daemons: make([]*daemon, n)}
	for i := range n {
		c.nodes[i] = newNode(t)
	}
	c.daemons[0] = startDaemon(t, c.nodes[0])
	boot, err := json.Marshal([]string{c.daemons[0].tcpAddr(t)})
	noErr(t, err)
	for _, nd := range c.nodes[1:] {
		nd.requireOK(t, nd.run(t, "config", "Bootstrap", string(boot)))
	}
	for i := 1; i < n; i++ {
		c.daemons[i] = spawnDaemon(t, c.nodes[i])
	}
	for _, d := range c.daemons[1:] {
		d.waitReady(t)
	}
	var want []string
	for _, d := range c.daemons[1:] {
		want = append(want, d.ID)
	}
	waitConnected(t, c.nodes[0], want...)
	return c
}

// peerList runs `casd peers --json` (with --all if all) and decodes it.
func peerList(t testing.TB, n *node, all bool) []peerJSON {
	t.Helper()
	args := []string{"peers", "--json"}
	if all {
		args = append(args, "--all")
	}
	res := n.run(t, args...)
	n.requireOK(t, res)
	var ps []peerJSON
	noErr(t, json.Unmarshal(res.stdout, &ps), fmt.Sprintf("decode %s", res))
	return ps
}

// peerJSON is one element of `casd peers --json`.
type peerJSON struct {
	ID        string   `json:"id"`
	Addrs     []string `json:"addrs"`
	Connected bool     `json:"connected"`
	// Sources names how the daemon learned of the peer: any of "dht",
	// "gossip", "mdns", "bootstrap", "remembered", "inbound".
	Sources []string `json:"sources"`
	// LastSeen is when the daemon last saw the peer (now for a connected one).
	LastSeen time.Time `json:"last_seen"`
}

// hasSource reports whether the daemon names src among p's sources.
func (p peerJSON) hasSource(src string) bool { return slices.Contains(p.Sources, src) }

// peerSources are the source names of `casd peers --json`, in the order
// the daemon lists them.
var peerSources = []string{"dht", "gossip", "mdns", "bootstrap", "remembered", "inbound"}

// allPeers runs `casd peers --all --json` on n, checks the shape of every
// element (every key present, sources an array, never null, of known
// names in their order without repeats, last_seen a time) and returns the
// list decoded.
func allPeers(t testing.TB, n *node) []peerJSON {
	t.Helper()
	before := time.Now()
	res := n.run(t, "peers", "--all", "--json")
	after := time.Now()
	n.requireOK(t, res)
	var raw []map[string]json.RawMessage
	noErr(t, json.Unmarshal(res.stdout, &raw), fmt.Sprintf("decode %s", res))
	var ps []peerJSON
	noErr(t, json.Unmarshal(res.stdout, &ps), fmt.Sprintf("decode %s", res))
	for i, m := range raw {
		for _, k := range []string{"id", "addrs", "connected", "sources", "last_seen"} {
			_, ok := m[k]
			check(t, ok, "peers --all --json element %d lacks %q: %s", i, k, res)
		}
		check(t, strings.HasPrefix(string(m["sources"]), "["), "peers --all --json element %d: sources %s, want an array: %s", i, m["sources"], res)
		requireSourceNames(t, ps[i])
		requireLastSeen(t, ps[i], before, after)
	}
	return ps
}

// requireLastSeen fails unless p's last_seen is now (within [before,
// after], the run of the command, with a second of slack) for a connected
// peer, and for any other is not in the future, and is set if the daemon
// names a source (learning of a peer is seeing it).
func requireLastSeen(t testing.TB, p peerJSON, before, after time.Time) {
	t.Helper()
	const slack = time.Second
	check(t, !p.LastSeen.After(after.Add(slack)), "peer %s: last_seen %v is after the command ended (%v)", p.ID, p.LastSeen, after)
	check(t, !p.Connected || !p.LastSeen.Before(before.Add(-slack)),
		"connected peer %s: last_seen %v, want now (the command ran %v..%v)", p.ID, p.LastSeen, before, after)
	check(t, len(p.Sources) == 0 || !p.LastSeen.IsZero(), "peer %s with sources %q has no last_seen", p.ID, p.Sources)
}

// requireSourceNames fails unless p's sources are known names, in the
// order of peerSources, none twice.
func requireSourceNames(t testing.TB, p peerJSON) {
	t.Helper()
	last := -1
	for _, s := range p.Sources {
		i := slices.Index(peerSources, s)
		check(t, i >= 0, "peer %s: unknown source %q in %q (known: %q)", p.ID, s, p.Sources, peerSources)
		check(t, i > last, "peer %s: sources %q out of order or repeated (order: %q)", p.ID, p.Sources, peerSources)
		last = i
	}
}

// connectedTo reports which of ids are among n's connected peers.
func connectedTo(t testing.TB, n *node, ids []string) (missing []string) {
	t.Helper()
	ps := peerList(t, n, false)
	for _, id := range ids {
		if !slices.ContainsFunc(ps, func(p peerJSON) bool { return p.ID == id && p.Connected }) {
			missing = append(missing, id)
		}
	}
	return missing
}

// waitConnected polls `casd peers --json` on n until every peer of ids is
// connected, bounded by daemonStartTimeout and the test's context.
func waitConnected(t testing.TB, n *node, ids ...string) {
	t.Helper()
	waitFor(t, daemonStartTimeout, func() (bool, string) {
		missing := connectedTo(t, n, ids)
		return len(missing) == 0, fmt.Sprintf("%s not connected to %q", n.repo, missing)
	})
}

// waitFor calls cond every pollInterval until it returns true, failing the
// test with cond's last message after timeout or when the test's context
// ends.
func waitFor(t testing.TB, timeout time.Duration, cond func() (bool, string)) {
	t.Helper()
	pollEvery(t, timeout, pollInterval, cond)
}

// pollEvery calls cond every period until it returns true, failing the
// test with cond's last message after timeout.
func pollEvery(t testing.TB, timeout, period time.Duration, cond func() (bool, string)) {
	t.Helper()
	ctx, cancel := context.WithTimeout(t.Context(), timeout)
	defer cancel()
	tick := time.NewTicker(period)
	defer tick.Stop()
	for {
		ok, msg := cond()
		if ok {
			return
		}
		select {
		case <-ctx.Done():
			t.Fatalf("gave up after %v: %s", timeout, msg)
		case <-tick.C:
		}
	}
}

// blockNames returns the names of the regular files under repo/blocks.
func blockNames(t testing.TB, repo string) map[string]bool {
	t.Helper()
	names := map[string]bool{}
	err := filepath.WalkDir(filepath.Join(repo, "blocks"), func(p string, d fs.DirEntry, err error) error {
		if errors.Is(err, fs.ErrNotExist) {
			return nil // a file renamed or a shard removed under us
		}
		if err != nil {
			return err
		}
		if d.Type().IsRegular() {
			names[d.Name()] = true
		}
		return nil
	})
	noErr(t, err, "walk blocks of "+repo)
	return names
}
