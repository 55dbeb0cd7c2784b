package integration

import (
	"bufio"
	"bytes"
	"context"
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"maps"
	"math/rand/v2"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/ipfs/go-cid"
	mh "github.com/multiformats/go-multihash"
)

// Exit codes of the casd CLI spec.
const (
	exitOK        = 0
	exitFailure   = 1
	exitUsage     = 2
	exitNotFound  = 3
	exitIntegrity = 4
	exitBusy      = 5
)

const (
	mib = 1 << 20
	// cmdTimeout bounds one ordinary casd command.
	cmdTimeout = 3 * time.Minute
	// testPassphrase is the key file passphrase used by tests that need one.
	testPassphrase = "correct horse battery staple"
)

// node is one casd repo and the environment its commands run in.
type node struct {
	repo string // the repo directory ($CASD_PATH)
	home string // $HOME of the commands
	work string // default working directory of the commands
	id   string // peer identity printed by init
	// bin, if set, is the casd binary its daemon runs instead of casdBin
	// (see measuredBin).
	bin string
	// netns, if set, is the network namespace (see netns_test.go) its
	// commands and its daemon run in.
	netns string

	mu         sync.Mutex // guards transcript
	transcript []string
}

// result is what one casd command did.
type result struct {
	args   []string
	stdout []byte
	stderr string
	code   int
}

// out returns stdout as a string.
func (r result) out() string { return string(r.stdout) }

func (r result) String() string {
	return fmt.Sprintf("casd %s\n  exit: %d\n  stdout: %s\n  stderr: %s",
		quoteArgs(r.args), r.code, clip(r.stdout, 600), clip([]byte(r.stderr), 2000))
}

// runOpts tunes one command.
type runOpts struct {
	stdin   io.Reader
	dir     string            // working directory; node.work when empty
	env     map[string]string // extra environment (overrides the defaults)
	timeout time.Duration     // cmdTimeout when zero
	umask   string            // run under this umask (through sh) when set
}

// newNode creates a fresh repo with `casd init --profile=local`.
func newNode(t testing.TB) *node {
	t.Helper()
	n := newEmptyNode(t)
	res := n.run(t, "init", "--profile=local")
	n.requireOK(t, res)
	n.id = parseInit(t, n, res)
	return n
}

// newEmptyNode prepares the directories of a node without running init; the
// repo directory does not exist yet.
func newEmptyNode(t testing.TB) *node {
	t.Helper()
	base := t.TempDir()
	n := &node{
		repo: filepath.Join(base, "repo"),
		home: filepath.Join(base, "home"),
		work: filepath.Join(base, "work"),
	}
	noErr(t, os.Mkdir(n.home, 0o700))
	noErr(t, os.Mkdir(n.work, 0o700))
	t.Cleanup(func() {
		if !t.Failed() {
			return
		}
		n.mu.Lock()
		defer n.mu.Unlock()
		t.Logf("transcript of repo %s (kept on failure):\n%s", n.repo, strings.Join(n.transcript, "\n"))
	})
	return n
}

// parseInit checks init's output and returns the peer identity.
func parseInit(t testing.TB, n *node, res result) string {
	t.Helper()
	lines := strings.Split(strings.TrimRight(res.out(), "\n"), "\n")
	check(t, len(lines) == 2, "init prints two lines: %s", res)
	check(t, lines[0] == "initialized casd repo at "+n.repo, "init first line %q, want %q", lines[0], "initialized casd repo at "+n.repo)
	id, ok := strings.CutPrefix(lines[1], "peer identity: ")
	check(t, ok, "init second line %q, want \"peer identity: <peerID>\"", lines[1])
	check(t, id != "", "init prints an empty peer identity")
	return id
}

// run runs casd with args in the node's environment.
func (n *node) run(t testing.TB, args ...string) result {
	t.Helper()
	return n.exec(t, runOpts{}, args...)
}

// runIn runs casd with args and stdin.
func (n *node) runIn(t testing.TB, stdin io.Reader, args ...string) result {
	t.Helper()
	return n.exec(t, runOpts{stdin: stdin}, args...)
}

// runPass runs casd with $CASD_PASSPHRASE set.
func (n *node) runPass(t testing.TB, pass string, args ...string) result {
	t.Helper()
	return n.exec(t, runOpts{env: map[string]string{"CASD_PASSPHRASE": pass}}, args...)
}

// runDir runs casd in working directory dir.
func (n *node) runDir(t testing.TB, dir string, args ...string) result {
	t.Helper()
	return n.exec(t, runOpts{dir: dir}, args...)
}

// environ is the complete environment of a command: nothing leaks in from the
// test process except PATH and coverage/race settings.
func (n *node) environ(extra map[string]string) []string {
	env := map[string]string{
		"PATH":       os.Getenv("PATH"),
		"HOME":       n.home,
		"CASD_PATH":  n.repo,
		"TMPDIR":     os.TempDir(),
		"LANG":       "C.UTF-8",
		"GORACE":     "halt_on_error=1",
		"GOCOVERDIR": os.Getenv("GOCOVERDIR"),
	}
	for k, v := range extra {
		env[k] = v
	}
	var out []string
	for k, v := range env {
		if v != "" {
			out = append(out, k+"="+v)
		}
	}
	slices.Sort(out)
	return out
}

// cliGORACE is the race detector's setting for a CLI command: a binary
// built with -race sleeps a second before it exits (atexit_sleep_ms, so
// that other threads may finish a report), which made every command a
// test runs a second slower, a poll of a dozen daemons twelve. A CLI
// command has one goroutine of its own that matters, and a race halts it
// at once (halt_on_error). The daemons keep the default sleep.
const cliGORACE = "halt_on_error=1 atexit_sleep_ms=0"

// command prepares a casd command; the caller starts and waits for it.
func (n *node) command(ctx context.Context, o runOpts, args ...string) *exec.Cmd {
	prog, argv := n.argv(casdBin, args...)
	if o.umask != "" {
		prog, argv = n.argv("sh", append([]string{"-c", `umask ` + o.umask + ` && exec "$0" "$@"`, casdBin}, args...)...)
	}
	cmd := exec.CommandContext(ctx, prog, argv...)
	env := map[string]string{"GORACE": cliGORACE}
	maps.Copy(env, o.env)
	cmd.Env = n.environ(env)
	cmd.Dir = o.dir
	if cmd.Dir == "" {
		cmd.Dir = n.work
	}
	cmd.Stdin = o.stdin
	cmd.WaitDelay = 10 * time.Second
	return cmd
}

func (n *node) exec(t testing.TB, o runOpts, args ...string) result {
	t.Helper()
	timeout := o.timeout
	if timeout == 0 {
		timeout = cmdTimeout
	}
	ctx, cancel := context.WithTimeout(t.Context(), timeout)
	defer cancel()
	cmd := n.command(ctx, o, args...)
	var stdout, stderr bytes.Buffer
	cmd.Stdout = &stdout
	cmd.Stderr = &stderr
	err := cmd.Run()
	res := result{args: args, stdout: stdout.Bytes(), stderr: stderr.String()}
	var exitErr *exec.ExitError
	switch {
	case err == nil:
	case errors.As(err, &exitErr) && exitErr.Exited():
		res.code = exitErr.ExitCode()
	default:
		n.log(res)
		t.Fatalf("casd %s: %v (timeout %v)\nstderr: %s", quoteArgs(args), err, timeout, res.stderr)
	}
	n.log(res)
	return res
}

func (n *node) log(res result) {
	n.mu.Lock()
	defer n.mu.Unlock()
	n.transcript = append(n.transcript, res.String())
}

// requireOK fails the test unless res exited 0.
func (n *node) requireOK(t testing.TB, res result) {
	t.Helper()
	check(t, res.code == exitOK, "command failed: %s", res)
}

// requireFail checks the spec's error contract: exit code want, nothing
// on stdout, one line on stderr of the form "Error: <what>: <why>".
// It returns that line.
func requireFail(t testing.TB, res result, want int) string {
	t.Helper()
	check(t, res.code == want, "want exit code %d: %s", want, res)
	return requireErrLine(t, res)
}

// requireErrLine checks that stderr is exactly one "Error: " line.
func requireErrLine(t testing.TB, res result) string {
	t.Helper()
	msg := strings.TrimSuffix(res.stderr, "\n")
	check(t, msg != "", "no error message: %s", res)
	check(t, !strings.Contains(msg, "\n"), "stderr must be one line: %s", res)
	check(t, strings.HasPrefix(msg, "Error: "), "stderr must start with \"Error: \": %s", res)
	check(t, strings.Contains(msg[len("Error: "):], ": "), "stderr must read \"Error: <what failed>: <why>\": %s", res)
	return msg
}

// add adds path with `casd add` and returns the CID, checking the output
// "added <cid> <basename>".
func (n *node) add(t testing.TB, path string) string {
	t.Helper()
	res := n.run(t, "add", path)
	n.requireOK(t, res)
	line := strings.TrimSuffix(res.out(), "\n")
	check(t, !strings.Contains(line, "\n"), "add prints one line: %s", res)
	rest, ok := strings.CutPrefix(line, "added ")
	check(t, ok, "add output %q must start with \"added \"", line)
	c, name, ok := strings.Cut(rest, " ")
	check(t, ok, "add output %q must be \"added <cid> <name>\"", line)
	check(t, name == filepath.Base(path), "add output %q must name the file %q", line, filepath.Base(path))
	requireCID(t, c)
	return c
}

// cat returns the bytes `casd cat ref` prints, requiring success.
func (n *node) cat(t testing.TB, ref string) []byte {
	t.Helper()
	res := n.run(t, "cat", ref)
	n.requireOK(t, res)
	return res.stdout
}

// share returns the capability of c.
func (n *node) share(t testing.TB, c string) string {
	t.Helper()
	res := n.run(t, "share", c)
	n.requireOK(t, res)
	tok := strings.TrimSuffix(res.out(), "\n")
	check(t, capRE.MatchString(tok), "share must print one casd1 token: %s", res)
	return tok
}

// refs returns the CIDs `casd refs ref` prints.
func (n *node) refs(t testing.TB, ref string) []string {
	t.Helper()
	res := n.run(t, "refs", ref)
	n.requireOK(t, res)
	refs := strings.Fields(res.out())
	check(t, len(refs) > 0, "refs printed nothing: %s", res)
	for _, c := range refs {
		requireCID(t, c)
	}
	return refs
}

var capRE = regexp.MustCompile(`^casd1[A-Za-z0-9]+$`)

// requireCID checks that s is a CIDv1 raw sha2-256 and returns it parsed.
func requireCID(t testing.TB, s string) cid.Cid {
	t.Helper()
	c, err := cid.Decode(s)
	noErr(t, err, fmt.Sprintf("not a CID: %q", s))
	check(t, c.Version() == 1, "CID %s: version %d, want 1", s, c.Version())
	check(t, c.Type() == cid.Raw, "CID %s: codec %#x, want raw", s, c.Type())
	check(t, c.Prefix().MhType == mh.SHA2_256, "CID %s: hash %#x, want sha2-256", s, c.Prefix().MhType)
	return c
}

// digest returns the sha2-256 digest inside a CID.
func digest(t testing.TB, s string) []byte {
	t.Helper()
	c := requireCID(t, s)
	d, err := mh.Decode(c.Hash())
	noErr(t, err)
	return d.Digest
}

// randomCID returns a well-formed CID of random bytes that no repo holds.
func randomCID(t testing.TB) string {
	t.Helper()
	h, err := mh.Sum(randBytes(64), mh.SHA2_256, -1)
	noErr(t, err)
	return cid.NewCidV1(cid.Raw, h).String()
}

// randBytes returns n random bytes.
func randBytes(n int) []byte {
	b := make([]byte, n)
	r := rand.NewChaCha8(seed())
	_, _ = r.Read(b)
	return b
}

func seed() [32]byte {
	var s [32]byte
	for i := range 4 {
		v := rand.Uint64()
		for j := range 8 {
			s[i*8+j] = byte(v >> (8 * j))
		}
	}
	return s
}

// randHex returns a random lowercase hex string of 2*n characters.
func randHex(n int) string { return hex.EncodeToString(randBytes(n)) }

// writeFile writes data to dir/name and returns the path.
func writeFile(t testing.TB, dir, name string, data []byte) string {
	t.Helper()
	p := filepath.Join(dir, name)
	noErr(t, os.WriteFile(p, data, 0o644))
	return p
}

// writeRandomFile streams size random bytes to dir/name without holding
// them in memory and returns the path.
func writeRandomFile(t testing.TB, dir, name string, size int64) string {
	t.Helper()
	p := filepath.Join(dir, name)
	f, err := os.Create(p)
	noErr(t, err)
	w := bufio.NewWriterSize(f, mib)
	_, err = io.CopyN(w, rand.NewChaCha8(seed()), size)
	noErr(t, err)
	noErr(t, w.Flush())
	noErr(t, f.Close())
	return p
}

// fileState is one file of a snapshot.
type fileState struct {
	size int64
	sum  [sha256.Size]byte
}

// snapshot records every regular file under dir with its size and hash.
func snapshot(t testing.TB, dir string) map[string]fileState {
	t.Helper()
	out := map[string]fileState{}
	err := filepath.WalkDir(dir, func(p string, d fs.DirEntry, err error) error {
		if err != nil {
			return err
		}
		if !d.Type().IsRegular() {
			return nil
		}
		data, err := os.ReadFile(p)
		if err != nil {
			return err
		}
		rel, err := filepath.Rel(dir, p)
		if err != nil {
			return err
		}
		out[rel] = fileState{size: int64(len(data)), sum: sha256.Sum256(data)}
		return nil
	})
	noErr(t, err)
	return out
}

// volatile reports whether a repo file's bytes may change under a command
// that must change nothing: the lock file (it names the last holder), log
// files, and databases (*.db: bbolt rewrites its meta page on every
// transaction, even one that changes nothing). Their presence is still
// compared, and a database's size too.
func volatile(rel string) bool {
	base := filepath.Base(rel)
	return base == "repo.lock" || strings.HasSuffix(base, ".log") ||
		strings.HasPrefix(rel, "logs"+string(filepath.Separator))
}

// sameState compares two states of the file rel.
func sameState(rel string, a, b fileState) bool {
	switch {
	case volatile(rel):
		return true
	case strings.HasSuffix(rel, ".db"):
		return a.size == b.size
	default:
		return a == b
	}
}

// requireUnchanged fails if any non-volatile file under dir differs from before.
func requireUnchanged(t testing.TB, before map[string]fileState, dir string) {
	t.Helper()
	after := snapshot(t, dir)
	var diffs []string
	for p, b := range before {
		a, ok := after[p]
		switch {
		case !ok:
			diffs = append(diffs, "removed "+p)
		case !sameState(p, a, b):
			diffs = append(diffs, fmt.Sprintf("changed %s (%d -> %d bytes)", p, b.size, a.size))
		}
	}
	for p := range after {
		if _, ok := before[p]; !ok && !volatile(p) {
			diffs = append(diffs, "created "+p)
		}
	}
	slices.Sort(diffs)
	check(t, len(diffs) == 0, "files under %s changed:\n%s", dir, strings.Join(diffs, "\n"))
}

// dirSize sums the sizes of the regular files under dir.
func dirSize(t testing.TB, dir string) int64 {
	t.Helper()
	var total int64
	for _, s := range snapshot(t, dir) {
		total += s.size
	}
	return total
}

// listDir returns the names in dir.
func listDir(t testing.TB, dir string) []string {
	t.Helper()
	ents, err := os.ReadDir(dir)
	noErr(t, err)
	var names []string
	for _, e := range ents {
		names = append(names, e.Name())
	}
	return names
}

// blockFile returns the path of the file under repo/blocks that stores the
// block c: the file whose name contains the CID or whose sha256 is the CID's
// digest (a block file holds the ciphertext, which the CID hashes).
func blockFile(t testing.TB, repo, c string) string {
	t.Helper()
	p, ok := findBlockFile(t, repo, c)
	check(t, ok, "no file under %s/blocks holds block %s", repo, c)
	return p
}

func findBlockFile(t testing.TB, repo, c string) (string, bool) {
	t.Helper()
	want := digest(t, c)
	var found string
	err := filepath.WalkDir(filepath.Join(repo, "blocks"), func(p string, d fs.DirEntry, err error) error {
		if err != nil || found != "" {
			return err
		}
		if !d.Type().IsRegular() {
			return nil
		}
		if strings.Contains(strings.ToLower(d.Name()), strings.ToLower(c)) {
			found = p
			return fs.SkipAll
		}
		data, err := os.ReadFile(p)
		if err != nil {
			return err
		}
		if sum := sha256.Sum256(data); bytes.Equal(sum[:], want) {
			found = p
			return fs.SkipAll
		}
		return nil
	})
	noErr(t, err)
	return found, found != ""
}

// copyBlocks copies the block files of cids from repo src into repo dst, at
// the same paths relative to the repos, and returns how many it copied.
func copyBlocks(t testing.TB, src, dst string, cids []string) int {
	t.Helper()
	n := 0
	for _, c := range cids {
		from := blockFile(t, src, c)
		rel, err := filepath.Rel(src, from)
		noErr(t, err)
		to := filepath.Join(dst, rel)
		data, err := os.ReadFile(from)
		noErr(t, err)
		noErr(t, os.MkdirAll(filepath.Dir(to), 0o700))
		noErr(t, os.WriteFile(to, data, 0o600))
		n++
	}
	return n
}

// requireSameBytes compares without dumping megabytes into the log.
func requireSameBytes(t testing.TB, want, got []byte, what string) {
	t.Helper()
	if bytes.Equal(want, got) {
		return
	}
	i := 0
	for i < len(want) && i < len(got) && want[i] == got[i] {
		i++
	}
	t.Fatalf("%s: got %d bytes, want %d; first difference at offset %d", what, len(got), len(want), i)
}

func clip(b []byte, n int) string {
	if len(b) <= n {
		return fmt.Sprintf("%q", b)
	}
	return fmt.Sprintf("%q... (%d bytes)", b[:n], len(b))
}

func quoteArgs(args []string) string {
	q := make([]string, len(args))
	for i, a := range args {
		if a == "" || strings.ContainsAny(a, " \t\n'\"\\$") {
			q[i] = fmt.Sprintf("%q", a)
		} else {
			q[i] = a
		}
	}
	return strings.Join(q, " ")
}

// check fails the test now unless cond holds.
func check(t testing.TB, cond bool, format string, args ...any) {
	t.Helper()
	if !cond {
		t.Fatalf(format, args...)
	}
}

// noErr fails the test now if err is not nil.
func noErr(t testing.TB, err error, context ...any) {
	t.Helper()
	if err != nil {
		if len(context) > 0 {
			t.Fatalf("%s: %v", fmt.Sprint(context...), err)
		}
		t.Fatal(err)
	}
}
