package bench_test

import (
	"bufio"
	"bytes"
	"context"
	"crypto/sha256"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"
)

// Bounds of the daemons the retrieval benchmarks run.
const (
	daemonReadyTimeout = 2 * time.Minute
	daemonStopTimeout  = time.Minute
	connectTimeout     = 2 * time.Minute
)

// benchDaemon is one `casd daemon` process of a retrieval benchmark.
type benchDaemon struct {
	repo string
	cmd  *exec.Cmd
	log  string   // its stdout and stderr
	id   string   // peer identity it printed
	tcp  string   // its first TCP listen address, with /p2p/<id>
	done chan any // closed when the process has exited and its stdout was read

	waitErr error // what Wait returned; read it only after done is closed
}

// startBenchDaemon runs `casd --repo repo daemon` and waits for
// "daemon is ready". It is stopped with SIGTERM when b ends, unless stopped
// before.
func startBenchDaemon(b *testing.B, repo string) *benchDaemon {
	b.Helper()
	logFile, err := os.Create(filepath.Join(b.TempDir(), "daemon.log"))
	if err != nil {
		b.Fatalf("create daemon log: %v", err)
	}
	pr, pw, err := os.Pipe()
	if err != nil {
		b.Fatalf("make stdout pipe: %v", err)
	}
	d := &benchDaemon{repo: repo, log: logFile.Name(), done: make(chan any)}
	d.cmd = exec.Command(fixture.bin, "--repo", repo, "daemon")
	d.cmd.Env = environ()
	d.cmd.Dir = fixture.home
	d.cmd.Stdout = pw
	d.cmd.Stderr = logFile
	err = d.cmd.Start()
	_ = pw.Close()
	if err != nil {
		_ = pr.Close()
		_ = logFile.Close()
		b.Fatalf("start casd daemon: %v", err)
	}

	ready := make(chan []string, 1)
	go func() { // owned by d: stop waits for done
		defer close(d.done)
		var lines []string
		sc := bufio.NewScanner(pr)
		for sc.Scan() {
			_, _ = fmt.Fprintln(logFile, sc.Text())
			if ready == nil {
				continue // ready already
			}
			lines = append(lines, sc.Text())
			if sc.Text() == "daemon is ready" {
				ready <- lines
				ready = nil
			}
		}
		_ = pr.Close()
		d.waitErr = d.cmd.Wait()
		_ = logFile.Close()
	}()
	b.Cleanup(func() {
		if err := d.stop(); err != nil {
			b.Error(err)
		}
	})

	ctx, cancel := context.WithTimeout(b.Context(), daemonReadyTimeout)
	defer cancel()
	var lines []string
	select {
	case lines = <-ready:
	case <-d.done:
		b.Fatalf("casd daemon on %s exited before it was ready: %v\n%s", repo, d.waitErr, d.logText())
	case <-ctx.Done():
		b.Fatalf("casd daemon on %s not ready: %v\n%s", repo, ctx.Err(), d.logText())
	}
	for _, l := range lines {
		if id, ok := strings.CutPrefix(l, "peer identity: "); ok {
			d.id = id
		}
		if a, ok := strings.CutPrefix(l, "swarm listening on "); ok && d.tcp == "" &&
			strings.Contains(a, "/tcp/") && !strings.Contains(a, "/ws") {
			d.tcp = a
		}
	}
	if d.id == "" || d.tcp == "" {
		b.Fatalf("casd daemon on %s printed no identity or TCP address before it was ready:\n%s", repo, strings.Join(lines, "\n"))
	}
	return d
}

// stop sends SIGTERM and waits for the daemon to exit; it is a no-op when
// the daemon has exited already.
func (d *benchDaemon) stop() error {
	select {
	case <-d.done:
		return nil
	default:
	}
	if err := d.cmd.Process.Signal(syscall.SIGTERM); err != nil && !errors.Is(err, os.ErrProcessDone) {
		return fmt.Errorf("SIGTERM casd daemon on %s: %w", d.repo, err)
	}
	timer := time.NewTimer(daemonStopTimeout)
	defer timer.Stop()
	select {
	case <-d.done:
	case <-timer.C:
		_ = d.cmd.Process.Kill()
		<-d.done
		return fmt.Errorf("casd daemon on %s did not exit within %v of SIGTERM", d.repo, daemonStopTimeout)
	}
	if d.waitErr != nil {
		return fmt.Errorf("casd daemon on %s: %w\n%s", d.repo, d.waitErr, d.logText())
	}
	return nil
}

func (d *benchDaemon) logText() string {
	data, err := os.ReadFile(d.log)
	if err != nil {
		return fmt.Sprintf("(read %s: %v)", d.log, err)
	}
	if len(data) > 64<<10 {
		data = data[len(data)-64<<10:]
	}
	return string(data)
}

// peakRSS returns VmHWM, the peak resident set size of the running daemon,
// in bytes, from /proc (Linux only).
func (d *benchDaemon) peakRSS() (int64, error) {
	data, err := os.ReadFile("/proc/" + strconv.Itoa(d.cmd.Process.Pid) + "/status")
	if err != nil {
		return 0, err
	}
	for line := range strings.Lines(string(data)) {
		v, ok := strings.CutPrefix(line, "VmHWM:")
		if !ok {
			continue
		}
		kib, err := strconv.ParseInt(strings.TrimSuffix(strings.TrimSpace(v), " kB"), 10, 64)
		if err != nil {
			return 0, fmt.Errorf("parse VmHWM %q: %w", v, err)
		}
		return kib << 10, nil
	}
	return 0, errors.New("no VmHWM in /proc status")
}

// newRepo inits a repo with the local profile and applies config settings,
// given as key, JSON value pairs.
func newRepo(b *testing.B, name string, settings ...string) string {
	b.Helper()
	repo := filepath.Join(b.TempDir(), name)
	initRepo(b, repo)
	for i := 0; i+1 < len(settings); i += 2 {
		if _, err := casd(b.Context(), io.Discard, "--repo", repo, "config", settings[i], settings[i+1]); err != nil {
			b.Fatal(err)
		}
	}
	return repo
}

// bootstrapTo returns the config setting that bootstraps a repo from d.
func bootstrapTo(b *testing.B, d *benchDaemon) []string {
	b.Helper()
	v, err := json.Marshal([]string{d.tcp})
	if err != nil {
		b.Fatal(err)
	}
	return []string{"Bootstrap", string(v)}
}

// waitConnected polls `casd peers --json` on repo until it is connected to
// every peer of ids.
func waitConnected(b *testing.B, repo string, ids ...string) {
	b.Helper()
	ctx, cancel := context.WithTimeout(b.Context(), connectTimeout)
	defer cancel()
	tick := time.NewTicker(50 * time.Millisecond)
	defer tick.Stop()
	for {
		var out bytes.Buffer
		if _, err := casd(ctx, &out, "--repo", repo, "peers", "--json"); err != nil {
			b.Fatal(err)
		}
		var peers []struct {
			ID        string `json:"id"`
			Connected bool   `json:"connected"`
		}
		if err := json.Unmarshal(out.Bytes(), &peers); err != nil {
			b.Fatalf("decode peers --json %q: %v", out.String(), err)
		}
		missing := 0
		for _, id := range ids {
			found := false
			for _, p := range peers {
				found = found || (p.ID == id && p.Connected)
			}
			if !found {
				missing++
			}
		}
		if missing == 0 {
			return
		}
		select {
		case <-ctx.Done():
			b.Fatalf("%s: %d of %d peers not connected: %v", repo, missing, len(ids), ctx.Err())
		case <-tick.C:
		}
	}
}

// addAndShare adds the random file on the daemon of repo and returns its
// capability.
func addAndShare(b *testing.B, repo string) string {
	b.Helper()
	c, _ := add(b, repo)
	var out bytes.Buffer
	if _, err := casd(b.Context(), &out, "--repo", repo, "share", c.String()); err != nil {
		b.Fatal(err)
	}
	return strings.TrimSpace(out.String())
}

// benchRetrieve checks that the reader's daemon returns the random file for
// capability without keeping any block of it, then times
// `casd cat <capability> > /dev/null` on it and reports the peak RSS of the
// reader's daemon.
func benchRetrieve(b *testing.B, reader *benchDaemon, capability string) {
	b.Helper()
	h := sha256.New()
	if _, err := casd(b.Context(), h, "--repo", reader.repo, "cat", capability); err != nil {
		b.Fatal(err)
	}
	if !bytes.Equal(h.Sum(nil), fixture.sum[:]) {
		b.Fatalf("cat by capability on the reader does not print the file that was added")
	}
	// A reader that kept the blocks would time local reads from then on.
	if n := countFiles(b, filepath.Join(reader.repo, "blocks")); n > 0 {
		b.Fatalf("the reader's repo holds %d block files after a cat; the benchmark would measure local reads", n)
	}

	devnull, err := os.OpenFile(os.DevNull, os.O_WRONLY, 0)
	if err != nil {
		b.Fatalf("open %s: %v", os.DevNull, err)
	}
	b.Cleanup(func() { devnull.Close() })
	b.SetBytes(fixture.size)
	for b.Loop() {
		if _, err := casd(b.Context(), devnull, "--repo", reader.repo, "cat", capability); err != nil {
			b.Fatal(err)
		}
	}
	if rss, err := reader.peakRSS(); err == nil {
		b.ReportMetric(float64(rss)/mib, "readerDaemonPeakRSS-MiB")
	} else {
		b.Logf("peak RSS of the reader's daemon: %v", err)
	}
}

// countFiles counts the regular files under dir (0 if dir does not exist).
func countFiles(b *testing.B, dir string) int {
	b.Helper()
	n := 0
	err := filepath.WalkDir(dir, func(_ string, d fs.DirEntry, err error) error {
		if err != nil {
			if errors.Is(err, fs.ErrNotExist) {
				return nil
			}
			return err
		}
		if d.Type().IsRegular() {
			n++
		}
		return nil
	})
	if err != nil {
		b.Fatalf("walk %s: %v", dir, err)
	}
	return n
}

// BenchmarkRetrieve1GiBOneHolder measures `casd cat <capability>` on a
// daemon B that holds nothing, of a file that only daemon A holds: A keeps
// its files local (Replication.Factor 0: with factor 1, B, the only other
// peer, would become the replica and the benchmark would time a local read).
func BenchmarkRetrieve1GiBOneHolder(b *testing.B) {
	setup(b)
	b.Run(sizeName(fixture.size), func(b *testing.B) {
		a := startBenchDaemon(b, newRepo(b, "a", "Replication.Factor", "0"))
		reader := startBenchDaemon(b, newRepo(b, "b", bootstrapTo(b, a)...))
		waitConnected(b, reader.repo, a.id)
		capability := addAndShare(b, a.repo)
		benchRetrieve(b, reader, capability)
	})
}

// BenchmarkRetrieve1GiBThreeHolders measures `casd cat <capability>` on a
// daemon E that holds nothing, of a file that A added with the default
// Replication.Factor 3 onto B, C and D. A is stopped before the reader
// starts, so exactly three peers serve the file.
func BenchmarkRetrieve1GiBThreeHolders(b *testing.B) {
	setup(b)
	b.Run(sizeName(fixture.size), func(b *testing.B) {
		a := startBenchDaemon(b, newRepo(b, "a", "Replication.Factor", "3"))
		var holders []*benchDaemon
		var ids []string
		for _, name := range []string{"b", "c", "d"} {
			d := startBenchDaemon(b, newRepo(b, name, bootstrapTo(b, a)...))
			holders = append(holders, d)
			ids = append(ids, d.id)
		}
		waitConnected(b, a.repo, ids...)
		capability := addAndShare(b, a.repo)
		if err := a.stop(); err != nil {
			b.Fatal(err)
		}
		reader := startBenchDaemon(b, newRepo(b, "e", bootstrapTo(b, holders[0])...))
		waitConnected(b, reader.repo, holders[0].id)
		benchRetrieve(b, reader, capability)
	})
}
