package protocol_test

import (
	"context"
	"encoding/binary"
	"errors"
	"fmt"
	"strings"
	"testing"
	"time"

	"github.com/ipfs/go-cid"
	"github.com/libp2p/go-libp2p/core/host"
	"github.com/libp2p/go-libp2p/core/network"
	"github.com/libp2p/go-libp2p/core/peer"

	"github.com/casd/casd/blockstore"
	"github.com/casd/casd/crypt"
	"github.com/casd/casd/dag"
	"github.com/casd/casd/dag/dagtest"
	"github.com/casd/casd/protocol"
	"github.com/casd/casd/protocol/pb"
)

// offerFor returns an offer of bs (blocks, bytes), signed for server,
// expiring in a minute.
func offerFor(t *testing.T, server host.Host, bs []blockstore.Block) *pb.StoreOffer {
	t.Helper()
	o := &pb.StoreOffer{Root: bs[0].Cid, Blocks: uint64(len(bs)), Bytes: totalBytes(bs),
		Expiry: time.Now().Add(time.Minute).Unix()}
	protocol.SignOffer(newKey(t), server.ID(), o)
	return o
}

// offerStore opens a raw store stream, sends o and returns the stream and
// the server's reply.
func offerStore(t *testing.T, client, server host.Host, o *pb.StoreOffer) (*rawStream, *pb.StoreReply) {
	t.Helper()
	r := openRaw(t, client, server.ID(), protocol.StoreID)
	if err := r.send(o); err != nil {
		t.Fatal(err)
	}
	m, err := r.recv()
	if err != nil {
		t.Fatal(err)
	}
	reply, ok := m.(*pb.StoreReply)
	if !ok {
		t.Fatalf("got %+v, want a StoreReply", m)
	}
	return r, reply
}

// acceptedStore opens a raw store stream and has o accepted.
func acceptedStore(t *testing.T, client, server host.Host, o *pb.StoreOffer) *rawStream {
	t.Helper()
	r, reply := offerStore(t, client, server, o)
	if !reply.Accept {
		t.Fatalf("offer not accepted: %+v", reply)
	}
	return r
}

func sendBlocks(r *rawStream, bs ...blockstore.Block) error {
	for _, b := range bs {
		if err := r.send(&pb.Block{Cid: b.Cid, Data: b.Data}); err != nil {
			return err
		}
	}
	return nil
}

// fakeLinks returns n distinct CIDs of blocks nobody has.
func fakeLinks(t *testing.T, n int, tag string) []cid.Cid {
	t.Helper()
	out := make([]cid.Cid, n)
	for i := range out {
		out[i] = makeBlock(t, fmt.Appendf(nil, "%s-%d", tag, i)).Cid
	}
	return out
}

// TestStoreReachableOnly mounts the junk half of issue 7's point 4: a
// store stream may deliver only blocks its root reaches, parents first,
// each once, of the kind its parent gives it, within a bounded set. Any
// other block resets the stream, strikes the peer, and is not stored,
// whatever was sent before it.
func TestStoreReachableOnly(t *testing.T) {
	tree := fileTree(t, 6, 200, 2, "reach") // root of height 2
	stranger := chunkBlock(t, 200, "stranger")
	chunk := chunkBlock(t, 300, "chunk")
	node := manifestBlock(t, dag.KindNode, 0, []cid.Cid{chunk.Cid}, "node")
	bigNode := manifestBlock(t, dag.KindNode, 0, fakeLinks(t, dag.MaxLinks, "node-link"), "big node")
	cases := []struct {
		name string
		send []blockstore.Block // the last one must be refused
		root cid.Cid            // offered; send[0] if undefined
	}{
		{"a stranger block after the whole tree", append(tree[:len(tree):len(tree)], stranger), cid.Undef},
		{"a child before its parent", []blockstore.Block{tree[2]}, tree[0].Cid},
		{"the root twice", []blockstore.Block{tree[0], tree[0]}, cid.Undef},
		{"a chunk sent again", append(tree[:5:5], tree[4]), cid.Undef},
		{"a chunk where a node is linked", []blockstore.Block{
			manifestBlock(t, dag.KindRoot, 1, []cid.Cid{chunk.Cid}, "root"), chunk}, cid.Undef},
		{"a node where a chunk is linked", []blockstore.Block{
			manifestBlock(t, dag.KindRoot, 0, []cid.Cid{node.Cid}, "root"), node}, cid.Undef},
		{"a root where a node is linked", []blockstore.Block{
			manifestBlock(t, dag.KindRoot, 1, []cid.Cid{tree[0].Cid}, "root"), tree[0]}, cid.Undef},
		{"links beyond the offer and one manifest", []blockstore.Block{
			manifestBlock(t, dag.KindRoot, 1, append([]cid.Cid{bigNode.Cid},
				fakeLinks(t, dag.MaxLinks-1, "root-link")...), "root"), bigNode}, cid.Undef},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			// casd's limits: room for the expected set of the last case.
			client, server := casdHostPair(t)
			backend := newMemBackend()
			svc, st := startService(t, server, backend)
			o := offerFor(t, server, tc.send)
			if tc.root.Defined() {
				o.Root = tc.root
				protocol.SignOffer(newKey(t), server.ID(), o)
			}
			r := acceptedStore(t, client, server, o)
			_ = sendBlocks(r, tc.send...) // may fail once the server resets
			_ = r.send(&pb.StoreEnd{})
			if m, err := r.recv(); err == nil {
				t.Fatalf("server answered %+v", m)
			}
			if err := svc.Close(); err != nil {
				t.Fatal(err)
			}
			bad := tc.send[len(tc.send)-1]
			if _, err := backend.Get(context.Background(), bad.Cid); err == nil &&
				!containsBefore(tc.send, bad) {
				t.Fatal("refused block stored")
			}
			if n := backend.outstanding(); n != 0 {
				t.Fatalf("%d reservations not released", n)
			}
			if got := st.of(client.ID()); len(got) != 1 || !strings.Contains(got[0], "bad block") {
				t.Fatalf("strikes %q, want one for a bad block", got)
			}
		})
	}
}

func testSecrets() *crypt.Secrets {
	s := &crypt.Secrets{}
	for i := range s.Master {
		s.Master[i], s.Convergence[i] = 1, 2
	}
	return s
}

// containsBefore reports whether b is sent before the last position.
func containsBefore(bs []blockstore.Block, b blockstore.Block) bool {
	for _, x := range bs[:len(bs)-1] {
		if x.Cid.Equals(b.Cid) {
			return true
		}
	}
	return false
}

// TestStoreRealFile stores a file written by dag.Add, its blocks sent in
// the order of dag.Walk as node/internal/replicate's treeBlocks sends
// them: parents before children, so the receiver takes every block.
func TestStoreRealFile(t *testing.T) {
	st := dagtest.NewMemStore()
	data := make([]byte, 5*dag.MinChunkSize+1000)
	for i := range data {
		data[i] = byte(i * 31)
	}
	added, err := dag.Add(context.Background(), strings.NewReader(string(data)), dag.Meta{Name: "f"},
		testSecrets(), st, dag.AddOptions{ChunkSize: dag.MinChunkSize, Fanout: 2})
	if err != nil {
		t.Fatal(err)
	}
	var bs []blockstore.Block
	err = dag.Walk(context.Background(), st, added.Root, func(c cid.Cid, _ byte) error {
		d, err := st.Get(context.Background(), c)
		bs = append(bs, blockstore.Block{Cid: c, Data: d})
		return err
	})
	if err != nil {
		t.Fatal(err)
	}
	client, server := hostPair(t)
	backend := newMemBackend()
	completeOn(backend, bs)
	startService(t, server, backend)
	res, err := protocol.Store(context.Background(), client, server.ID(), newKey(t), added.Root,
		seqOf(bs), uint64(len(bs)), totalBytes(bs))
	if err != nil || !res.Complete || res.Stored != uint64(len(bs)) {
		t.Fatalf("store of a %d-block file: %+v, %v", len(bs), res, err)
	}
}

// TestStoreChargesPerBlock mounts the free-blocks half of issue 7's point
// 4: an offer costs its bytes plus BlockCharge per block against the
// quota, so that many tiny blocks do not fit where their bytes would.
func TestStoreChargesPerBlock(t *testing.T) {
	cases := []struct {
		name          string
		blocks, bytes uint64
		quota         int64
		accept        bool
		reason        string
		reserve       []int64
	}{
		{"charged", 100, 4000, 0, true, "", []int64{4000 + 100*protocol.BlockCharge}},
		{"tiny blocks over quota", 100, 4000, 64 << 10, false, "over quota",
			[]int64{4000 + 100*protocol.BlockCharge}},
		{"more blocks than a walk visits", protocol.MaxOfferBlocks + 1, 1, 0, false, "too large", nil},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			client, server := hostPair(t)
			backend := newMemBackend()
			backend.quota = tc.quota
			svc, st := startService(t, server, backend)
			o := &pb.StoreOffer{Root: makeBlock(t, []byte("root")).Cid, Blocks: tc.blocks, Bytes: tc.bytes,
				Expiry: time.Now().Add(time.Minute).Unix()}
			protocol.SignOffer(newKey(t), server.ID(), o)
			r, reply := offerStore(t, client, server, o)
			if reply.Accept != tc.accept || !strings.Contains(reply.Reason, tc.reason) {
				t.Fatalf("reply %+v, want accept %v reason %q", reply, tc.accept, tc.reason)
			}
			_ = r.s.Reset()
			if err := svc.Close(); err != nil {
				t.Fatal(err)
			}
			if got := backend.reservations(); fmt.Sprint(got) != fmt.Sprint(tc.reserve) {
				t.Fatalf("Reserve asked %v, want %v", got, tc.reserve)
			}
			if got := st.of(client.ID()); len(got) != 0 {
				t.Fatalf("peer struck: %q", got)
			}
		})
	}
}

// TestFramePrefixRules mounts issue 7's point 16 on both servers: a
// length prefix that is not a minimal varint, or longer than 9 bytes, is
// a protocol violation (a strike); a prefix cut by the end of the stream
// is not.
func TestFramePrefixRules(t *testing.T) {
	cases := []struct {
		name   string
		prefix []byte
		strike string // in the strike's reason; "" for no strike
	}{
		{"non-minimal", []byte{0x85, 0x00}, "not minimally encoded"},
		{"non-minimal zero", []byte{0x80, 0x80, 0x00}, "not minimally encoded"},
		{"over 9 bytes", []byte{0x81, 0x80, 0x80, 0x80, 0x80, 0x80, 0x80, 0x80, 0x80, 0x01}, "larger than uint63"},
		{"9 bytes, over the frame limit", binary.AppendUvarint(nil, 1<<62), "too large"},
		{"cut by the end of stream", []byte{0x85}, ""},
	}
	for _, id := range []string{string(protocol.GetID), string(protocol.StoreID)} {
		for _, tc := range cases {
			t.Run(id+"/"+tc.name, func(t *testing.T) {
				client, server := hostPair(t)
				svc, st := startService(t, server, newMemBackend())
				r := openRaw(t, client, server.ID(), protocol.GetID)
				if id == string(protocol.StoreID) {
					bs := fileTree(t, 1, 100, 4, "prefix")
					r = acceptedStore(t, client, server, offerFor(t, server, bs))
				}
				if _, err := r.s.Write(tc.prefix); err != nil {
					t.Fatal(err)
				}
				_ = r.s.CloseWrite()
				if m, err := r.recv(); err == nil {
					t.Fatalf("server answered %+v", m)
				}
				if err := svc.Close(); err != nil {
					t.Fatal(err)
				}
				got := st.of(client.ID())
				if tc.strike != "" && (len(got) != 1 || !strings.Contains(got[0], tc.strike)) {
					t.Fatalf("strikes %q, want one about %q", got, tc.strike)
				}
				if tc.strike == "" && len(got) != 0 {
					t.Fatalf("strikes %q, want none", got)
				}
			})
		}
	}
}

// TestFetchNonMinimalPrefix: a server whose answer has a non-minimal
// length prefix is in breach (ErrProtocol) for the client.
func TestFetchNonMinimalPrefix(t *testing.T) {
	client, server := hostPair(t)
	server.SetStreamHandler(protocol.GetID, func(s network.Stream) {
		if _, err := newRaw(s).recv(); err != nil {
			_ = s.Reset()
			return
		}
		_, _ = s.Write([]byte{0x82, 0x80, 0x00, 0x08, 0x04}) // 2, in three bytes
		_ = s.CloseWrite()
	})
	_, err := protocol.Fetch(context.Background(), client, server.ID(), cid.Undef,
		[]cid.Cid{makeBlock(t, []byte("x")).Cid}, func(blockstore.Block) error { return nil })
	if !errors.Is(err, protocol.ErrProtocol) {
		t.Fatalf("err = %v, want ErrProtocol", err)
	}
}

// TestStoreTrickle mounts issue 7's point 3 with a shrunk window: after a
// good start, the peer sends one tiny block every two thirds of a window,
// well within the idle timeout. The receiver resets the stream at the end
// of the first window that falls below the rate, without a strike, and
// releases the reservation (the GC guard of casd's backend).
func TestStoreTrickle(t *testing.T) {
	const window = 300 * time.Millisecond
	client, server := hostPair(t)
	backend := newMemBackend()
	svc, st := startService(t, server, backend,
		protocol.WithMinStoreRate(64<<10, window), protocol.WithIdleTimeout(10*time.Second))
	bs := fileTree(t, 1000, 100, dag.DefaultFanout, "trickle") // a root of 37 KB, then 100-byte chunks
	r := acceptedStore(t, client, server, offerFor(t, server, bs))
	accepted := time.Now()
	err := sendBlocks(r, bs[0])
	tick := time.NewTicker(window * 2 / 3)
	defer tick.Stop()
	for next := 1; err == nil; next++ {
		if time.Since(accepted) > 5*time.Second {
			t.Fatal("trickling stream still open after 5 s")
		}
		<-tick.C // pace the trickle
		err = sendBlocks(r, bs[next])
	}
	cut := time.Since(accepted)
	t.Logf("trickling stream reset %s after acceptance (window %s): %v", cut, window, err)
	if cut > 2*time.Second {
		t.Fatalf("reset after %s, want within a few windows", cut)
	}
	if err := svc.Close(); err != nil {
		t.Fatal(err)
	}
	if n := backend.outstanding(); n != 0 {
		t.Fatalf("%d reservations not released", n)
	}
	if got := st.of(client.ID()); len(got) != 0 {
		t.Fatalf("slow peer struck: %q", got)
	}
	if _, pinned := backend.pin(bs[0].Cid); pinned {
		t.Fatal("trickled root pinned")
	}
}

// frames returns the frames of ms, as a sender writes them.
func frames(ms ...pb.Message) []byte {
	var out []byte
	for _, m := range ms {
		env := pb.Marshal(m)
		out = append(binary.AppendUvarint(out, uint64(len(env))), env...)
	}
	return out
}

// TestStoreSlowHonestLink plays a sender on a link four times the minimum
// rate, writing its frames in 8 KiB pieces: a 256 KiB block spans several
// windows, and counts in each as its bytes arrive. The store completes.
func TestStoreSlowHonestLink(t *testing.T) {
	const window = 500 * time.Millisecond
	client, server := hostPair(t)
	backend := newMemBackend()
	_, st := startService(t, server, backend, protocol.WithMinStoreRate(64<<10, window))
	bs := fileTree(t, 2, 256<<10, dag.DefaultFanout, "slow")
	completeOn(backend, bs)
	r := acceptedStore(t, client, server, offerFor(t, server, bs))
	msgs := []pb.Message{}
	for _, b := range bs {
		msgs = append(msgs, &pb.Block{Cid: b.Cid, Data: b.Data})
	}
	data := append(frames(msgs...), frames(&pb.StoreEnd{})...)
	tick := time.NewTicker(30 * time.Millisecond) // 8 KiB / 30 ms: 267 KiB/s
	defer tick.Stop()
	start := time.Now()
	for len(data) > 0 {
		n := min(len(data), 8<<10)
		if _, err := r.s.Write(data[:n]); err != nil {
			t.Fatalf("after %s: %v", time.Since(start), err)
		}
		data = data[n:]
		<-tick.C
	}
	_ = r.s.CloseWrite()
	m, err := r.recv()
	if err != nil {
		t.Fatalf("after %s: %v", time.Since(start), err)
	}
	if ack, ok := m.(*pb.StoreAck); !ok || !ack.Complete || ack.Stored != uint64(len(bs)) {
		t.Fatalf("ack %+v", m)
	}
	t.Logf("%d bytes in %s", totalBytes(bs), time.Since(start))
	if got := st.of(client.ID()); len(got) != 0 {
		t.Fatalf("honest peer struck: %q", got)
	}
}

// TestStoreLifetimeEnds mounts the other half of point 3: a stream that
// keeps the rate cannot outlive its offer's expiry, and one that has sent
// its bytes and then sits idle cannot outlive the offered bytes at the
// minimum rate plus three windows, though each is well within the idle
// timeout. Neither is a strike.
func TestStoreLifetimeEnds(t *testing.T) {
	const window = 100 * time.Millisecond
	t.Run("offer expiry", func(t *testing.T) {
		client, server := hostPair(t)
		backend := newMemBackend()
		svc, st := startService(t, server, backend,
			protocol.WithMinStoreRate(1<<10, window), protocol.WithIdleTimeout(10*time.Second))
		bs := fileTree(t, 400, 150, dag.DefaultFanout, "expiry")
		o := offerFor(t, server, bs)
		o.Bytes, o.Expiry = 1<<30, time.Now().Add(2*time.Second).Unix()
		protocol.SignOffer(newKey(t), server.ID(), o)
		r := acceptedStore(t, client, server, o)
		err := sendBlocks(r, bs[0])
		tick := time.NewTicker(50 * time.Millisecond) // 150 B / 50 ms: 3 KB/s
		defer tick.Stop()
		for next := 1; err == nil; next++ {
			if time.Now().After(time.Unix(o.Expiry, 0).Add(4 * time.Second)) {
				t.Fatal("stream open 4 s past its offer's expiry")
			}
			<-tick.C
			err = sendBlocks(r, bs[next])
		}
		late := time.Since(time.Unix(o.Expiry, 0))
		t.Logf("reset %s after the offer's expiry", late)
		if late > time.Second {
			t.Fatalf("reset %s after the offer's expiry", late)
		}
		checkNoTrace(t, svc, backend, st, client.ID())
	})
	t.Run("offered bytes at the minimum rate", func(t *testing.T) {
		client, server := hostPair(t)
		backend := newMemBackend()
		svc, st := startService(t, server, backend,
			protocol.WithMinStoreRate(1<<10, window), protocol.WithIdleTimeout(10*time.Second))
		bs := fileTree(t, 10, 150, dag.DefaultFanout, "sits")
		r := acceptedStore(t, client, server, offerFor(t, server, bs))
		start := time.Now()
		if err := sendBlocks(r, bs...); err != nil { // all of it, but no StoreEnd
			t.Fatal(err)
		}
		if m, err := r.recv(); err == nil {
			t.Fatalf("server answered %+v", m)
		}
		life := time.Duration(float64(totalBytes(bs))/(1<<10)*float64(time.Second)) + 3*window
		took := time.Since(start)
		t.Logf("reset after %s; lifetime %s, idle timeout 10 s", took, life)
		if took > life+time.Second {
			t.Fatalf("reset after %s, lifetime %s", took, life)
		}
		checkNoTrace(t, svc, backend, st, client.ID())
	})
}

// checkNoTrace closes svc and checks that a cut store left nothing behind:
// no reservation, no pin, no strike.
func checkNoTrace(t *testing.T, svc *protocol.Service, backend *memBackend, st *strikes, p peer.ID) {
	t.Helper()
	if err := svc.Close(); err != nil {
		t.Fatal(err)
	}
	if n := backend.outstanding(); n != 0 {
		t.Fatalf("%d reservations not released", n)
	}
	backend.mu.Lock()
	pins := len(backend.pins)
	backend.mu.Unlock()
	if pins != 0 {
		t.Fatalf("%d roots pinned", pins)
	}
	if got := st.of(p); len(got) != 0 {
		t.Fatalf("peer struck: %q", got)
	}
}
