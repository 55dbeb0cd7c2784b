package protocol_test

import (
	"context"
	"encoding/binary"
	"runtime"
	"sync"
	"testing"
	"time"

	"github.com/ipfs/go-cid"
	"github.com/libp2p/go-libp2p"
	"github.com/libp2p/go-libp2p/core/host"
	"github.com/libp2p/go-libp2p/core/network"
	"github.com/libp2p/go-libp2p/core/peer"
	p2pprotocol "github.com/libp2p/go-libp2p/core/protocol"
	rcmgr "github.com/libp2p/go-libp2p/p2p/host/resource-manager"

	"github.com/casd/casd/blockstore"
	"github.com/casd/casd/dag"
	"github.com/casd/casd/protocol"
	"github.com/casd/casd/protocol/pb"
)

// casdWindow is what node/internal/p2p's resource manager makes room for
// per stream and per peer on each of our protocols (its windowMemory: 32
// messages of 4 MiB + 64 KiB).
const casdWindow = 32 * (4<<20 + 64<<10)

// casdLimits are the limits node/internal/p2p.newResourceManager sets
// (copied: that package is internal to node).
func casdLimits(l *rcmgr.ScalingLimitConfig) {
	l.StreamBaseLimit.Memory = max(l.StreamBaseLimit.Memory, casdWindow)
	l.PeerBaseLimit.Memory = max(l.PeerBaseLimit.Memory, casdWindow+64<<20)
	for _, p := range []p2pprotocol.ID{protocol.StoreID, protocol.GetID} {
		l.AddProtocolLimit(p, rcmgr.BaseLimit{StreamsInbound: 1024, StreamsOutbound: 1024, Streams: 2048,
			Memory: 2 * casdWindow}, rcmgr.BaseLimitIncrease{StreamsInbound: 512, StreamsOutbound: 512,
			Streams: 1024, Memory: 256 << 20})
		l.AddProtocolPeerLimit(p, rcmgr.BaseLimit{StreamsInbound: 64, StreamsOutbound: 64, Streams: 128,
			Memory: casdWindow}, rcmgr.BaseLimitIncrease{})
	}
}

// newHostWith is newHost with a resource manager of libp2p's default
// limits, scaled to the machine, then adjusted by adjust.
func newHostWith(tb testing.TB, adjust func(*rcmgr.ScalingLimitConfig)) host.Host {
	tb.Helper()
	limits := rcmgr.DefaultLimits
	libp2p.SetDefaultServiceLimits(&limits)
	adjust(&limits)
	rm, err := rcmgr.NewResourceManager(rcmgr.NewFixedLimiter(limits.AutoScale()))
	if err != nil {
		tb.Fatal(err)
	}
	tb.Cleanup(func() { _ = rm.Close() }) // after the host's
	h, err := libp2p.New(libp2p.ListenAddrStrings("/ip4/127.0.0.1/tcp/0"), libp2p.ResourceManager(rm))
	if err != nil {
		tb.Fatal(err)
	}
	tb.Cleanup(func() { _ = h.Close() })
	return h
}

// casdHostPair is hostPair with casd's resource-manager limits.
func casdHostPair(tb testing.TB) (client, server host.Host) {
	tb.Helper()
	client, server = newHostWith(tb, casdLimits), newHostWith(tb, casdLimits)
	if err := client.Connect(context.Background(), peer.AddrInfo{ID: server.ID(), Addrs: server.Addrs()}); err != nil {
		tb.Fatal(err)
	}
	return client, server
}

// protoMemory returns the memory reserved on h in the scope of protocol
// id: only what our handlers and clients reserve (the muxer reserves in
// connection scopes).
func protoMemory(tb testing.TB, h host.Host, id p2pprotocol.ID) int64 {
	tb.Helper()
	var mem int64
	err := h.Network().ResourceManager().ViewProtocol(id, func(s network.ProtocolScope) error {
		mem = s.Stat().Memory
		return nil
	})
	if err != nil {
		tb.Fatal(err)
	}
	return mem
}

// heapInuse returns the heap in use after a collection.
func heapInuse() uint64 {
	runtime.GC()
	var ms runtime.MemStats
	runtime.ReadMemStats(&ms)
	return ms.HeapInuse
}

// stallFrame opens a store stream from client, has an offer of one
// maximal block accepted, then sends the length prefix of a maximal frame
// and a few bytes of it, and stalls. reset is closed once the server
// resets the stream.
func stallFrame(t *testing.T, client, server host.Host) (r *rawStream, reset <-chan struct{}) {
	t.Helper()
	root := manifestBlock(t, dag.KindRoot, 0, nil, "stall")
	r = openRaw(t, client, server.ID(), protocol.StoreID)
	o := &pb.StoreOffer{Root: root.Cid, Blocks: 2, Bytes: blockstore.MaxBlockSize + 1<<10,
		Expiry: time.Now().Add(time.Minute).Unix()}
	protocol.SignOffer(newKey(t), server.ID(), o)
	if err := r.send(o); err != nil {
		t.Fatal(err)
	}
	if m, err := r.recv(); err != nil || !m.(*pb.StoreReply).Accept {
		t.Fatalf("offer not accepted: %v %v", m, err)
	}
	frame := binary.AppendUvarint(nil, protocol.MaxMessageSize)
	if _, err := r.s.Write(append(frame, make([]byte, 1000)...)); err != nil {
		t.Fatal(err)
	}
	done := make(chan struct{})
	go func() { // ends when the stream is reset, by the server or at cleanup
		defer close(done)
		_, _ = r.s.Read(make([]byte, 1))
	}()
	t.Cleanup(func() {
		_ = r.s.Reset()
		<-done
	})
	return r, done
}

// TestStoreStalledFrames mounts issue 7's point 7 with casd's limits: one
// peer opens 64 store streams, each announces a maximal (4 MiB) block
// frame and stalls. Each frame's buffer must be reserved in the resource
// manager before it is allocated, at low priority: the reservations stop
// at 40% of the memory the limits give one peer on /cas/store/1.0, the
// streams beyond are reset (no strike), the heap grows by no more than
// what was reserved, and another peer still stores.
func TestStoreStalledFrames(t *testing.T) {
	const streams = 64
	client, server := casdHostPair(t)
	backend := newMemBackend()
	// A window of an hour: the rate floor must not reset the stalled
	// streams while the test counts them.
	svc, st := startService(t, server, backend, protocol.WithMinStoreRate(protocol.DefaultMinStoreRate, time.Hour))
	before := heapInuse()

	refused := 0
	for i := range streams {
		held := protoMemory(t, server, protocol.StoreID)
		_, reset := stallFrame(t, client, server)
		// Wait until the server has either reserved the frame or reset
		// the stream.
		deadline := time.Now().Add(10 * time.Second)
		for {
			select {
			case <-reset:
				refused++
			default:
				if protoMemory(t, server, protocol.StoreID) < held+protocol.MaxMessageSize {
					if time.Now().After(deadline) {
						t.Fatalf("stream %d: neither reserved nor reset after 10 s", i)
					}
					time.Sleep(5 * time.Millisecond) // poll
					continue
				}
			}
			break
		}
	}
	held := protoMemory(t, server, protocol.StoreID)
	grown := int64(heapInuse()) - int64(before)
	t.Logf("%d of %d stalled frames refused; %.1f MiB reserved, heap grew %.1f MiB",
		refused, streams, float64(held)/(1<<20), float64(grown)/(1<<20))
	if limit := int64(casdWindow * 4 / 10); held > limit {
		t.Fatalf("%d bytes reserved, over 40%% of the %d-byte limit", held, int64(casdWindow))
	}
	if frames := streams - refused; frames*protocol.MaxMessageSize > casdWindow*4/10 {
		t.Fatalf("%d frames of %d bytes held, over 40%% of the %d-byte limit", frames, protocol.MaxMessageSize, casdWindow)
	}
	if grown > held+16<<20 {
		t.Fatalf("heap grew %d bytes, %d reserved", grown, held)
	}
	if got := st.of(client.ID()); len(got) != 0 {
		t.Fatalf("refused reservations struck the peer: %q", got)
	}
	honestStore(t, server)
	_ = svc
}

// honestStore stores a small tree on server from a new peer.
func honestStore(t *testing.T, server host.Host) {
	t.Helper()
	other := newHost(t)
	if err := other.Connect(context.Background(), peer.AddrInfo{ID: server.ID(), Addrs: server.Addrs()}); err != nil {
		t.Fatal(err)
	}
	bs := fileTree(t, 3, 5000, dag.DefaultFanout, "honest")
	res, err := protocol.Store(context.Background(), other, server.ID(), newKey(t), bs[0].Cid,
		seqOf(bs), uint64(len(bs)), totalBytes(bs))
	if err != nil || res.Stored != uint64(len(bs)) {
		t.Fatalf("honest store under attack: %+v, %v", res, err)
	}
}

// probeBackend records, at each PutMany, the memory reserved on host h
// for /cas/store/1.0.
type probeBackend struct {
	*memBackend
	tb testing.TB
	h  host.Host

	mu     sync.Mutex // guards during
	during []int64
}

func (p *probeBackend) PutMany(ctx context.Context, bs []blockstore.Block) error {
	mem := protoMemory(p.tb, p.h, protocol.StoreID)
	p.mu.Lock()
	p.during = append(p.during, mem)
	p.mu.Unlock()
	return p.memBackend.PutMany(ctx, bs)
}

// TestStoreBatchMemory checks that a batch's frames stay reserved until
// PutMany has written them, and no longer: at each PutMany the store's
// reservations cover the batch and at most one more frame and the
// expected-block set; after the stream, nothing is reserved.
func TestStoreBatchMemory(t *testing.T) {
	client, server := casdHostPair(t)
	probe := &probeBackend{memBackend: newMemBackend(), tb: t, h: server}
	svc := protocol.New(server, protocol.WithStoreBackend(probe))
	svc.Start()
	t.Cleanup(func() { _ = svc.Close() })
	bs := fileTree(t, 40, 256<<10, dag.DefaultFanout, "batchmem")
	completeOn(probe.memBackend, bs)
	res, err := protocol.Store(context.Background(), client, server.ID(), newKey(t), bs[0].Cid,
		seqOf(bs), uint64(len(bs)), totalBytes(bs))
	if err != nil || !res.Complete {
		t.Fatalf("Store = %+v, %v", res, err)
	}
	if err := svc.Close(); err != nil {
		t.Fatal(err)
	}
	batches := probe.putBatches()
	if len(batches) != len(probe.during) || len(batches) < 2 {
		t.Fatalf("%d batches, %d probes", len(batches), len(probe.during))
	}
	for i, b := range batches {
		if got := probe.during[i]; got < int64(b.bytes) || got > int64(b.bytes)+64<<10 {
			t.Fatalf("batch %d of %d bytes written with %d bytes reserved", i, b.bytes, got)
		}
	}
	if got := protoMemory(t, server, protocol.StoreID); got != 0 {
		t.Fatalf("%d bytes still reserved after the store", got)
	}
}

// TestStoreBatchesUnderMemoryPressure stores 4 MiB blocks under libp2p's
// default limits, which give a stream 16 MiB, of which a store reserves at
// most 40%, less than two blocks: the receiver writes its batch early
// when the next frame does not fit, and the store succeeds.
func TestStoreBatchesUnderMemoryPressure(t *testing.T) {
	client, server := hostPair(t)
	backend := newMemBackend()
	startService(t, server, backend)
	bs := fileTree(t, 6, 4<<20, dag.DefaultFanout, "pressure")
	completeOn(backend, bs)
	res, err := protocol.Store(context.Background(), client, server.ID(), newKey(t), bs[0].Cid,
		seqOf(bs), uint64(len(bs)), totalBytes(bs))
	if err != nil || res.Stored != uint64(len(bs)) || !res.Complete {
		t.Fatalf("Store = %+v, %v", res, err)
	}
	for _, b := range backend.putBatches() {
		if b.bytes > 16<<20*4/10 {
			t.Fatalf("batch of %d bytes held under a 16 MiB stream limit", b.bytes)
		}
	}
}

// TestFetchFrameMemory checks the client side: a received block's frame
// is reserved while onBlock runs, and released after.
func TestFetchFrameMemory(t *testing.T) {
	client, server := hostPair(t)
	backend := newMemBackend()
	bs := makeBlocks(t, 3, 1<<20, "fetchmem")
	backend.add(bs...)
	startService(t, server, backend)
	want := []cid.Cid{bs[0].Cid, bs[1].Cid, bs[2].Cid}
	var during []int64
	_, err := protocol.Fetch(context.Background(), client, server.ID(), cid.Undef, want,
		func(blockstore.Block) error {
			during = append(during, protoMemory(t, client, protocol.GetID))
			return nil
		})
	if err != nil {
		t.Fatal(err)
	}
	for i, got := range during {
		if got < 1<<20 || got > 1<<20+64<<10 {
			t.Fatalf("block %d of 1 MiB handled with %d bytes reserved", i, got)
		}
	}
	if got := protoMemory(t, client, protocol.GetID); got != 0 {
		t.Fatalf("%d bytes still reserved after the fetch", got)
	}
}

// TestStoreExpectedSetMemory checks that the receiver's set of expected
// blocks is reserved in the resource manager as it grows: under libp2p's
// default limits (a store may reserve 40% of 16 MiB), two manifest blocks
// of 65,536 links each (131,073 expected blocks, some 10 MB of set) are
// more than the stream may hold, and the stream is reset, without a
// strike, though the offer announces room for a million blocks.
func TestStoreExpectedSetMemory(t *testing.T) {
	client, server := hostPair(t)
	backend := newMemBackend()
	svc, st := startService(t, server, backend)
	node := manifestBlock(t, dag.KindNode, 0, fakeLinks(t, dag.MaxLinks, "set-node"), "set node")
	root := manifestBlock(t, dag.KindRoot, 1,
		append([]cid.Cid{node.Cid}, fakeLinks(t, dag.MaxLinks-1, "set-root")...), "set root")
	bs := []blockstore.Block{root, node}
	o := offerFor(t, server, bs)
	o.Blocks = 1 << 20
	protocol.SignOffer(newKey(t), server.ID(), o)
	r := acceptedStore(t, client, server, o)
	_ = sendBlocks(r, bs...) // may fail once the server resets
	_ = r.send(&pb.StoreEnd{})
	if m, err := r.recv(); err == nil {
		t.Fatalf("server answered %+v", m)
	}
	if err := svc.Close(); err != nil {
		t.Fatal(err)
	}
	if got := st.of(client.ID()); len(got) != 0 {
		t.Fatalf("peer struck for the receiver's memory: %q", got)
	}
}

// TestGetStalledReads mounts point 7 on the serving side: one peer opens
// 64 get streams, each asks for a maximal (4 MiB) block and never reads
// it, so that each block would sit in the server's memory, its write
// stalled by flow control. The server reserves a block in the stream's
// scope before it reads it, at low priority: the reservations stop at 40%
// of what casd's limits give one peer on /cas/get/1.0, the streams beyond
// are reset (no strike), and another peer is still served.
func TestGetStalledReads(t *testing.T) {
	const streams = 64
	client, server := casdHostPair(t)
	backend := newMemBackend()
	big := makeBlocks(t, 1, blockstore.MaxBlockSize, "stalled-get")[0]
	backend.add(big)
	_, st := startService(t, server, backend)

	refused := 0
	for range streams {
		r := openRaw(t, client, server.ID(), protocol.GetID)
		if err := r.send(&pb.GetRequest{Want: []cid.Cid{big.Cid}}); err != nil {
			t.Fatal(err)
		}
		// The server either reserved the block and is writing it (the
		// first byte arrives; reading it does not open the flow-control
		// window) or refused and reset the stream before writing.
		if _, err := r.s.Read(make([]byte, 1)); err != nil {
			refused++
		}
	}
	held := protoMemory(t, server, protocol.GetID)
	t.Logf("%d of %d stalled reads refused; %.1f MiB reserved", refused, streams, float64(held)/(1<<20))
	if limit := int64(casdWindow * 4 / 10); held > limit {
		t.Fatalf("%d bytes reserved, over 40%% of the %d-byte limit", held, int64(casdWindow))
	}
	if refused == 0 || (streams-refused)*blockstore.MaxBlockSize > casdWindow*4/10 {
		t.Fatalf("%d of %d streams held a 4 MiB block, over 40%% of the %d-byte limit",
			streams-refused, streams, casdWindow)
	}
	if got := st.of(client.ID()); len(got) != 0 {
		t.Fatalf("refused reservations struck the peer: %q", got)
	}
	other := newHost(t)
	if err := other.Connect(context.Background(), peer.AddrInfo{ID: server.ID(), Addrs: server.Addrs()}); err != nil {
		t.Fatal(err)
	}
	var got []byte
	if _, err := protocol.Fetch(context.Background(), other, server.ID(), cid.Undef, []cid.Cid{big.Cid},
		func(b blockstore.Block) error { got = b.Data; return nil }); err != nil || len(got) != len(big.Data) {
		t.Fatalf("another peer's fetch: %d bytes, %v", len(got), err)
	}
}
