package protocol_test

import (
	"bufio"
	"context"
	"crypto/ed25519"
	"fmt"
	"slices"
	"sync"
	"testing"
	"time"

	"github.com/ipfs/go-cid"
	logging "github.com/ipfs/go-log/v2"
	"github.com/libp2p/go-libp2p"
	"github.com/libp2p/go-libp2p/core/host"
	"github.com/libp2p/go-libp2p/core/network"
	"github.com/libp2p/go-libp2p/core/peer"
	p2pprotocol "github.com/libp2p/go-libp2p/core/protocol"
	"github.com/libp2p/go-msgio"
	mh "github.com/multiformats/go-multihash"

	"github.com/casd/casd/blockstore"
	"github.com/casd/casd/protocol"
	"github.com/casd/casd/protocol/pb"
)

// newHost starts a libp2p host listening on loopback TCP.
func newHost(tb testing.TB) host.Host {
	tb.Helper()
	h, err := libp2p.New(libp2p.ListenAddrStrings("/ip4/127.0.0.1/tcp/0"))
	if err != nil {
		tb.Fatal(err)
	}
	tb.Cleanup(func() { _ = h.Close() })
	return h
}

// hostPair returns two connected hosts.
func hostPair(tb testing.TB) (client, server host.Host) {
	tb.Helper()
	client, server = newHost(tb), newHost(tb)
	err := client.Connect(context.Background(), peer.AddrInfo{ID: server.ID(), Addrs: server.Addrs()})
	if err != nil {
		tb.Fatal(err)
	}
	return client, server
}

func makeBlock(tb testing.TB, data []byte) blockstore.Block {
	tb.Helper()
	c, err := cid.Prefix{Version: 1, Codec: cid.Raw, MhType: mh.SHA2_256, MhLength: -1}.Sum(data)
	if err != nil {
		tb.Fatal(err)
	}
	return blockstore.Block{Cid: c, Data: data}
}

func makeBlocks(tb testing.TB, n, size int, tag string) []blockstore.Block {
	tb.Helper()
	out := make([]blockstore.Block, n)
	for i := range out {
		data := make([]byte, size)
		copy(data, fmt.Sprintf("%s-%d", tag, i))
		out[i] = makeBlock(tb, data)
	}
	return out
}

// memBackend is an in-memory GetBackend and StoreBackend. A root is
// complete when it and the children registered in tree are present.
type memBackend struct {
	// mu guards every field below.
	mu       sync.Mutex
	blocks   map[cid.Cid][]byte
	tree     map[cid.Cid][]cid.Cid
	pins     map[cid.Cid]memPin
	reserved int64
	releases int   // reservations not yet released
	quota    int64 // 0: unlimited
	puts     int   // PutMany calls
	batches  []batch
	reserves []int64 // bytes asked of Reserve, in order

	// failGet, failComplete and failPut, if set, are returned by Get,
	// Complete and PutMany.
	failGet, failComplete, failPut error

	// block, if set, makes Get signal entered and wait for ctx.
	block   bool
	entered chan struct{}
}

var (
	_ protocol.GetBackend   = (*memBackend)(nil)
	_ protocol.StoreBackend = (*memBackend)(nil)
)

// batch records one PutMany call.
type batch struct{ blocks, bytes int }

func newMemBackend() *memBackend {
	return &memBackend{
		blocks:  map[cid.Cid][]byte{},
		tree:    map[cid.Cid][]cid.Cid{},
		pins:    map[cid.Cid]memPin{},
		entered: make(chan struct{}, 1),
	}
}

func (m *memBackend) add(bs ...blockstore.Block) {
	m.mu.Lock()
	defer m.mu.Unlock()
	for _, b := range bs {
		m.blocks[b.Cid] = b.Data
	}
}

func (m *memBackend) setTree(root cid.Cid, children ...cid.Cid) {
	m.mu.Lock()
	defer m.mu.Unlock()
	m.tree[root] = children
}

func (m *memBackend) count() int {
	m.mu.Lock()
	defer m.mu.Unlock()
	return len(m.blocks)
}

// memPin is a replica pin of a memBackend.
type memPin struct {
	owner ed25519.PublicKey
	lease time.Time
}

func (m *memBackend) pin(root cid.Cid) (memPin, bool) {
	m.mu.Lock()
	defer m.mu.Unlock()
	r, ok := m.pins[root]
	return r, ok
}

func (m *memBackend) Get(ctx context.Context, c cid.Cid) ([]byte, error) {
	m.mu.Lock()
	wait := m.block
	data, ok := m.blocks[c]
	fail := m.failGet
	m.mu.Unlock()
	if fail != nil {
		return nil, fail
	}
	if wait {
		select {
		case m.entered <- struct{}{}:
		default:
		}
		<-ctx.Done()
		return nil, ctx.Err()
	}
	if !ok {
		return nil, fmt.Errorf("get %s: %w", c, blockstore.ErrNotFound)
	}
	return data, nil
}

func (m *memBackend) Complete(_ context.Context, root cid.Cid) (bool, error) {
	m.mu.Lock()
	defer m.mu.Unlock()
	if m.failComplete != nil {
		return false, m.failComplete
	}
	if _, ok := m.blocks[root]; !ok {
		return false, nil
	}
	for _, c := range m.tree[root] {
		if _, ok := m.blocks[c]; !ok {
			return false, nil
		}
	}
	return true, nil
}

func (m *memBackend) Reserve(_ context.Context, _ ed25519.PublicKey, _ cid.Cid, n int64) (func(), error) {
	m.mu.Lock()
	defer m.mu.Unlock()
	m.reserves = append(m.reserves, n)
	if m.quota > 0 && m.reserved+n > m.quota {
		return nil, fmt.Errorf("over quota: %d bytes asked, %d free", n, m.quota-m.reserved)
	}
	m.reserved += n
	m.releases++
	return func() {
		m.mu.Lock()
		defer m.mu.Unlock()
		m.releases--
	}, nil
}

func (m *memBackend) PutMany(_ context.Context, bs []blockstore.Block) error {
	m.mu.Lock()
	defer m.mu.Unlock()
	m.puts++
	if m.failPut != nil {
		return m.failPut
	}
	n := 0
	for _, b := range bs {
		n += len(b.Data)
	}
	m.batches = append(m.batches, batch{len(bs), n})
	for _, b := range bs {
		if err := blockstore.VerifyBlock(b.Cid, b.Data); err != nil {
			return err
		}
		m.blocks[b.Cid] = slices.Clone(b.Data)
	}
	return nil
}

func (m *memBackend) Pin(_ context.Context, root cid.Cid, owner ed25519.PublicKey, lease time.Time) error {
	m.mu.Lock()
	defer m.mu.Unlock()
	m.pins[root] = memPin{owner: slices.Clone(owner), lease: lease}
	return nil
}

// Renew extends the lease of owner's pin of root, never shortening it.
func (m *memBackend) Renew(_ context.Context, owner ed25519.PublicKey, root cid.Cid, lease time.Time) error {
	m.mu.Lock()
	defer m.mu.Unlock()
	p, ok := m.pins[root]
	if !ok || !p.owner.Equal(owner) {
		return fmt.Errorf("renew %s: %w", root, protocol.ErrNotHeld)
	}
	if lease.After(p.lease) {
		p.lease = lease
		m.pins[root] = p
	}
	return nil
}

// Remove drops owner's pin of root, if any.
func (m *memBackend) Remove(_ context.Context, owner ed25519.PublicKey, root cid.Cid) error {
	m.mu.Lock()
	defer m.mu.Unlock()
	if p, ok := m.pins[root]; ok && p.owner.Equal(owner) {
		delete(m.pins, root)
	}
	return nil
}

// strikes records strike calls.
type strikes struct {
	mu      sync.Mutex // guards reasons
	reasons map[peer.ID][]string
}

func (s *strikes) record(p peer.ID, reason string) {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.reasons == nil {
		s.reasons = map[peer.ID][]string{}
	}
	s.reasons[p] = append(s.reasons[p], reason)
}

func (s *strikes) of(p peer.ID) []string {
	s.mu.Lock()
	defer s.mu.Unlock()
	return slices.Clone(s.reasons[p])
}

// startService serves b on h and closes the service at cleanup.
func startService(tb testing.TB, h host.Host, b *memBackend, opts ...protocol.Option) (*protocol.Service, *strikes) {
	tb.Helper()
	st := &strikes{}
	opts = append([]protocol.Option{
		protocol.WithGetBackend(b), protocol.WithStoreBackend(b), protocol.WithStrikeFunc(st.record),
	}, opts...)
	svc := protocol.New(h, opts...)
	svc.Start()
	tb.Cleanup(func() { _ = svc.Close() })
	return svc, st
}

// rawStream is a hand-driven client or server side of a stream, for
// playing a misbehaving peer.
type rawStream struct {
	s network.Stream
	r msgio.ReadCloser
	w msgio.WriteCloser
}

func newRaw(s network.Stream) *rawStream {
	return &rawStream{s: s, r: msgio.NewVarintReaderSize(s, 64<<20), w: msgio.NewVarintWriter(s)}
}

func openRaw(tb testing.TB, h host.Host, p peer.ID, id p2pprotocol.ID) *rawStream {
	tb.Helper()
	s, err := h.NewStream(context.Background(), p, id)
	if err != nil {
		tb.Fatal(err)
	}
	tb.Cleanup(func() { _ = s.Reset() })
	return newRaw(s)
}

func (r *rawStream) send(m pb.Message) error { return r.w.WriteMsg(pb.Marshal(m)) }

func (r *rawStream) recv() (pb.Message, error) {
	b, err := r.r.ReadMsg()
	if err != nil {
		return nil, err
	}
	return pb.Unmarshal(b)
}

// putBatches returns the PutMany calls so far.
func (m *memBackend) putBatches() []batch {
	m.mu.Lock()
	defer m.mu.Unlock()
	return slices.Clone(m.batches)
}

// reservations returns the byte counts asked of Reserve so far.
func (m *memBackend) reservations() []int64 {
	m.mu.Lock()
	defer m.mu.Unlock()
	return slices.Clone(m.reserves)
}

// captureLogs collects the lines that the casd/protocol logger logs at
// level and above, until the returned function is called.
func captureLogs(tb testing.TB, level string) func() []string {
	tb.Helper()
	lvl, err := logging.Parse(level)
	if err != nil {
		tb.Fatal(err)
	}
	if err := logging.SetLogLevel("casd/protocol", level); err != nil {
		tb.Fatal(err)
	}
	pr := logging.NewPipeReader(logging.PipeLevel(lvl))
	var (
		mu    sync.Mutex // guards lines
		lines []string
		wg    sync.WaitGroup
	)
	wg.Go(func() {
		// Drain until Close: the pipe blocks every logger while unread.
		sc := bufio.NewScanner(pr)
		for sc.Scan() {
			mu.Lock()
			lines = append(lines, sc.Text())
			mu.Unlock()
		}
	})
	var once sync.Once
	stop := func() []string {
		once.Do(func() {
			_ = pr.Close()
			wg.Wait()
		})
		mu.Lock()
		defer mu.Unlock()
		return slices.Clone(lines)
	}
	tb.Cleanup(func() {
		stop()
		_ = logging.SetLogLevel("casd/protocol", "error")
	})
	return stop
}

// outstanding returns the reservations not yet released.
func (m *memBackend) outstanding() int {
	m.mu.Lock()
	defer m.mu.Unlock()
	return m.releases
}

// testOwner is an owner public key for pins that tests make directly.
var testOwner = ed25519.PublicKey(make([]byte, ed25519.PublicKeySize))
