package integration

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"net"
	"os"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"
)

// Messages of the start-up waits, as the user reads them on stderr.
const (
	daemonWaitMsg  = "casd daemon: repo locked by another casd command; waiting up to "
	commandWaitMsg = "casd: waiting for the daemon (pid "
)

// requireID checks that res is a successful `casd id --json` of n: valid
// JSON that names the repo's peer ID. It returns the addresses listed.
func requireID(t testing.TB, n *node, res result) (addrs []string) {
	t.Helper()
	n.requireOK(t, res)
	var id idJSON
	noErr(t, json.Unmarshal(res.stdout, &id), fmt.Sprintf("decode %s", res))
	check(t, id.ID == n.id, "id --json printed ID %q, want the repo's %s: %s", id.ID, n.id, res)
	noErr(t, json.Unmarshal(id.Addrs, &addrs), fmt.Sprintf("decode the addrs of %s", res))
	return addrs
}

// requireServes checks that the daemon d is running and answers for its
// repo: an offline id lists no addresses, the daemon's lists its own.
func requireServes(t testing.TB, d *daemon) {
	t.Helper()
	requireAlive(t, d)
	addrs := requireID(t, d.n, d.n.run(t, "id", "--json"))
	check(t, len(addrs) > 0, "id --json lists no addresses: it did not come from the daemon")
}

// requireAlive fails the test if the daemon's process has exited.
func requireAlive(t testing.TB, d *daemon) {
	t.Helper()
	select {
	case <-d.done:
		t.Fatalf("the daemon of %s exited: %v", d.n.repo, d.exitErr())
	default:
	}
}

// TestStartupDaemonAndCommandAtOnce starts `casd daemon` and at once runs
// `casd id --json`, as `casd daemon & casd id` does, 20 times on one repo:
// whichever takes the repo lock first, the other waits. Every daemon
// starts and serves, and every id prints the repo's peer ID.
func TestStartupDaemonAndCommandAtOnce(t *testing.T) {
	t.Parallel()
	n := newNode(t)
	var offline, viaDaemon int // which way the rounds went, for the log
	for round := range 20 {
		d := spawnDaemon(t, n)
		res := n.run(t, "id", "--json")
		if len(requireID(t, n, res)) == 0 {
			offline++
		} else {
			viaDaemon++
		}
		check(t, !strings.Contains(res.stderr, "Error"), "round %d: id reported an error: %s", round, res)
		requireAlive(t, d)
		d.waitReady(t)
		requireServes(t, d)
		d.Stop(t)
		requireNoMarker(t, n)
		if t.Failed() {
			t.Fatalf("round %d failed", round)
		}
	}
	t.Logf("id opened the repo offline in %d rounds and asked the daemon in %d", offline, viaDaemon)
}

// requireNoMarker checks that no daemon left its marker in n's repo: a
// daemon removes daemon.pid when it stops or gives up.
func requireNoMarker(t testing.TB, n *node) {
	t.Helper()
	check(t, !slices.Contains(listDir(t, n.repo), "daemon.pid"), "the daemon left daemon.pid in %s", n.repo)
}

// TestStartupCommandWaitsForDaemon runs a command while the daemon holds
// the repo lock but does not serve yet: its only bootstrap peer accepts TCP
// connections and never answers, so the daemon spends its bootstrap dial
// timeout (15s) before it opens its API. The command waits, says so once,
// and gets its answer from the daemon.
func TestStartupCommandWaitsForDaemon(t *testing.T) {
	t.Parallel()
	n := newNode(t)
	other := newNode(t) // only for a well-formed peer ID that never answers
	accepted := mute(t)
	boot, err := json.Marshal([]string{fmt.Sprintf("/ip4/127.0.0.1/tcp/%d/p2p/%s", accepted.port, other.id)})
	noErr(t, err)
	n.requireOK(t, n.run(t, "config", "Bootstrap", string(boot)))

	d := spawnDaemon(t, n)
	// The daemon dials its bootstrap peers after it took the lock and
	// before it listens on its API socket.
	select {
	case <-accepted.c:
	case <-d.done:
		t.Fatalf("the daemon exited before it dialled its bootstrap peer: %v", d.exitErr())
	case <-time.After(daemonStartTimeout):
		t.Fatalf("the daemon did not dial its bootstrap peer within %v", daemonStartTimeout)
	}

	res := n.run(t, "id", "--json")
	addrs := requireID(t, n, res)
	check(t, len(addrs) > 0, "id did not wait for the daemon but opened the repo offline: %s", res)
	check(t, strings.Count(res.stderr, commandWaitMsg) == 1, "id must say once that it waits for the daemon: %s", res)
	d.waitReady(t)
	requireServes(t, d)
}

// listener is a TCP listener on loopback that accepts connections and
// never writes to them.
type listener struct {
	port int
	c    chan struct{} // receives once a connection was accepted
}

// mute starts a listener; the test's cleanup closes it and its connections.
func mute(t testing.TB) *listener {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	noErr(t, err, "listen")
	l := &listener{port: ln.Addr().(*net.TCPAddr).Port, c: make(chan struct{}, 1)}
	var (
		wg    sync.WaitGroup
		mu    sync.Mutex // guards conns
		conns []net.Conn
	)
	wg.Go(func() {
		for {
			c, err := ln.Accept()
			if err != nil {
				return // closed by the cleanup
			}
			mu.Lock()
			conns = append(conns, c)
			mu.Unlock()
			select {
			case l.c <- struct{}{}:
			default:
			}
		}
	})
	t.Cleanup(func() {
		_ = ln.Close()
		wg.Wait()
		for _, c := range conns {
			_ = c.Close()
		}
	})
	return l
}

// holder is an offline `casd cat` that holds the repo lock until the test
// reads its output: its stdout is a pipe that only the test drains.
type holder struct {
	want []byte   // what cat has still to write
	pr   *os.File // the read end of cat's stdout
	done chan struct{}
	err  error // what Wait returned, set before done is closed
}

// holdLock adds a file offline and starts `casd cat` of it, and returns
// once cat has written to its stdout, so holds the repo lock. The cleanup
// stops it if the test did not release it.
func holdLock(t testing.TB, n *node) *holder {
	t.Helper()
	data := randBytes(4 * mib) // far more than a pipe buffers
	c := n.add(t, writeFile(t, t.TempDir(), "held.bin", data))

	ctx, cancel := context.WithTimeout(t.Context(), cmdTimeout)
	cmd := n.command(ctx, runOpts{}, "cat", c)
	pr, pw, err := os.Pipe()
	noErr(t, err, "make stdout pipe")
	var stderr bytes.Buffer
	cmd.Stdout = pw
	cmd.Stderr = &stderr
	err = cmd.Start()
	_ = pw.Close() // cat holds its own copy; pr reaches EOF when cat exits
	if err != nil {
		cancel()
		_ = pr.Close()
		t.Fatalf("start casd cat: %v", err)
	}
	h := &holder{want: data, pr: pr, done: make(chan struct{})}
	go func() { // owned by h: release and the cleanup wait for done
		defer close(h.done)
		if err := cmd.Wait(); err != nil {
			h.err = fmt.Errorf("casd cat %s: %w\nstderr: %s", c, err, stderr.String())
		}
	}()
	t.Cleanup(func() {
		cancel()
		_, _ = io.Copy(io.Discard, pr)
		<-h.done
		_ = pr.Close()
	})

	first := make([]byte, 1)
	if _, err := io.ReadFull(pr, first); err != nil {
		cancel()
		<-h.done
		t.Fatalf("casd cat wrote nothing: %v; %v", err, h.err)
	}
	check(t, first[0] == data[0], "casd cat wrote a wrong first byte")
	h.want = data[1:]
	return h
}

// release reads the rest of cat's output, which lets it end and release
// the lock, and checks that cat succeeded with the right bytes.
func (h *holder) release(t testing.TB) {
	t.Helper()
	got, err := io.ReadAll(h.pr)
	noErr(t, err, "read casd cat's output")
	<-h.done
	noErr(t, h.err)
	requireSameBytes(t, h.want, got, "casd cat output")
}

// daemonLog returns what the daemon wrote so far.
func daemonLog(t testing.TB, d *daemon) string {
	t.Helper()
	data, err := os.ReadFile(d.logPath)
	noErr(t, err, "read daemon log")
	return string(data)
}

// TestStartupDaemonWaitsForLock starts the daemon while an offline command
// holds the repo lock: the daemon says once that it waits, and starts once
// the command has ended.
func TestStartupDaemonWaitsForLock(t *testing.T) {
	t.Parallel()
	n := newNode(t)
	h := holdLock(t, n)

	d := spawnDaemon(t, n)
	waitFor(t, daemonStartTimeout, func() (bool, string) {
		requireAlive(t, d)
		return strings.Contains(daemonLog(t, d), daemonWaitMsg), "the daemon did not say it waits for the lock"
	})
	select {
	case <-d.ready:
		t.Fatal("the daemon was ready while casd cat held the lock")
	default:
	}
	h.release(t)

	d.waitReady(t)
	requireServes(t, d)
	check(t, strings.Count(daemonLog(t, d), daemonWaitMsg) == 1, "the daemon must say once that it waits:\n%s", daemonLog(t, d))
}

// TestStartupDaemonLockWaitEnds runs `casd daemon --lock-wait` while an
// offline command holds the lock past that time: the daemon says it waits,
// then fails as busy (exit 5) with the lock error.
func TestStartupDaemonLockWaitEnds(t *testing.T) {
	t.Parallel()
	n := newNode(t)
	h := holdLock(t, n)

	res := n.exec(t, runOpts{env: map[string]string{"GOLOG_LOG_LEVEL": "error"}}, "daemon", "--lock-wait=300ms")
	check(t, res.code == exitBusy, "want exit code %d: %s", exitBusy, res)
	lines := strings.Split(strings.TrimSuffix(res.stderr, "\n"), "\n")
	check(t, len(lines) == 2, "stderr must be the wait notice and one error line: %s", res)
	check(t, lines[0] == daemonWaitMsg+"300ms", "first stderr line %q, want %q", lines[0], daemonWaitMsg+"300ms")
	check(t, strings.HasPrefix(lines[1], "Error: ") && strings.Contains(lines[1], "locked"), "want the lock error: %s", res)
	check(t, len(res.stdout) == 0, "a daemon that did not start printed: %s", res)
	h.release(t)
	requireNoMarker(t, n)

	// Nothing is left that makes a command wait for a daemon: with the
	// lock held by another offline command, id fails at once.
	h = holdLock(t, n)
	res = n.run(t, "id", "--json")
	requireFail(t, res, exitBusy)
	h.release(t)
}

// TestStartupSecondDaemonRefused starts a second daemon on a repo whose
// daemon serves: it fails at once (exit 5), without waiting for the lock.
func TestStartupSecondDaemonRefused(t *testing.T) {
	t.Parallel()
	n := newNode(t)
	d := startDaemon(t, n)

	// A daemon that waited for the lock would be killed after a minute,
	// failing the test.
	res := n.exec(t, runOpts{env: map[string]string{"GOLOG_LOG_LEVEL": "error"}, timeout: time.Minute}, "daemon", "--lock-wait=10m")
	msg := requireFail(t, res, exitBusy)
	check(t, strings.Contains(msg, "locked"), "want the lock error: %s", res)
	check(t, !strings.Contains(res.stderr, "waiting"), "a second daemon must not wait: %s", res)
	requireServes(t, d)
}
