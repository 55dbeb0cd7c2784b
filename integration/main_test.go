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
package integration

import (
	"bytes"
	"flag"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
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
	args := []string{"build", "-o", casdBin}
	if raceEnabled {
		args = append(args, "-race")
	}
	args = append(args, "./cmd/casd")
	build := exec.Command("go", args...)
	build.Dir = root
	var out bytes.Buffer
	build.Stdout = &out
	build.Stderr = &out
	if err := build.Run(); err != nil {
		fmt.Fprintf(os.Stderr, "integration: go %s: %v\n%s", strings.Join(args, " "), err, out.String())
		return 1
	}
	return m.Run()
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
