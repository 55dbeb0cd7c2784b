package layers_test

import (
	"bufio"
	"bytes"
	"encoding/json"
	"errors"
	"io"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strings"
	"testing"
)

const module = "github.com/casd/casd/"

// readLayers reads the fenced ```layers block of docs/architecture.md: one
// layer per line, top first, its packages separated by spaces. It returns
// each package's rank, 0 for the bottom layer.
func readLayers(t *testing.T) map[string]int {
	t.Helper()
	f, err := os.Open(filepath.Join("..", "..", "docs", "architecture.md"))
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	var lines [][]string
	in := false
	sc := bufio.NewScanner(f)
	for sc.Scan() {
		line := strings.TrimSpace(sc.Text())
		switch {
		case line == "```layers":
			in = true
		case in && line == "```":
			in = false
		case in && line != "":
			lines = append(lines, strings.Fields(line))
		}
	}
	if err := sc.Err(); err != nil {
		t.Fatal(err)
	}
	if len(lines) == 0 {
		t.Fatal("docs/architecture.md has no ```layers block")
	}
	rank := make(map[string]int)
	for i, pkgs := range slices.Backward(lines) {
		for _, p := range pkgs {
			if _, dup := rank[p]; dup {
				t.Fatalf("docs/architecture.md lists %s in two layers", p)
			}
			rank[p] = len(lines) - 1 - i
		}
	}
	return rank
}

type pkg struct {
	ImportPath string
	GoFiles    []string
	Imports    []string
	Deps       []string
}

// goList runs `go list -deps` on every package of the module and returns
// those with non-test code, by path relative to the module.
func goList(t *testing.T) map[string]pkg {
	t.Helper()
	cmd := exec.Command("go", "list", "-json=ImportPath,GoFiles,Imports,Deps", "./...")
	cmd.Dir = filepath.Join("..", "..")
	var stderr bytes.Buffer
	cmd.Stderr = &stderr
	out, err := cmd.Output()
	if err != nil {
		t.Fatalf("go list: %v\n%s", err, stderr.String())
	}
	pkgs := make(map[string]pkg)
	dec := json.NewDecoder(bytes.NewReader(out))
	for {
		var p pkg
		if err := dec.Decode(&p); errors.Is(err, io.EOF) {
			break
		} else if err != nil {
			t.Fatal(err)
		}
		if len(p.GoFiles) > 0 { // not tests only (integration)
			pkgs[strings.TrimPrefix(p.ImportPath, module)] = p
		}
	}
	return pkgs
}

// TestLayers fails when a package depends, directly or not, on a package
// of its own layer or of a higher one, or when a package is missing from
// the order in docs/architecture.md.
func TestLayers(t *testing.T) {
	if testing.Short() {
		t.Skip("runs go list")
	}
	rank := readLayers(t)
	pkgs := goList(t)
	for p, info := range pkgs {
		r, ok := rank[p]
		if !ok {
			t.Errorf("package %s is not in the layers of docs/architecture.md: place it there", p)
			continue
		}
		for _, d := range info.Deps {
			d = strings.TrimPrefix(d, module)
			if dr, ok := rank[d]; ok && dr >= r {
				t.Errorf("%s (layer %d) depends on %s (layer %d): dependencies must point down", p, r, d, dr)
			}
		}
	}
	for p := range rank {
		if _, ok := pkgs[p]; !ok {
			t.Errorf("docs/architecture.md lists %s, which is not a package with code", p)
		}
	}
}

// TestLibp2pStaysInNode: the CLI, the API and core import nothing of
// libp2p (they know peers by their string IDs), and the storage layers
// below the network do not depend on it at all.
func TestLibp2pStaysInNode(t *testing.T) {
	if testing.Short() {
		t.Skip("runs go list")
	}
	pkgs := goList(t)
	for _, p := range []string{"api", "cmd/casd", "core"} {
		for _, imp := range pkgs[p].Imports {
			if strings.HasPrefix(imp, "github.com/libp2p/") {
				t.Errorf("%s imports %s: only node and its internals know libp2p", p, imp)
			}
		}
	}
	for _, p := range []string{"crypt", "blockstore", "dag"} { // config holds the libp2p identity key
		for _, d := range pkgs[p].Deps {
			if strings.HasPrefix(d, "github.com/libp2p/") {
				t.Errorf("%s depends on %s: the storage layers know no network", p, d)
			}
		}
	}
}
