package main

import (
	"path/filepath"
	"strings"
	"testing"

	"github.com/casd/casd/blockstore/blockstoretest"
)

// TestRefsOfBadCids (hostile peers, point 13): cat, get, refs and block
// take only CIDv1 raw sha2-256; any other CID is bad input (exit 2, one
// line), refused before the repo is opened (there is none here, which
// would otherwise be exit 5).
func TestRefsOfBadCids(t *testing.T) {
	repo := filepath.Join(t.TempDir(), "none")
	for _, bad := range blockstoretest.BadCids([]byte("x")) {
		for _, cmd := range [][]string{{"cat"}, {"get"}, {"refs"}, {"block", "get"}, {"block", "stat"}} {
			t.Run(bad.Name+"/"+strings.Join(cmd, " "), func(t *testing.T) {
				args := append([]string{"--repo", repo}, cmd...)
				r := runCLI(t, append(args, bad.Cid.String())...)
				requireError(t, r, exitBadInput, "not CIDv1 raw sha2-256")
			})
		}
	}
	good := blockstoretest.NewBlock([]byte("x")).Cid.String()
	r := runCLI(t, "--repo", repo, "cat", good)
	requireError(t, r, exitBusy, "no casd repo")
}
