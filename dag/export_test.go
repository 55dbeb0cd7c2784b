package dag

import (
	"testing"

	"github.com/ipfs/go-cid"

	"github.com/casd/casd/crypt"
	"github.com/casd/casd/dag/dagtest"
)

// SealManifest returns a manifest block of kind and height that links to
// links, sealed with this package's encoder under a zero convergence
// secret (a root's file key is wrapped under a zero master key), with
// every entry of size 1. Its clear part is what a keyless walker reads, so
// tests use it to mount attacks with blocks that parse, as a hostile peer
// would write them.
func SealManifest(kind byte, height int, links []cid.Cid) []byte {
	var conv crypt.Key
	b := &body{entries: make([]entry, len(links))}
	for i := range b.entries {
		b.entries[i].size = 1
	}
	if kind == KindRoot {
		b.meta = &Meta{Name: "forged", Size: int64(len(links)), ChunkSize: MinChunkSize}
	}
	data, _ := sealManifest(&conv, kind, height, links, &conv, b)
	return data
}

// Golden is a stored golden vector loaded into a store.
type Golden struct {
	Store   *dagtest.MemStore
	Secrets *crypt.Secrets
	Cap     Capability
}

// LoadGolden loads the stored vector of the given name and format version.
func LoadGolden(t testing.TB, name string, version int) Golden {
	g := loadGolden(t, name, version)
	return Golden{Store: g.st, Secrets: &g.secrets, Cap: g.cap}
}
