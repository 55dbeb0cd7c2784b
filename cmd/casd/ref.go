package main

import (
	"bytes"
	"errors"
	"fmt"
	"io"
	"os"
	"strings"

	"github.com/ipfs/go-cid"

	"github.com/casd/casd/blockstore"
	"github.com/casd/casd/dag"
)

// maxRefArg bounds what `-` or `@FILE` may hold: a capability is about 130
// characters.
const maxRefArg = 4 << 10

// refArg returns the CID or capability that arg names: arg itself, or,
// for "-", the one token on stdin, or, for "@FILE", the one token in FILE.
// Read from stdin or a file, a capability never appears in the process's
// command line (which other users of the machine can read in /proc). The
// ref is then checked as [checkRef] does.
func refArg(arg string, stdin io.Reader) (string, error) {
	var (
		data []byte
		err  error
		from string
	)
	switch {
	case arg == "-":
		from = "stdin"
		data, err = io.ReadAll(io.LimitReader(stdin, maxRefArg+1))
	case strings.HasPrefix(arg, "@"):
		from = arg[1:]
		data, err = readSmall(from)
	default:
		return arg, checkRef(arg)
	}
	if err != nil {
		return "", badInput(fmt.Errorf("read the CID or capability from %s: %w", from, err))
	}
	if len(data) > maxRefArg {
		return "", badInput(fmt.Errorf("read the CID or capability from %s: more than %d bytes; it must hold one CID or capability", from, maxRefArg))
	}
	fields := bytes.Fields(data)
	if len(fields) != 1 {
		return "", badInput(fmt.Errorf("read the CID or capability from %s: %d words; it must hold one CID or capability", from, len(fields)))
	}
	ref := string(fields[0])
	return ref, checkRef(ref)
}

// readSmall reads at most maxRefArg+1 bytes of the file at path.
func readSmall(path string) ([]byte, error) {
	if path == "" {
		return nil, errors.New("no file named after @")
	}
	f, err := os.Open(path)
	if err != nil {
		return nil, err
	}
	defer f.Close()
	return io.ReadAll(io.LimitReader(f, maxRefArg+1))
}

// checkRef refuses, as bad input, a CID or capability (of cat, get, refs)
// whose CID is not CIDv1 raw sha2-256, the only form that names a casd
// block (see [blockstore.CheckCid]). A ref that does not parse is left to
// the backend, which reports it as before.
func checkRef(ref string) error {
	r, err := dag.ParseRef(ref)
	if err != nil {
		return nil
	}
	return checkCid(ref, r.Root)
}

// checkBlockCid is [checkRef] for commands that take a bare CID (block).
func checkBlockCid(s string) error {
	c, err := cid.Decode(s)
	if err != nil {
		return nil
	}
	return checkCid(s, c)
}

func checkCid(arg string, c cid.Cid) error {
	if err := blockstore.CheckCid(c); err != nil {
		return badInput(fmt.Errorf("%s: %w; casd names blocks only by such CIDs (bafkrei...)", arg, err))
	}
	return nil
}
