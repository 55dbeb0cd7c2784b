package protocol_test

import (
	"errors"
	"strings"
	"testing"
	"time"

	"github.com/ipfs/go-cid"
	mh "github.com/multiformats/go-multihash"

	"github.com/casd/casd/blockstore"
	"github.com/casd/casd/protocol"
	"github.com/casd/casd/protocol/pb"
)

// identityBlock is a block named by an identity CID: its "hash" is the data
// itself, so any data verifies under it with its own hash function.
func identityBlock(tb testing.TB, data []byte) blockstore.Block {
	tb.Helper()
	h, err := mh.Sum(data, mh.IDENTITY, -1)
	if err != nil {
		tb.Fatal(err)
	}
	return blockstore.Block{Cid: cid.NewCidV1(cid.Raw, h), Data: data}
}

// TestGetServerStrikesBadCid (hostile peers, point 13): a GetRequest naming
// an identity CID, as a want or as the root, is malformed: the server
// answers nothing, resets the stream and strikes the peer, even when its
// backend holds a block under that CID.
func TestGetServerStrikesBadCid(t *testing.T) {
	id := identityBlock(t, []byte("served for free"))
	good := makeBlock(t, []byte("good"))
	cases := map[string]*pb.GetRequest{
		"want":       {Want: []cid.Cid{good.Cid, id.Cid}},
		"root":       {Root: id.Cid, Want: []cid.Cid{good.Cid}},
		"root alone": {Root: id.Cid, WantRootComplete: true},
	}
	for name, req := range cases {
		t.Run(name, func(t *testing.T) {
			client, server := hostPair(t)
			backend := newMemBackend()
			backend.add(id, good)
			svc, st := startService(t, server, backend)
			r := openRaw(t, client, server.ID(), protocol.GetID)
			_ = r.send(req) // may fail once the server resets
			if m, err := r.recv(); err == nil {
				t.Fatalf("server answered %v to a request naming an identity CID", m.Type())
			}
			if err := svc.Close(); err != nil { // waits for the handler
				t.Fatal(err)
			}
			got := st.of(client.ID())
			if len(got) != 1 || !strings.Contains(got[0], "CIDv1 raw sha2-256") {
				t.Fatalf("strikes %q, want one for the CID", got)
			}
		})
	}
}

// TestStoreServerStrikesBadCid: an offer rooted at an identity CID, or a
// block under one (whose data matches it), resets the store stream with a
// strike, and nothing is written.
func TestStoreServerStrikesBadCid(t *testing.T) {
	id := identityBlock(t, []byte("stored for free"))
	good := makeBlock(t, []byte("good"))
	cases := []struct {
		name  string
		root  cid.Cid
		block *blockstore.Block // sent after the offer is accepted
	}{
		{"offer root", id.Cid, nil},
		{"block", good.Cid, &id},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			client, server := hostPair(t)
			backend := newMemBackend()
			svc, st := startService(t, server, backend)
			o := &pb.StoreOffer{Root: tc.root, Blocks: 1, Bytes: 100, Expiry: time.Now().Add(time.Minute).Unix()}
			protocol.SignOffer(newKey(t), server.ID(), o)
			r := openRaw(t, client, server.ID(), protocol.StoreID)
			_ = r.send(o)
			if tc.block != nil {
				if m, err := r.recv(); err != nil || !m.(*pb.StoreReply).Accept {
					t.Fatalf("offer not accepted: %v %v", m, err)
				}
				_ = r.send(&pb.Block{Cid: tc.block.Cid, Data: tc.block.Data})
				_ = r.send(&pb.StoreEnd{})
			}
			if m, err := r.recv(); err == nil {
				t.Fatalf("server answered %+v", m)
			}
			if err := svc.Close(); err != nil {
				t.Fatal(err)
			}
			if n := backend.count(); n != 0 {
				t.Fatalf("%d blocks written", n)
			}
			if got := st.of(client.ID()); len(got) != 1 {
				t.Fatalf("strikes %q, want one", got)
			}
		})
	}
}

// TestClientRefusesBadCid: Fetch, HasRoot and Store refuse an identity CID
// before sending anything (a peer would strike us for it), and a session
// stays usable after such a refusal.
func TestClientRefusesBadCid(t *testing.T) {
	client, server := hostPair(t)
	backend := newMemBackend()
	good := makeBlock(t, []byte("good"))
	backend.add(good)
	_, st := startService(t, server, backend)
	id := identityBlock(t, []byte("x")).Cid
	s, err := protocol.NewGetSession(t.Context(), client, server.ID())
	if err != nil {
		t.Fatal(err)
	}
	defer s.Close()
	onBlock := func(blockstore.Block) error { return nil }
	if _, err := s.Fetch(t.Context(), cid.Undef, []cid.Cid{good.Cid, id}, onBlock); !errors.Is(err, blockstore.ErrBadCid) {
		t.Fatalf("Fetch(identity want) = %v; want ErrBadCid", err)
	}
	if _, err := s.Fetch(t.Context(), id, []cid.Cid{good.Cid}, onBlock); !errors.Is(err, blockstore.ErrBadCid) {
		t.Fatalf("Fetch(identity root) = %v; want ErrBadCid", err)
	}
	if _, err := s.HasRoot(t.Context(), id); !errors.Is(err, blockstore.ErrBadCid) {
		t.Fatalf("HasRoot(identity) = %v; want ErrBadCid", err)
	}
	if missing, err := s.Fetch(t.Context(), cid.Undef, []cid.Cid{good.Cid}, onBlock); err != nil || len(missing) != 0 {
		t.Fatalf("Fetch after refusals = %v, %v; want the block", missing, err)
	}
	_, err = protocol.Store(t.Context(), client, server.ID(), newKey(t), id, nil, 0, 0)
	if !errors.Is(err, blockstore.ErrBadCid) {
		t.Fatalf("Store(identity root) = %v; want ErrBadCid", err)
	}
	if got := st.of(client.ID()); len(got) != 0 {
		t.Fatalf("strikes %q, want none", got)
	}
}
