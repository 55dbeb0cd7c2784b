package protocol_test

import (
	"bytes"
	"context"
	"crypto/ed25519"

	"errors"
	"iter"
	"math"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/ipfs/go-cid"
	"github.com/libp2p/go-libp2p/core/peer"

	"github.com/casd/casd/blockstore"
	"github.com/casd/casd/dag"
	"github.com/casd/casd/protocol"
	"github.com/casd/casd/protocol/pb"
)

func newKey(tb testing.TB) ed25519.PrivateKey {
	tb.Helper()
	_, priv, err := ed25519.GenerateKey(nil)
	if err != nil {
		tb.Fatal(err)
	}
	return priv
}

func seqOf(bs []blockstore.Block) iter.Seq2[blockstore.Block, error] {
	return func(yield func(blockstore.Block, error) bool) {
		for _, b := range bs {
			if !yield(b, nil) {
				return
			}
		}
	}
}

func totalBytes(bs []blockstore.Block) uint64 {
	var n uint64
	for _, b := range bs {
		n += uint64(len(b.Data))
	}
	return n
}

// storeTree returns a root block and 40 chunks (more than a batch), a
// tree that backend holds complete once it has them all.
func storeTree(tb testing.TB, backend *memBackend) []blockstore.Block {
	tb.Helper()
	bs := fileTree(tb, 40, 3000, dag.DefaultFanout, "store")
	completeOn(backend, bs)
	return bs
}

func TestStore(t *testing.T) {
	owner := newKey(t)
	cases := []struct {
		name         string
		send         func([]blockstore.Block) []blockstore.Block
		wantComplete bool
	}{
		{"whole tree", func(bs []blockstore.Block) []blockstore.Block { return bs }, true},
		{"part of the tree", func(bs []blockstore.Block) []blockstore.Block { return bs[:20] }, false},
		{"no blocks", func([]blockstore.Block) []blockstore.Block { return nil }, false},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			client, server := hostPair(t)
			backend := newMemBackend()
			svc, _ := startService(t, server, backend)
			bs := storeTree(t, backend)
			send := tc.send(bs)

			res, err := protocol.Store(context.Background(), client, server.ID(), owner, bs[0].Cid,
				seqOf(send), uint64(len(send)), totalBytes(send))
			if err != nil {
				t.Fatal(err)
			}
			if res.Stored != uint64(len(send)) || res.Complete != tc.wantComplete {
				t.Fatalf("result %+v, want Stored %d Complete %v", res, len(send), tc.wantComplete)
			}
			if backend.count() != len(send) {
				t.Fatalf("backend holds %d blocks, want %d", backend.count(), len(send))
			}
			got, pinned := backend.pin(bs[0].Cid)
			if pinned != tc.wantComplete {
				t.Fatalf("pinned = %v, want %v", pinned, tc.wantComplete)
			}
			pub := owner.Public().(ed25519.PublicKey)
			if pinned && !got.owner.Equal(pub) {
				t.Fatalf("pinned for owner %x, want %x", got.owner, pub)
			}
			if err := svc.Close(); err != nil { // waits for the handler
				t.Fatal(err)
			}
			if n := backend.outstanding(); n != 0 {
				t.Fatalf("%d reservations not released", n)
			}
		})
	}
}

func TestStoreRejected(t *testing.T) {
	client, server := hostPair(t)
	backend := newMemBackend()
	backend.quota = 10_000
	_, st := startService(t, server, backend)
	bs := storeTree(t, backend)

	_, err := protocol.Store(context.Background(), client, server.ID(), newKey(t), bs[0].Cid,
		seqOf(bs), uint64(len(bs)), totalBytes(bs))
	if !errors.Is(err, protocol.ErrRejected) {
		t.Fatalf("err = %v, want ErrRejected", err)
	}
	var rerr *protocol.RemoteError
	if !errors.As(err, &rerr) || !strings.HasPrefix(rerr.Reason, "over quota") {
		t.Fatalf("err = %v, want a RemoteError with the quota message", err)
	}
	if backend.count() != 0 {
		t.Fatalf("%d blocks written after a rejection", backend.count())
	}
	if got := st.of(client.ID()); len(got) != 0 {
		t.Fatalf("over-quota client struck: %q", got)
	}
}

func TestStoreBadOffer(t *testing.T) {
	root := makeBlock(t, []byte("root")).Cid
	owner := newKey(t)
	cases := []struct {
		name       string
		tamper     func(o *pb.StoreOffer, receiver peer.ID)
		wantReason string
		wantStrike bool
	}{
		{"signed for another receiver", func(o *pb.StoreOffer, _ peer.ID) {
			protocol.SignOffer(owner, "12D3KooWSomeoneElse", o)
		}, "signature", true},
		{"bytes changed after signing", func(o *pb.StoreOffer, _ peer.ID) { o.Bytes++ }, "signature", true},
		{"signed by another key", func(o *pb.StoreOffer, r peer.ID) {
			pub := o.Owner
			protocol.SignOffer(newKey(t), r, o)
			o.Owner = pub
		}, "signature", true},
		{"no signature", func(o *pb.StoreOffer, _ peer.ID) { o.Sig = nil }, "signature", true},
		{"expired", func(o *pb.StoreOffer, r peer.ID) {
			o.Expiry = time.Now().Add(-time.Minute).Unix()
			protocol.SignOffer(owner, r, o)
		}, "expired", false},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			client, server := hostPair(t)
			backend := newMemBackend()
			svc, st := startService(t, server, backend)

			o := &pb.StoreOffer{Root: root, Blocks: 1, Bytes: 4, Expiry: time.Now().Add(time.Minute).Unix()}
			protocol.SignOffer(owner, server.ID(), o)
			tc.tamper(o, server.ID())
			r := openRaw(t, client, server.ID(), protocol.StoreID)
			if err := r.send(o); err != nil {
				t.Fatal(err)
			}
			m, err := r.recv()
			if err != nil {
				t.Fatal(err)
			}
			reply, ok := m.(*pb.StoreReply)
			if !ok || reply.Accept || !strings.Contains(reply.Reason, tc.wantReason) {
				t.Fatalf("reply %+v, want a rejection about %q", m, tc.wantReason)
			}
			if err := svc.Close(); err != nil {
				t.Fatal(err)
			}
			if got := st.of(client.ID()); (len(got) > 0) != tc.wantStrike {
				t.Fatalf("strikes %q, want strike %v", got, tc.wantStrike)
			}
		})
	}
}

// TestStoreMaliciousClient plays a client that pushes bad input after an
// accepted offer.
func TestStoreMaliciousClient(t *testing.T) {
	good := fileTree(t, 2, 100, dag.DefaultFanout, "good") // a root and 2 chunks
	size := totalBytes(good)
	huge := make([]byte, protocol.MaxMessageSize+1)
	cases := []struct {
		name   string
		blocks int // offered
		bytes  uint64
		write  func(r *rawStream) error
	}{
		{"corrupt block after good ones", 4, size + 100, func(r *rawStream) error {
			for _, b := range good {
				if err := r.send(&pb.Block{Cid: b.Cid, Data: b.Data}); err != nil {
					return err
				}
			}
			return r.send(&pb.Block{Cid: good[0].Cid, Data: []byte("forged")})
		}},
		{"block without cid", 1, 100, func(r *rawStream) error {
			return r.send(&pb.Block{Data: good[0].Data})
		}},
		{"more blocks than offered", 2, size, func(r *rawStream) error {
			for _, b := range good {
				if err := r.send(&pb.Block{Cid: b.Cid, Data: b.Data}); err != nil {
					return err
				}
			}
			return r.send(&pb.StoreEnd{})
		}},
		{"more bytes than offered", 3, size - 1, func(r *rawStream) error {
			for _, b := range good {
				if err := r.send(&pb.Block{Cid: b.Cid, Data: b.Data}); err != nil {
					return err
				}
			}
			return r.send(&pb.StoreEnd{})
		}},
		{"oversize message", 1, 1 << 30, func(r *rawStream) error {
			return r.w.WriteMsg(huge)
		}},
		{"unexpected message", 1, 100, func(r *rawStream) error {
			return r.send(&pb.GetRequest{})
		}},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			client, server := hostPair(t)
			backend := newMemBackend()
			svc, st := startService(t, server, backend)

			o := &pb.StoreOffer{Root: good[0].Cid, Blocks: uint64(tc.blocks), Bytes: tc.bytes,
				Expiry: time.Now().Add(time.Minute).Unix()}
			protocol.SignOffer(newKey(t), server.ID(), o)
			r := openRaw(t, client, server.ID(), protocol.StoreID)
			if err := r.send(o); err != nil {
				t.Fatal(err)
			}
			if m, err := r.recv(); err != nil || !m.(*pb.StoreReply).Accept {
				t.Fatalf("offer not accepted: %v %v", m, err)
			}
			_ = tc.write(r) // may fail once the server resets
			if m, err := r.recv(); err == nil {
				t.Fatalf("server answered %+v to bad input", m)
			}
			if err := svc.Close(); err != nil { // waits for the handler
				t.Fatal(err)
			}
			if n := backend.count(); n != 0 {
				t.Fatalf("%d blocks written", n)
			}
			if n := backend.outstanding(); n != 0 {
				t.Fatalf("%d reservations not released", n)
			}
			if got := st.of(client.ID()); len(got) != 1 {
				t.Fatalf("strikes %q, want one", got)
			}
		})
	}
}

func TestStoreOversizeOffer(t *testing.T) {
	client, server := hostPair(t)
	svc, st := startService(t, server, newMemBackend())
	o := &pb.StoreOffer{Root: makeBlock(t, nil).Cid, Owner: make([]byte, protocol.MaxRequestSize)}
	r := openRaw(t, client, server.ID(), protocol.StoreID)
	_ = r.send(o) // may fail once the server resets
	if m, err := r.recv(); err == nil {
		t.Fatalf("server answered %+v to an oversize offer", m)
	}
	if err := svc.Close(); err != nil {
		t.Fatal(err)
	}
	if got := st.of(client.ID()); len(got) != 1 || !strings.Contains(got[0], "too large") {
		t.Fatalf("strikes %q, want one for size", got)
	}
}

func TestStoreBlocksError(t *testing.T) {
	client, server := hostPair(t)
	backend := newMemBackend()
	startService(t, server, backend)
	bs := storeTree(t, backend)
	errSource := errors.New("source failed")
	seq := func(yield func(blockstore.Block, error) bool) {
		if !yield(bs[0], nil) {
			return
		}
		yield(blockstore.Block{}, errSource)
	}
	_, err := protocol.Store(context.Background(), client, server.ID(), newKey(t), bs[0].Cid,
		seq, 2, totalBytes(bs[:2]))
	if !errors.Is(err, errSource) {
		t.Fatalf("err = %v, want errSource", err)
	}
}

func TestStoreContextCancel(t *testing.T) {
	client, server := hostPair(t)
	backend := newMemBackend()
	startService(t, server, backend)
	bs := storeTree(t, backend)

	ctx, cancel := context.WithCancel(context.Background())
	seq := func(yield func(blockstore.Block, error) bool) {
		for i, b := range bs {
			if i == 5 {
				cancel()
			}
			if !yield(b, nil) {
				return
			}
		}
	}
	_, err := protocol.Store(ctx, client, server.ID(), newKey(t), bs[0].Cid, seq,
		uint64(len(bs)), totalBytes(bs))
	if !errors.Is(err, context.Canceled) {
		t.Fatalf("err = %v, want context.Canceled", err)
	}
}

func TestVerifyOffer(t *testing.T) {
	owner := newKey(t)
	receiver := peer.ID("receiver-peer-id")
	now := time.Unix(1_800_000_000, 0)
	root := makeBlock(t, []byte("r")).Cid
	signed := func(mod func(o *pb.StoreOffer)) *pb.StoreOffer {
		o := &pb.StoreOffer{Root: root, Blocks: 2, Bytes: 1 << 20, Expiry: now.Add(10 * time.Minute).Unix()}
		mod(o)
		protocol.SignOffer(owner, receiver, o)
		return o
	}
	cases := []struct {
		name    string
		offer   *pb.StoreOffer
		wantErr error
	}{
		{"valid", signed(func(*pb.StoreOffer) {}), nil},
		{"expiring now", signed(func(o *pb.StoreOffer) { o.Expiry = now.Unix() }), nil},
		{"one hour ahead", signed(func(o *pb.StoreOffer) { o.Expiry = now.Add(time.Hour).Unix() }), nil},
		{"expired", signed(func(o *pb.StoreOffer) { o.Expiry = now.Unix() - 1 }), protocol.ErrOfferExpired},
		{"too far ahead", signed(func(o *pb.StoreOffer) { o.Expiry = now.Add(time.Hour).Unix() + 1 }),
			protocol.ErrOfferExpired},
		{"tampered expiry", func() *pb.StoreOffer {
			o := signed(func(*pb.StoreOffer) {})
			o.Expiry++
			return o
		}(), protocol.ErrBadSignature},
		{"tampered root", func() *pb.StoreOffer {
			o := signed(func(*pb.StoreOffer) {})
			o.Root = makeBlock(t, []byte("other")).Cid
			return o
		}(), protocol.ErrBadSignature},
		{"short key", func() *pb.StoreOffer {
			o := signed(func(*pb.StoreOffer) {})
			o.Owner = o.Owner[:31]
			return o
		}(), protocol.ErrBadSignature},
		{"short signature", func() *pb.StoreOffer {
			o := signed(func(*pb.StoreOffer) {})
			o.Sig = o.Sig[:63]
			return o
		}(), protocol.ErrBadSignature},
		{"no root", signed(func(o *pb.StoreOffer) { o.Root = cid.Undef }), protocol.ErrBadSignature},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			err := protocol.VerifyOffer(receiver, tc.offer, now)
			if tc.wantErr == nil && err != nil || !errors.Is(err, tc.wantErr) {
				t.Fatalf("err = %v, want %v", err, tc.wantErr)
			}
			// Another receiver never accepts it.
			if err := protocol.VerifyOffer("someone-else", tc.offer, now); err == nil {
				t.Fatal("offer valid for another receiver")
			}
		})
	}
}

func TestRemoteError(t *testing.T) {
	var err error = &protocol.RemoteError{Reason: "full"}
	if !errors.Is(err, protocol.ErrRejected) || !strings.Contains(err.Error(), "full") {
		t.Fatalf("RemoteError %v", err)
	}
	if got, want := err.Error(), "protocol: rejected by peer: full"; got != want {
		t.Fatalf("Error() = %q, want %q", got, want)
	}
	// A refusal is not a breach: a caller that drops misbehaving peers
	// must not drop one that is merely full.
	for _, breach := range []error{protocol.ErrBadBlock, protocol.ErrProtocol, protocol.ErrMessageTooLarge,
		protocol.ErrBadSignature, protocol.ErrOfferExpired, protocol.ErrSessionBroken} {
		if errors.Is(err, breach) {
			t.Fatalf("RemoteError is %v", breach)
		}
	}
}

func TestStoreLargeBlocks(t *testing.T) {
	client, server := hostPair(t)
	backend := newMemBackend()
	svc, _ := startService(t, server, backend)
	bs := treeOf(t, largeChunks(t), dag.DefaultFanout, "large")
	res, err := protocol.Store(context.Background(), client, server.ID(), newKey(t), bs[0].Cid,
		seqOf(bs), uint64(len(bs)), totalBytes(bs))
	if err != nil {
		t.Fatal(err)
	}
	if res.Stored != uint64(len(bs)) || !res.Complete {
		t.Fatalf("result %+v, want Stored %d Complete", res, len(bs))
	}
	if err := svc.Close(); err != nil {
		t.Fatal(err)
	}
	for _, b := range bs {
		got, err := backend.Get(context.Background(), b.Cid)
		if err != nil || !bytes.Equal(got, b.Data) {
			t.Fatalf("block of %d bytes: stored %d bytes, %v", len(b.Data), len(got), err)
		}
	}
}

func TestStoreRefusesOversizeBlock(t *testing.T) {
	client, server := hostPair(t)
	backend := newMemBackend()
	startService(t, server, backend)
	bs := []blockstore.Block{blockOfSize(t, blockstore.MaxBlockSize+1, "huge")}
	_, err := protocol.Store(context.Background(), client, server.ID(), newKey(t), bs[0].Cid,
		seqOf(bs), 1, totalBytes(bs))
	if err == nil || !strings.Contains(err.Error(), "exceeds") {
		t.Fatalf("err = %v, want the client to refuse the block", err)
	}
	if n := backend.count(); n != 0 {
		t.Fatalf("%d blocks stored", n)
	}
}

// TestStoreBatches checks how the receiver writes what it gets: in
// PutMany calls of at most 16 blocks and 16 MiB (what one stream may hold
// unwritten), each filled to one of those bounds but the last.
func TestStoreBatches(t *testing.T) {
	const maxBlocks, maxBytes = 16, 16 << 20
	cases := []struct {
		name   string
		blocks []blockstore.Block
	}{
		{"small blocks", fileTree(t, 40, 3000, dag.DefaultFanout, "batch")},
		{"one batch exactly", fileTree(t, 15, 100, dag.DefaultFanout, "sixteen")},
		{"4 MiB blocks", alignedTree(t, "big")},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			client, server := casdHostPair(t) // room for a whole batch
			backend := newMemBackend()
			svc, _ := startService(t, server, backend)
			bs := tc.blocks
			res, err := protocol.Store(context.Background(), client, server.ID(), newKey(t), bs[0].Cid,
				seqOf(bs), uint64(len(bs)), totalBytes(bs))
			if err != nil || res.Stored != uint64(len(bs)) {
				t.Fatalf("Store = %+v, %v", res, err)
			}
			if err := svc.Close(); err != nil {
				t.Fatal(err)
			}
			batches := backend.putBatches()
			n := 0
			for i, b := range batches {
				n += b.blocks
				if b.blocks > maxBlocks || b.bytes > maxBytes {
					t.Fatalf("batch %d of %v: %d blocks, %d bytes", i, batches, b.blocks, b.bytes)
				}
				if i < len(batches)-1 && b.blocks < maxBlocks && b.bytes < maxBytes {
					t.Fatalf("batch %d of %v written before it was full", i, batches)
				}
			}
			if n != len(bs) {
				t.Fatalf("batches %v hold %d blocks, want %d", batches, n, len(bs))
			}
		})
	}
}

// TestStoreOfferBytes checks the receiver against an offer whose charge
// (its bytes plus BlockCharge for its one block) does not fit the int64 of
// StoreBackend.Reserve: refused before Reserve sees a negative number,
// while the largest charge that fits is passed on as is.
func TestStoreOfferBytes(t *testing.T) {
	cases := []struct {
		name    string
		bytes   uint64
		accept  bool
		reserve []int64
	}{
		{"largest int64", math.MaxInt64 - protocol.BlockCharge, true, []int64{math.MaxInt64}},
		{"one more", math.MaxInt64 - protocol.BlockCharge + 1, false, nil},
		{"bytes of an int64", math.MaxInt64, false, nil},
		{"largest uint64", math.MaxUint64, false, nil},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			client, server := hostPair(t)
			backend := newMemBackend()
			svc, st := startService(t, server, backend)
			o := &pb.StoreOffer{Root: makeBlock(t, []byte("root")).Cid, Blocks: 1, Bytes: tc.bytes,
				Expiry: time.Now().Add(time.Minute).Unix()}
			protocol.SignOffer(newKey(t), server.ID(), o)
			r, reply := offerStore(t, client, server, o)
			if reply.Accept != tc.accept {
				t.Fatalf("reply %+v, want Accept %v", reply, tc.accept)
			}
			if !tc.accept && !strings.Contains(reply.Reason, "too large") {
				t.Fatalf("reason %q", reply.Reason)
			}
			_ = r.s.Reset()
			if err := svc.Close(); err != nil {
				t.Fatal(err)
			}
			if got := backend.reservations(); !slices.Equal(got, tc.reserve) {
				t.Fatalf("Reserve asked for %v, want %v", got, tc.reserve)
			}
			if got := st.of(client.ID()); len(got) != 0 {
				t.Fatalf("client struck: %q", got)
			}
		})
	}
}

// TestStoreBackendError checks a store that fails on the receiver's side:
// the client gets an error that is neither a rejection nor a breach, the
// client is not struck, nothing is pinned and the reservation is released.
// A failed write is a warning for the operator.
func TestStoreBackendError(t *testing.T) {
	errDisk := errors.New("disk on fire")
	cases := []struct {
		name string
		set  func(m *memBackend)
		warn bool // the operator must be warned
	}{
		{"PutMany fails", func(m *memBackend) { m.failPut = errDisk }, true},
		{"Complete fails", func(m *memBackend) { m.failComplete = errDisk }, false},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			client, server := hostPair(t)
			backend := newMemBackend()
			svc, st := startService(t, server, backend)
			bs := storeTree(t, backend)
			tc.set(backend)
			warnings := captureLogs(t, "warn")
			_, err := protocol.Store(context.Background(), client, server.ID(), newKey(t), bs[0].Cid,
				seqOf(bs), uint64(len(bs)), totalBytes(bs))
			if err == nil {
				t.Fatal("Store succeeded against a failing backend")
			}
			for _, not := range []error{protocol.ErrRejected, protocol.ErrProtocol, protocol.ErrBadBlock} {
				if errors.Is(err, not) {
					t.Fatalf("err = %v, want no %v", err, not)
				}
			}
			if err := svc.Close(); err != nil {
				t.Fatal(err)
			}
			if _, pinned := backend.pin(bs[0].Cid); pinned {
				t.Fatal("root pinned after a failed store")
			}
			if n := backend.outstanding(); n != 0 {
				t.Fatalf("%d reservations not released", n)
			}
			if got := st.of(client.ID()); len(got) != 0 {
				t.Fatalf("client struck for a backend error: %q", got)
			}
			if got := warnings(); tc.warn && (len(got) != 1 || !strings.Contains(got[0], errDisk.Error())) {
				t.Fatalf("warnings %q, want one about the failed write", got)
			}
		})
	}
}
