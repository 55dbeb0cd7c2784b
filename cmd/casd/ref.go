package main

import (
	"fmt"

	"github.com/ipfs/go-cid"

	"github.com/casd/casd/blockstore"
	"github.com/casd/casd/dag"
)

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
