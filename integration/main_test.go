// Package integration runs the real casd binary, as a user would, and checks
// what a user can observe: stdout, stderr, exit codes and the files on disk.
//
// # Binary
//
// TestMain builds ./cmd/casd once into a temporary directory (with -race when
// the tests themselves run with -race), or uses the binary named by $CASD_BIN.
// A build failure fails the whole run: these tests never skip.
//
// # Isolation
//
// Every test gets its own repo directories, its own $HOME and its own working
// directory (see [newNode]). Every command is logged in a transcript that is
// printed, with its stderr, when the test fails.
//
// # Network labs
//
// Tests of what happens on a LAN (mDNS) run daemons in Linux network
// namespaces that the test creates and deletes (see netns_test.go): they
// need root and iproute2, and skip without them unless CI=true. Nothing of
// a lab is in the machine's own namespace, and no lab has a route out. The
// NAT lab (natlab_test.go; it also needs iptables) puts hosts on an
// "internet" with addresses libp2p counts as public and behind home
// routers that masquerade and drop unsolicited traffic silently.
package integration

import (
	"bytes"
	"flag"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"sync"
	"testing"
)

// casdBin is the absolute path of the casd binary under test.
var casdBin string

func TestMain(m *testing.M) {
	os.Exit(testMain(m))
}

func testMain(m *testing.M) int {
	flag.Parse()
	if bin := os.Getenv("CASD_BIN"); bin != "" {
		abs, err := filepath.Abs(bin)
		if err != nil {
			fmt.Fprintf(os.Stderr, "integration: CASD_BIN %q: %v\n", bin, err)
			return 1
		}
		casdBin = abs
		return m.Run()
	}

	tmp, err := os.MkdirTemp("", "casd-integration-bin-")
	if err != nil {
		fmt.Fprintf(os.Stderr, "integration: make temp dir: %v\n", err)
		return 1
	}
	defer os.RemoveAll(tmp)

	root, err := moduleRoot()
	if err != nil {
		fmt.Fprintf(os.Stderr, "integration: find module root: %v\n", err)
		return 1
	}
	casdBin = filepath.Join(tmp, "casd")
	if err := buildCasd(root, casdBin, raceEnabled); err != nil {
		fmt.Fprintf(os.Stderr, "integration: %v\n", err)
		return 1
	}
	binDir = tmp
	return m.Run()
}

// buildCasd builds ./cmd/casd of the module at root into out.
func buildCasd(root, out string, race bool) error {
	args := []string{"build", "-o", out}
	if race {
		args = append(args, "-race")
	}
	args = append(args, "./cmd/casd")
	build := exec.Command("go", args...)
	build.Dir = root
	var log bytes.Buffer
	build.Stdout = &log
	build.Stderr = &log
	if err := build.Run(); err != nil {
		return fmt.Errorf("go %s: %w\n%s", strings.Join(args, " "), err, log.String())
	}
	return nil
}

// binDir holds the binaries TestMain built; empty when CASD_BIN names one.
var binDir string

var measured struct {
	once sync.Once
	bin  string
	err  error
}

// measuredBin returns a casd binary built without the race detector, for
// the tests that measure a daemon's resident memory: under -race every
// byte a daemon touches costs several more of shadow memory, which is not
// what a user's daemon holds. It is casdBin when that is not a race build
// (or was given by CASD_BIN), and is built once otherwise.
func measuredBin(t testing.TB) string {
	t.Helper()
	if !raceEnabled || binDir == "" {
		return casdBin
	}
	measured.once.Do(func() {
		root, err := moduleRoot()
		if err != nil {
			measured.err = err
			return
		}
		measured.bin = filepath.Join(binDir, "casd-norace")
		measured.err = buildCasd(root, measured.bin, false)
	})
	noErr(t, measured.err, "build casd without -race")
	return measured.bin
}

// moduleRoot returns the directory holding go.mod, asking the go command and
// falling back to the parent of this package's directory.
func moduleRoot() (string, error) {
	out, err := exec.Command("go", "env", "GOMOD").Output()
	if err == nil {
		if gomod := strings.TrimSpace(string(out)); gomod != "" && gomod != os.DevNull {
			return filepath.Dir(gomod), nil
		}
	}
	root, err := filepath.Abs("..")
	if err != nil {
		return "", err
	}
	if _, err := os.Stat(filepath.Join(root, "go.mod")); err != nil {
		return "", fmt.Errorf("no go.mod in %s: %w", root, err)
	}
	return root, nil
}
