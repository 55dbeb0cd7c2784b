package bench_test

import (
	"bytes"
	"context"
	"crypto/sha256"
	"errors"
	"fmt"
	"io"
	"math/rand/v2"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"testing"

	"github.com/ipfs/go-cid"
)

// defaultSize is the size of the end-to-end file unless $CASD_BENCH_SIZE
// says otherwise.
const defaultSize = 1 << 30

// fixture is what the end-to-end benchmarks share: the casd binary and the
// random file. It is made once, on first use, so that a plain `go test`
// (without -bench) builds nothing; TestMain removes it when the run ends.
var fixture struct {
	once sync.Once
	err  error

	dir  string            // temporary directory holding everything below
	bin  string            // absolute path of the casd binary
	home string            // $HOME of the casd commands
	file string            // the random file
	size int64             // its length
	sum  [sha256.Size]byte // its SHA-256
}

func TestMain(m *testing.M) {
	code := m.Run()
	if fixture.dir != "" {
		if err := os.RemoveAll(fixture.dir); err != nil {
			fmt.Fprintf(os.Stderr, "bench: remove %s: %v\n", fixture.dir, err)
		}
	}
	os.Exit(code)
}

// setup makes the shared fixture, or fails b with the reason it could not.
func setup(b *testing.B) {
	b.Helper()
	fixture.once.Do(func() { fixture.err = prepare(b.Context()) })
	if fixture.err != nil {
		b.Fatal(fixture.err)
	}
}

func prepare(ctx context.Context) error {
	size := int64(defaultSize)
	if s := os.Getenv("CASD_BENCH_SIZE"); s != "" {
		n, err := parseSize(s)
		if err != nil {
			return fmt.Errorf("CASD_BENCH_SIZE: %w", err)
		}
		size = n
	}
	dir, err := os.MkdirTemp("", "casd-bench-")
	if err != nil {
		return fmt.Errorf("make temp dir: %w", err)
	}
	fixture.dir = dir
	fixture.home = filepath.Join(dir, "home")
	if err := os.Mkdir(fixture.home, 0o700); err != nil {
		return fmt.Errorf("make home dir: %w", err)
	}
	if fixture.bin, err = casdBinary(ctx, dir); err != nil {
		return err
	}
	fixture.file = filepath.Join(dir, "random-"+sizeName(size)+".bin")
	fixture.size = size
	fixture.sum, err = writeRandomFile(fixture.file, size)
	return err
}

// casdBinary returns $CASD_BIN, or builds ./cmd/casd into dir the way
// `make build` does.
func casdBinary(ctx context.Context, dir string) (string, error) {
	if bin := os.Getenv("CASD_BIN"); bin != "" {
		abs, err := filepath.Abs(bin)
		if err != nil {
			return "", fmt.Errorf("CASD_BIN %q: %w", bin, err)
		}
		return abs, nil
	}
	root, err := moduleRoot(ctx)
	if err != nil {
		return "", fmt.Errorf("find module root: %w", err)
	}
	bin := filepath.Join(dir, "casd")
	args := []string{"build", "-trimpath", "-o", bin, "./cmd/casd"}
	build := exec.CommandContext(ctx, "go", args...)
	build.Dir = root
	build.Env = append(os.Environ(), "CGO_ENABLED=0")
	if out, err := build.CombinedOutput(); err != nil {
		return "", fmt.Errorf("go %s: %w\n%s", strings.Join(args, " "), err, out)
	}
	return bin, nil
}

// moduleRoot returns the directory holding go.mod.
func moduleRoot(ctx context.Context) (string, error) {
	out, err := exec.CommandContext(ctx, "go", "env", "GOMOD").Output()
	if err != nil {
		return "", fmt.Errorf("go env GOMOD: %w", err)
	}
	gomod := strings.TrimSpace(string(out))
	if gomod == "" || gomod == os.DevNull {
		return "", errors.New("not inside a Go module")
	}
	return filepath.Dir(gomod), nil
}

// writeRandomFile writes size bytes of a fixed ChaCha8 stream to path, 1 MiB
// at a time, and returns their SHA-256.
func writeRandomFile(path string, size int64) (sum [sha256.Size]byte, err error) {
	f, err := os.OpenFile(path, os.O_WRONLY|os.O_CREATE|os.O_EXCL, 0o600)
	if err != nil {
		return sum, fmt.Errorf("create random file: %w", err)
	}
	defer func() {
		if cerr := f.Close(); cerr != nil && err == nil {
			err = fmt.Errorf("close random file: %w", cerr)
		}
	}()
	src := rand.NewChaCha8([32]byte{'c', 'a', 's', 'd', '-', 'b', 'e', 'n', 'c', 'h'})
	h := sha256.New()
	w := io.MultiWriter(f, h)
	if _, err := io.CopyBuffer(w, io.LimitReader(src, size), make([]byte, mib)); err != nil {
		return sum, fmt.Errorf("write random file: %w", err)
	}
	h.Sum(sum[:0])
	return sum, nil
}

// casd runs the casd binary with args, its stdout going to stdout, and
// returns the peak resident set size of the process in bytes. Its stderr is
// part of the error when it fails.
func casd(ctx context.Context, stdout io.Writer, args ...string) (peakRSS int64, err error) {
	cmd := exec.CommandContext(ctx, fixture.bin, args...)
	cmd.Env = environ()
	cmd.Dir = fixture.home
	cmd.Stdout = stdout
	var stderr bytes.Buffer
	cmd.Stderr = &stderr
	if err := cmd.Run(); err != nil {
		return 0, fmt.Errorf("casd %s: %w\nstderr: %s", strings.Join(args, " "), err, stderr.Bytes())
	}
	rss, _ := maxRSS(cmd.ProcessState)
	return rss, nil
}

// environ is the environment of casd commands: the test's own, without
// $CASD_PATH (the commands name their repo with --repo) and with a $HOME of
// their own, so that no user configuration leaks in.
func environ() []string {
	var env []string
	for _, kv := range os.Environ() {
		if !strings.HasPrefix(kv, "CASD_PATH=") && !strings.HasPrefix(kv, "HOME=") {
			env = append(env, kv)
		}
	}
	return append(env, "HOME="+fixture.home)
}

// initRepo creates a casd repo at repo with the local profile.
func initRepo(b *testing.B, repo string) {
	b.Helper()
	if _, err := casd(b.Context(), io.Discard, "--repo", repo, "init", "--profile=local"); err != nil {
		b.Fatal(err)
	}
}

// add runs `casd add -q` on the random file and returns the CID it prints
// and the peak RSS of the process.
func add(b *testing.B, repo string) (cid.Cid, int64) {
	b.Helper()
	var out bytes.Buffer
	rss, err := casd(b.Context(), &out, "--repo", repo, "add", "-q", "--progress=false", fixture.file)
	if err != nil {
		b.Fatal(err)
	}
	s, ok := strings.CutSuffix(out.String(), "\n")
	if !ok || strings.ContainsAny(s, " \n") {
		b.Fatalf("add -q printed %q, want one CID and a newline", out.String())
	}
	c, err := cid.Decode(s)
	if err != nil {
		b.Fatalf("add -q printed %q: %v", s, err)
	}
	return c, rss
}

// BenchmarkOfflineAdd measures `casd add` of the random file into a fresh
// repo per iteration (a repo that already holds the file would make add a
// deduplicating no-op), without a daemon. Creating and removing the repo are
// not timed.
func BenchmarkOfflineAdd(b *testing.B) {
	setup(b)
	b.Run(sizeName(fixture.size), func(b *testing.B) {
		base := b.TempDir()
		var peak int64
		i := 0
		b.SetBytes(fixture.size)
		for b.Loop() {
			b.StopTimer()
			repo := filepath.Join(base, "repo-"+strconv.Itoa(i))
			i++
			initRepo(b, repo)
			b.StartTimer()

			_, rss := add(b, repo)

			b.StopTimer()
			peak = max(peak, rss)
			if err := os.RemoveAll(repo); err != nil {
				b.Fatalf("remove repo: %v", err)
			}
			b.StartTimer()
		}
		b.ReportMetric(float64(peak)/mib, "peakRSS-MiB")
	})
}

// BenchmarkOfflineCat measures `casd cat` of the random file from a repo
// that holds it, without a daemon, with stdout going to /dev/null. Before
// timing, one untimed cat checks that the output is the file.
func BenchmarkOfflineCat(b *testing.B) {
	setup(b)
	b.Run(sizeName(fixture.size), func(b *testing.B) {
		repo := filepath.Join(b.TempDir(), "repo")
		initRepo(b, repo)
		c, _ := add(b, repo)

		h := sha256.New()
		if _, err := casd(b.Context(), h, "--repo", repo, "cat", c.String()); err != nil {
			b.Fatal(err)
		}
		if !bytes.Equal(h.Sum(nil), fixture.sum[:]) {
			b.Fatalf("cat %s does not print the file that was added", c)
		}

		devnull, err := os.OpenFile(os.DevNull, os.O_WRONLY, 0)
		if err != nil {
			b.Fatalf("open %s: %v", os.DevNull, err)
		}
		b.Cleanup(func() { devnull.Close() })

		var peak int64
		b.SetBytes(fixture.size)
		for b.Loop() {
			rss, err := casd(b.Context(), devnull, "--repo", repo, "cat", c.String())
			if err != nil {
				b.Fatal(err)
			}
			peak = max(peak, rss)
		}
		b.ReportMetric(float64(peak)/mib, "peakRSS-MiB")
	})
}

// parseSize parses a byte count with an optional unit: B, KiB, MiB, GiB, TiB
// (and K, M, G, T for the same), or kB, MB, GB, TB (powers of 1000).
func parseSize(s string) (int64, error) {
	units := []struct {
		suffix string
		mult   int64
	}{
		{"KiB", 1 << 10}, {"MiB", 1 << 20}, {"GiB", 1 << 30}, {"TiB", 1 << 40},
		{"kB", 1e3}, {"KB", 1e3}, {"MB", 1e6}, {"GB", 1e9}, {"TB", 1e12},
		{"K", 1 << 10}, {"M", 1 << 20}, {"G", 1 << 30}, {"T", 1 << 40},
		{"B", 1},
	}
	num, mult := strings.TrimSpace(s), int64(1)
	for _, u := range units {
		if n, ok := strings.CutSuffix(num, u.suffix); ok {
			num, mult = strings.TrimSpace(n), u.mult
			break
		}
	}
	n, err := strconv.ParseInt(num, 10, 64)
	if err != nil || n <= 0 || n > (1<<62)/mult {
		return 0, fmt.Errorf("size %q: want a positive byte count such as 1073741824, 256MiB or 1GiB", s)
	}
	return n * mult, nil
}

// sizeName names a size for a benchmark: 1GiB, 256MiB, 12345B.
func sizeName(n int64) string {
	switch {
	case n%(1<<30) == 0:
		return strconv.FormatInt(n>>30, 10) + "GiB"
	case n%(1<<20) == 0:
		return strconv.FormatInt(n>>20, 10) + "MiB"
	case n%(1<<10) == 0:
		return strconv.FormatInt(n>>10, 10) + "KiB"
	}
	return strconv.FormatInt(n, 10) + "B"
}
