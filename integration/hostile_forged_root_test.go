package integration

import (
	"context"
	"encoding/hex"
	"encoding/json"
	"fmt"
	"iter"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/ipfs/go-cid"
	"github.com/libp2p/go-libp2p/core/peer"

	"github.com/casd/casd/blockstore"
	"github.com/casd/casd/dag"
	"github.com/casd/casd/dag/dagtest"
	"github.com/casd/casd/internal/adversary"
	"github.com/casd/casd/protocol"
)

// keyFileV1Owner is crypt's known-answer key file (docs/format.md, "Key
// file"): master 11...11 and convergence 12...12, the secrets of dag's
// golden vectors, sealed under testPassphrase.
const keyFileV1Owner = `-----BEGIN CASD KEY FILE-----
AQAAAAEAAABAAQABAgMEBQYHCAkKCwwNDg8QERITFBUWFxgZGhvSxqDRzPurOMtq
yOoi+el6WgHAfkM6wJ4OvV+Jv8ilXRA1waaIYQ0T/Sw97qLowX8Ylc5rID0accLi
ID9XXe+Jgtnya6NCl7YtdL9engc4iQ==
-----END CASD KEY FILE-----
`

// TestHostileForgedRoot (hostile peers, point 10): a stranger who was
// given one capability of the owner's forges a root of other content
// around the owner's wrapped file key, sealed under the file key, and
// stores it on the owner's daemon over /cas/store. The forgery is
// well-formed (its capability reads the stranger's words on the owner's
// node), but from its bare CID `casd cat` fails with one line saying a
// capability is needed, and `casd share` refuses it; the genuine file still
// reads. In format 2 (what casd writes) and in format 1 (what existing
// repos hold: the golden vector, on a node restored from its key file),
// where a forgery that keeps the owner's root body is refused too.
func TestHostileForgedRoot(t *testing.T) {
	t.Parallel()
	t.Run("v2", func(t *testing.T) {
		t.Parallel()
		owner := newNode(t)
		words := []byte("The tenant pays 500 a month.\n")
		root := owner.add(t, writeFile(t, t.TempDir(), "lease.txt", words)) // offline: no peers to replicate to
		d := startDaemon(t, owner)
		mountForgedRoot(t, owner, d, owner.share(t, root), words)
	})
	t.Run("v1", func(t *testing.T) {
		t.Parallel()
		owner := newEmptyNode(t)
		keyFile := writeFile(t, t.TempDir(), "casd.key", []byte(keyFileV1Owner))
		owner.requireOK(t, owner.runPass(t, testPassphrase, "init", "--profile=local", "--restore", keyFile))
		d := startDaemon(t, owner)
		token, words, blocks := goldenV1(t)
		c, err := dag.ParseCapability(token)
		noErr(t, err)
		adv := newAdversary(t, d)
		noErr(t, adv.store(t, c.Root, blocks), "store the genuine version-1 file on its owner")
		check(t, owner.share(t, c.Root.String()) == token, "the genuine version-1 file does not share as its capability")
		mountForgedRoot(t, owner, d, token, words)

		// The subtler forgery: the owner's root body (the plaintext that a
		// version-1 file key covers) and wrapped key, linking a chunk of the
		// stranger's. The owner's node writes none of it and will not share it.
		evil := []byte("casd forged vector\n") // as long as the genuine chunk
		forged, err := dagtest.ForgeLinks(t.Context(), adv.getter(), c.Root, c.Key, evil)
		noErr(t, err, "forge")
		root := forged[len(forged)-1].Cid
		noErr(t, adv.store(t, root, forged), "store the forged root on the owner")
		requireSameBytes(t, evil, owner.cat(t, dag.Capability{Root: root, Key: c.Key}.String()), "the forged file by capability")
		msg := requireFail(t, owner.run(t, "cat", root.String()), exitIntegrity)
		check(t, strings.Contains(msg, "capability is needed"), "cat of the forged CID: %q does not say a capability is needed", msg)
		msg = requireFail(t, owner.run(t, "share", root.String()), exitIntegrity)
		check(t, strings.Contains(msg, "not one of this node's files"), "share of the forged CID: %q", msg)
	})
}

// mountForgedRoot forges a root from the owner's capability token, stores
// it on the owner's daemon d, and checks what the owner sees.
func mountForgedRoot(t *testing.T, owner *node, d *daemon, token string, words []byte) {
	c, err := dag.ParseCapability(token)
	noErr(t, err)
	adv := newAdversary(t, d)
	victim := adv.getter()
	ctx, cancel := context.WithTimeout(t.Context(), time.Minute)
	defer cancel()
	evil := []byte("The tenant pays 5 a month and owns the house.\n")
	blocks, err := dagtest.ForgeRoot(ctx, victim, c.Root, c.Key, "lease.txt", evil)
	noErr(t, err, "forge")
	forged := blocks[len(blocks)-1].Cid
	noErr(t, adv.store(t, forged, blocks), "store the forged root on the owner")

	// The forgery is on the owner's node and well-formed: by capability it
	// reads the stranger's words.
	forgedCap := dag.Capability{Root: forged, Key: c.Key}.String()
	requireSameBytes(t, evil, owner.cat(t, forgedCap), "the forged file by capability")

	msg := requireFail(t, owner.run(t, "cat", forged.String()), exitIntegrity)
	check(t, strings.Contains(msg, "capability is needed"), "cat of the forged CID: %q does not say a capability is needed", msg)
	t.Logf("cat of the forged root: %s", msg)
	msg = requireFail(t, owner.run(t, "share", forged.String()), exitIntegrity)
	check(t, strings.Contains(msg, "not one of this node's files"), "share of the forged CID: %q", msg)

	requireSameBytes(t, words, owner.cat(t, c.Root.String()), "the genuine file")
}

// goldenV1 returns the capability, the content and the blocks of the
// "hello" vector of format 1 (dag/testdata/golden.json).
func goldenV1(t *testing.T) (string, []byte, []blockstore.Block) {
	raw, err := os.ReadFile(filepath.Join("..", "dag", "testdata", "golden.json"))
	noErr(t, err)
	var vs []struct {
		Name, Capability string
		Version          int
		SmallBlocks      map[string]string
	}
	noErr(t, json.Unmarshal(raw, &vs))
	for _, v := range vs {
		if v.Name != "hello" || v.Version != 1 {
			continue
		}
		var blocks []blockstore.Block
		for c, h := range v.SmallBlocks {
			data, err := hex.DecodeString(h)
			noErr(t, err)
			blocks = append(blocks, blockstore.Block{Cid: cid.MustParse(c), Data: data})
		}
		return v.Capability, []byte("casd golden vector\n"), blocks
	}
	t.Fatal("no version-1 hello vector in dag/testdata/golden.json")
	return "", nil, nil
}

// stranger is a hostile peer connected to a victim's daemon.
type stranger struct {
	*adversary.Peer
	victim peer.ID
}

func newAdversary(t *testing.T, d *daemon) *stranger {
	t.Helper()
	p, id := newHostile(t, d)
	return &stranger{Peer: p, victim: id}
}

// store pushes blocks of root to the victim over /cas/store, as a replica
// the stranger asks it to hold, and requires it complete.
func (s *stranger) store(t *testing.T, root cid.Cid, blocks []blockstore.Block) error {
	ctx, cancel := context.WithTimeout(t.Context(), time.Minute)
	defer cancel()
	blocks = parentsFirst(t, root, blocks)
	var total uint64
	for _, b := range blocks {
		total += uint64(len(b.Data))
	}
	seq := func(yield func(blockstore.Block, error) bool) {
		for _, b := range blocks {
			if !yield(b, nil) {
				return
			}
		}
	}
	res, err := protocol.Store(ctx, s.Host, s.victim, s.Owner, root, iter.Seq2[blockstore.Block, error](seq), uint64(len(blocks)), total)
	if err != nil {
		return err
	}
	if !res.Complete {
		return fmt.Errorf("the victim stored %d blocks of %s but does not call it complete", res.Stored, root)
	}
	return nil
}

// parentsFirst orders blocks as a store stream must send them: root
// first, each block after the one that links to it (breadth first). A
// block that root does not reach is left out, as a receiver would refuse
// it.
func parentsFirst(t *testing.T, root cid.Cid, blocks []blockstore.Block) []blockstore.Block {
	byCid := make(map[cid.Cid]blockstore.Block, len(blocks))
	for _, b := range blocks {
		byCid[b.Cid] = b
	}
	var out []blockstore.Block
	seen := map[cid.Cid]bool{root: true}
	for queue := []cid.Cid{root}; len(queue) > 0; queue = queue[1:] {
		b, ok := byCid[queue[0]]
		if !ok {
			continue // held by the victim already
		}
		out = append(out, b)
		links, err := dag.Links(b.Cid, b.Data)
		noErr(t, err, "links of", b.Cid)
		for _, l := range links {
			if !seen[l] {
				seen[l] = true
				queue = append(queue, l)
			}
		}
	}
	return out
}

// getter reads blocks from the victim over /cas/get: what the stranger
// knows of the owner's file is its capability and what any peer may fetch.
func (s *stranger) getter() dagtest.Getter { return victimGetter{s} }

type victimGetter struct{ s *stranger }

func (g victimGetter) Get(ctx context.Context, c cid.Cid) ([]byte, error) {
	var data []byte
	missing, err := protocol.Fetch(ctx, g.s.Host, g.s.victim, c, []cid.Cid{c}, func(b blockstore.Block) error {
		data = b.Data
		return nil
	})
	if err != nil {
		return nil, fmt.Errorf("fetch %s from the victim: %w", c, err)
	}
	if len(missing) > 0 {
		return nil, fmt.Errorf("the victim lacks %s", c)
	}
	return data, nil
}
