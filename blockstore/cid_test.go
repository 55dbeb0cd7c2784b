package blockstore_test

import (
	"errors"
	"os"
	"strings"
	"testing"

	"github.com/ipfs/go-cid"

	"github.com/casd/casd/blockstore"
	"github.com/casd/casd/blockstore/blockstoretest"
)

// TestCheckCid pins the one form of CID casd accepts (hostile peers, point
// 13): CIDv1, raw, sha2-256 with its full digest. Everything else,
// including CIDs whose own hash function "verifies" the data, is refused.
func TestCheckCid(t *testing.T) {
	b := blockstoretest.NewBlock([]byte("hello"))
	if err := blockstore.CheckCid(b.Cid); err != nil {
		t.Fatalf("CheckCid(%s) = %v; want nil", b.Cid, err)
	}
	cases := append(blockstoretest.BadCids(b.Data), blockstoretest.NamedCid{Name: "undefined", Cid: cid.Undef})
	for _, tc := range cases {
		t.Run(tc.Name, func(t *testing.T) {
			err := blockstore.CheckCid(tc.Cid)
			if !errors.Is(err, blockstore.ErrBadCid) {
				t.Fatalf("CheckCid(%s) = %v; want ErrBadCid", tc.Cid, err)
			}
			if !strings.HasPrefix(err.Error(), "blockstore: ") {
				t.Fatalf("error %q lacks the package prefix", err)
			}
		})
	}
}

// TestPutRefusesBadCid: a block stored under a CID of another form is
// refused by Put and PutMany, although its data matches that CID under
// the CID's own hash function, and nothing reaches the disk. PutMany
// writes none of a batch holding one such block.
func TestPutRefusesBadCid(t *testing.T) {
	data := []byte("an identity CID holds its own data")
	for _, bad := range blockstoretest.BadCids(data) {
		t.Run(bad.Name, func(t *testing.T) {
			r := newRepo(t)
			s := r.open(t)
			blk := blockstore.Block{Cid: bad.Cid, Data: data}
			if err := s.Put(t.Context(), blk); !errors.Is(err, blockstore.ErrBadCid) {
				t.Fatalf("Put = %v; want ErrBadCid", err)
			}
			good := blockstoretest.NewBlock([]byte("good"))
			if err := s.PutMany(t.Context(), []blockstore.Block{good, blk}); !errors.Is(err, blockstore.ErrBadCid) {
				t.Fatalf("PutMany = %v; want ErrBadCid", err)
			}
			if st, err := s.Stat(t.Context()); err != nil || st.Blocks != 0 {
				t.Fatalf("Stat = %+v, %v; want no block", st, err)
			}
			if ents, err := os.ReadDir(r.blocks); err != nil || len(ents) != 0 {
				t.Fatalf("blocks dir holds %v, %v; want nothing", ents, err)
			}
		})
	}
}
