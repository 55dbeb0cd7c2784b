package pb_test

import (
	"bytes"
	"errors"
	"testing"

	"github.com/ipfs/go-cid"

	"github.com/casd/casd/blockstore"
	"github.com/casd/casd/blockstore/blockstoretest"
	"github.com/casd/casd/protocol/pb"
)

// badCidMessages returns, for each CID that is not CIDv1 raw sha2-256,
// one message per CID field of the wire naming it.
func badCidMessages() map[string]pb.Message {
	good := blockstoretest.NewBlock([]byte("good")).Cid
	ms := make(map[string]pb.Message)
	owner, sig := bytes.Repeat([]byte{3}, pb.OwnerKeySize), bytes.Repeat([]byte{4}, pb.SigSize)
	for _, bad := range blockstoretest.BadCids([]byte("data")) {
		c := bad.Cid
		ms[bad.Name+"/GetRequest.Root"] = &pb.GetRequest{Root: c, Want: []cid.Cid{good}}
		ms[bad.Name+"/GetRequest.Want"] = &pb.GetRequest{Want: []cid.Cid{good, c}}
		ms[bad.Name+"/Block.Cid"] = &pb.Block{Cid: c, Data: []byte("data")}
		ms[bad.Name+"/Missing.Cid"] = &pb.Missing{Cid: c}
		ms[bad.Name+"/StoreOffer.Root"] = &pb.StoreOffer{Root: c, Blocks: 1, Bytes: 4}
		ms[bad.Name+"/Challenge.Root"] = &pb.Challenge{Root: c, Cid: good}
		ms[bad.Name+"/Challenge.Cid"] = &pb.Challenge{Root: good, Cid: c}
		ms[bad.Name+"/Lease.Root"] = &pb.Lease{Root: c, Owner: owner, Sig: sig}
		ms[bad.Name+"/Remove.Root"] = &pb.Remove{Root: c, Owner: owner, Sig: sig}
		ms[bad.Name+"/TreeChallenge.Root"] = &pb.TreeChallenge{Root: c, Owner: owner, Sig: sig}
	}
	return ms
}

// TestDecodersRefuseBadCids (hostile peers, point 13): every CID field of
// every message, on the fast path (Block) and the generated one, refuses a
// CID that is not CIDv1 raw sha2-256 as malformed, so the handler resets
// the stream and strikes the peer.
func TestDecodersRefuseBadCids(t *testing.T) {
	for name, m := range badCidMessages() {
		t.Run(name, func(t *testing.T) {
			got, err := pb.Unmarshal(pb.Marshal(m))
			if !errors.Is(err, pb.ErrMalformed) || !errors.Is(err, blockstore.ErrBadCid) {
				t.Fatalf("Unmarshal = %+v, %v; want ErrMalformed wrapping ErrBadCid", got, err)
			}
			if err := pb.New(m.Type()).UnmarshalBody(m.AppendBody(nil)); !errors.Is(err, pb.ErrMalformed) {
				t.Fatalf("UnmarshalBody = %v; want ErrMalformed", err)
			}
		})
	}
}

// FuzzBadCids starts from messages naming bad CIDs: nothing that decodes
// may carry one.
func FuzzBadCids(f *testing.F) {
	for _, m := range badCidMessages() {
		f.Add(pb.Marshal(m))
	}
	f.Fuzz(func(t *testing.T, b []byte) {
		m, err := pb.Unmarshal(b)
		if err != nil {
			return
		}
		var cids []cid.Cid
		switch m := m.(type) {
		case *pb.GetRequest:
			cids = append([]cid.Cid{m.Root}, m.Want...)
		case *pb.Block:
			cids = []cid.Cid{m.Cid}
		case *pb.Missing:
			cids = []cid.Cid{m.Cid}
		case *pb.StoreOffer:
			cids = []cid.Cid{m.Root}
		case *pb.Challenge:
			cids = []cid.Cid{m.Root, m.Cid}
		case *pb.Lease:
			cids = []cid.Cid{m.Root}
		case *pb.Remove:
			cids = []cid.Cid{m.Root}
		case *pb.TreeChallenge:
			cids = []cid.Cid{m.Root}
		}
		for _, c := range cids {
			if c.Defined() {
				if err := blockstore.CheckCid(c); err != nil {
					t.Fatalf("%v decoded with %v", m.Type(), err)
				}
			}
		}
	})
}
