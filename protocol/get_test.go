package protocol_test

import (
	"bytes"
	"context"
	"encoding/binary"
	"errors"
	"fmt"
	"io"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/ipfs/go-cid"
	"github.com/libp2p/go-libp2p/core/host"
	"github.com/libp2p/go-libp2p/core/network"
	"github.com/libp2p/go-libp2p/core/peer"
	"google.golang.org/protobuf/encoding/protowire"

	"github.com/casd/casd/blockstore"
	"github.com/casd/casd/protocol"
	"github.com/casd/casd/protocol/pb"
)

func TestFetch(t *testing.T) {
	client, server := hostPair(t)
	backend := newMemBackend()
	present := makeBlocks(t, 3, 1000, "present")
	absent := makeBlocks(t, 2, 10, "absent")
	backend.add(present...)
	backend.setTree(present[0].Cid, present[1].Cid, present[2].Cid)
	startService(t, server, backend)

	many := makeBlocks(t, 2*pb.MaxWant+7, 64, "many")
	backend.add(many...)
	cids := func(bs ...blockstore.Block) []cid.Cid {
		out := make([]cid.Cid, len(bs))
		for i, b := range bs {
			out[i] = b.Cid
		}
		return out
	}

	cases := []struct {
		name        string
		want        []blockstore.Block
		wantMissing []blockstore.Block
	}{
		{"all present", present, nil},
		{"all missing", absent, absent},
		{"mixed keeps order", []blockstore.Block{absent[0], present[1], absent[1], present[0]},
			[]blockstore.Block{absent[0], absent[1]}},
		{"more than MaxWant", many, nil},
		{"empty", nil, nil},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			var got []blockstore.Block
			missing, err := protocol.Fetch(context.Background(), client, server.ID(), present[0].Cid,
				cids(tc.want...), func(b blockstore.Block) error {
					got = append(got, b)
					return nil
				})
			if err != nil {
				t.Fatal(err)
			}
			var wantGot []blockstore.Block
			for _, b := range tc.want {
				if !slices.ContainsFunc(tc.wantMissing, func(m blockstore.Block) bool { return m.Cid == b.Cid }) {
					wantGot = append(wantGot, b)
				}
			}
			if len(got) != len(wantGot) {
				t.Fatalf("got %d blocks, want %d", len(got), len(wantGot))
			}
			for i := range got {
				if got[i].Cid != wantGot[i].Cid || string(got[i].Data) != string(wantGot[i].Data) {
					t.Fatalf("block %d: got %s, want %s", i, got[i].Cid, wantGot[i].Cid)
				}
			}
			if !slices.Equal(missing, cids(tc.wantMissing...)) {
				t.Fatalf("missing %v, want %v", missing, cids(tc.wantMissing...))
			}
		})
	}
}

func TestHasRoot(t *testing.T) {
	client, server := hostPair(t)
	backend := newMemBackend()
	bs := makeBlocks(t, 3, 100, "tree")
	backend.add(bs[0], bs[1])
	backend.setTree(bs[0].Cid, bs[1].Cid)
	backend.setTree(bs[1].Cid, bs[2].Cid)
	startService(t, server, backend)

	cases := []struct {
		name string
		root cid.Cid
		want bool
	}{
		{"complete", bs[0].Cid, true},
		{"child missing", bs[1].Cid, false},
		{"root missing", bs[2].Cid, false},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			got, err := protocol.HasRoot(context.Background(), client, server.ID(), tc.root)
			if err != nil {
				t.Fatal(err)
			}
			if got != tc.want {
				t.Fatalf("HasRoot = %v, want %v", got, tc.want)
			}
		})
	}
}

func TestGetSessionReuse(t *testing.T) {
	client, server := hostPair(t)
	backend := newMemBackend()
	bs := makeBlocks(t, 4, 100, "session")
	backend.add(bs...)
	startService(t, server, backend)

	ctx := context.Background()
	s, err := protocol.NewGetSession(ctx, client, server.ID())
	if err != nil {
		t.Fatal(err)
	}
	defer s.Close()
	for i, b := range bs {
		n := 0
		missing, err := s.Fetch(ctx, cid.Undef, []cid.Cid{b.Cid}, func(blockstore.Block) error { n++; return nil })
		if err != nil || len(missing) != 0 || n != 1 {
			t.Fatalf("request %d: n=%d missing=%v err=%v", i, n, missing, err)
		}
	}
	if ok, err := s.HasRoot(ctx, bs[0].Cid); err != nil || !ok {
		t.Fatalf("HasRoot = %v, %v", ok, err)
	}
	n := 0
	for _, conn := range client.Network().ConnsToPeer(server.ID()) {
		for _, str := range conn.GetStreams() {
			if str.Protocol() == protocol.GetID {
				n++
			}
		}
	}
	if n != 1 {
		t.Fatalf("%d get streams open, want the session's 1", n)
	}

	// A failing callback breaks the session.
	errStop := errors.New("stop")
	_, err = s.Fetch(ctx, cid.Undef, []cid.Cid{bs[0].Cid}, func(blockstore.Block) error { return errStop })
	if !errors.Is(err, errStop) {
		t.Fatalf("err = %v, want errStop", err)
	}
	_, err = s.Fetch(ctx, cid.Undef, []cid.Cid{bs[0].Cid}, func(blockstore.Block) error { return nil })
	if !errors.Is(err, protocol.ErrSessionBroken) {
		t.Fatalf("err = %v, want ErrSessionBroken", err)
	}
}

// TestFetchMaliciousServer plays a server that answers the first want
// wrongly.
func TestFetchMaliciousServer(t *testing.T) {
	good := makeBlock(t, []byte("the real block"))
	other := makeBlock(t, []byte("another valid block"))
	cases := []struct {
		name    string
		answer  pb.Message
		wantErr error
	}{
		{"corrupt data", &pb.Block{Cid: good.Cid, Data: []byte("forged")}, protocol.ErrBadBlock},
		{"block not asked for", &pb.Block{Cid: other.Cid, Data: other.Data}, protocol.ErrBadBlock},
		{"missing for another cid", &pb.Missing{Cid: other.Cid}, protocol.ErrProtocol},
		{"done too early", &pb.Done{}, protocol.ErrProtocol},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			client, server := hostPair(t)
			server.SetStreamHandler(protocol.GetID, func(s network.Stream) {
				r := newRaw(s)
				if _, err := r.recv(); err != nil {
					_ = s.Reset()
					return
				}
				_ = r.send(tc.answer)
				_ = r.send(&pb.Done{})
				_ = s.Close()
			})
			called := false
			_, err := protocol.Fetch(context.Background(), client, server.ID(), cid.Undef,
				[]cid.Cid{good.Cid}, func(blockstore.Block) error { called = true; return nil })
			if !errors.Is(err, tc.wantErr) {
				t.Fatalf("err = %v, want %v", err, tc.wantErr)
			}
			if called {
				t.Fatal("onBlock called for a bad answer")
			}
		})
	}
}

func TestFetchContextCancel(t *testing.T) {
	client, server := hostPair(t)
	backend := newMemBackend()
	backend.block = true
	svc, _ := startService(t, server, backend)
	b := makeBlock(t, []byte("x"))

	ctx, cancel := context.WithCancel(context.Background())
	go func() {
		<-backend.entered // the server is serving our request
		cancel()
	}()
	_, err := protocol.Fetch(ctx, client, server.ID(), cid.Undef, []cid.Cid{b.Cid},
		func(blockstore.Block) error { return nil })
	if !errors.Is(err, context.Canceled) {
		t.Fatalf("err = %v, want context.Canceled", err)
	}
	// The server's handler is still blocked in Get; Close cancels it and
	// waits for it.
	if err := svc.Close(); err != nil {
		t.Fatal(err)
	}
}

func TestFetchDeadline(t *testing.T) {
	client, server := hostPair(t)
	backend := newMemBackend()
	backend.block = true
	startService(t, server, backend)

	ctx, cancel := context.WithTimeout(context.Background(), 200*time.Millisecond)
	defer cancel()
	start := time.Now()
	_, err := protocol.Fetch(ctx, client, server.ID(), cid.Undef, []cid.Cid{makeBlock(t, nil).Cid},
		func(blockstore.Block) error { return nil })
	if err == nil {
		t.Fatal("Fetch succeeded against a stalled server")
	}
	if d := time.Since(start); d > 5*time.Second {
		t.Fatalf("Fetch took %v despite a 200ms deadline", d)
	}
}

// TestServiceCloseCancelsHandlers checks that Close does not wait for a
// slow backend: handlers see a cancelled context.
func TestServiceCloseCancelsHandlers(t *testing.T) {
	client, server := hostPair(t)
	backend := newMemBackend()
	backend.block = true
	svc, _ := startService(t, server, backend)

	r := openRaw(t, client, server.ID(), protocol.GetID)
	if err := r.send(&pb.GetRequest{Want: []cid.Cid{makeBlock(t, nil).Cid}}); err != nil {
		t.Fatal(err)
	}
	<-backend.entered
	if err := svc.Close(); err != nil {
		t.Fatal(err)
	}
	if _, err := r.recv(); err == nil {
		t.Fatal("stream still answers after Close")
	}
}

func TestGetServerRejectsBadInput(t *testing.T) {
	c := makeBlock(t, nil).Cid
	cases := []struct {
		name  string
		write func(r *rawStream) error
	}{
		{"oversize request", func(r *rawStream) error {
			return r.send(&pb.Block{Cid: c, Data: make([]byte, protocol.MaxRequestSize)})
		}},
		{"oversize length prefix", func(r *rawStream) error {
			_, err := r.s.Write([]byte{0xff, 0xff, 0xff, 0xff, 0x0f})
			return err
		}},
		{"wrong message type", func(r *rawStream) error { return r.send(&pb.StoreEnd{}) }},
		{"malformed message", func(r *rawStream) error { return r.w.WriteMsg([]byte{0x08, 0x01, 0x12, 0x05, 0x0a}) }},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			client, server := hostPair(t)
			svc, st := startService(t, server, newMemBackend())
			r := openRaw(t, client, server.ID(), protocol.GetID)
			_ = tc.write(r) // may fail once the server resets
			if m, err := r.recv(); err == nil {
				t.Fatalf("server answered %v to bad input", m.Type())
			}
			if err := svc.Close(); err != nil { // waits for the handler
				t.Fatal(err)
			}
			if got := st.of(client.ID()); len(got) != 1 {
				t.Fatalf("strikes %q, want one", got)
			}
		})
	}
}

func TestServerIdleTimeout(t *testing.T) {
	client, server := hostPair(t)
	_, st := startService(t, server, newMemBackend(), protocol.WithIdleTimeout(100*time.Millisecond))
	r := openRaw(t, client, server.ID(), protocol.GetID)
	// Send nothing: the handler's deadline expires and it resets.
	if _, err := r.recv(); err == nil {
		t.Fatal("idle stream answered")
	}
	if got := st.of(client.ID()); len(got) != 0 {
		t.Fatalf("idle peer struck: %q", got)
	}
}

// blockOfSize returns a valid block of n bytes whose content depends on tag.
func blockOfSize(tb testing.TB, n int, tag string) blockstore.Block {
	tb.Helper()
	data := make([]byte, n)
	for i := range data {
		data[i] = byte(i*7 + len(tag))
	}
	copy(data, tag)
	return makeBlock(tb, data)
}

// largeBlocks straddles the sizes where the sender switches to writing a
// block's data straight from the caller's buffer, up to the largest block.
func largeBlocks(tb testing.TB) []blockstore.Block {
	tb.Helper()
	var out []blockstore.Block
	for i, n := range []int{protocol.MaxRequestSize - 100, protocol.MaxRequestSize, protocol.MaxRequestSize + 1,
		1 << 20, blockstore.MaxBlockSize} {
		out = append(out, blockOfSize(tb, n, fmt.Sprint("large-", i)))
	}
	return out
}

func TestFetchLargeBlocks(t *testing.T) {
	client, server := hostPair(t)
	backend := newMemBackend()
	bs := largeBlocks(t)
	backend.add(bs...)
	startService(t, server, backend)

	var got []blockstore.Block
	want := make([]cid.Cid, len(bs))
	for i, b := range bs {
		want[i] = b.Cid
	}
	missing, err := protocol.Fetch(context.Background(), client, server.ID(), cid.Undef, want,
		func(b blockstore.Block) error { got = append(got, b); return nil })
	if err != nil || len(missing) != 0 {
		t.Fatalf("Fetch: missing %v, err %v", missing, err)
	}
	if len(got) != len(bs) {
		t.Fatalf("got %d blocks, want %d", len(got), len(bs))
	}
	for i := range bs {
		if got[i].Cid != bs[i].Cid || !bytes.Equal(got[i].Data, bs[i].Data) {
			t.Fatalf("block %d (%d bytes) differs", i, len(bs[i].Data))
		}
	}
}

// TestFetchBatches checks what a server sees of a long want list: requests
// of at most MaxWant CIDs, as few as that allows, in order.
func TestFetchBatches(t *testing.T) {
	bs := makeBlocks(t, 2*pb.MaxWant+7, 8, "batch")
	cases := []struct {
		name  string
		n     int
		sizes []int
	}{
		{"one", 1, []int{1}},
		{"MaxWant", pb.MaxWant, []int{pb.MaxWant}},
		{"MaxWant+1", pb.MaxWant + 1, []int{pb.MaxWant, 1}},
		{"2 MaxWant", 2 * pb.MaxWant, []int{pb.MaxWant, pb.MaxWant}},
		{"2 MaxWant+7", 2*pb.MaxWant + 7, []int{pb.MaxWant, pb.MaxWant, 7}},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			client, server := hostPair(t)
			var (
				mu    sync.Mutex
				sizes []int
				asked []cid.Cid
			)
			done := make(chan struct{})
			server.SetStreamHandler(protocol.GetID, func(s network.Stream) {
				defer close(done)
				r := newRaw(s)
				for {
					m, err := r.recv()
					if err != nil {
						_ = s.Close()
						return
					}
					req := m.(*pb.GetRequest)
					mu.Lock()
					sizes = append(sizes, len(req.Want))
					asked = append(asked, req.Want...)
					mu.Unlock()
					for _, w := range req.Want {
						_ = r.send(&pb.Missing{Cid: w})
					}
					_ = r.send(&pb.Done{})
				}
			})
			want := make([]cid.Cid, tc.n)
			for i := range want {
				want[i] = bs[i].Cid
			}
			missing, err := protocol.Fetch(context.Background(), client, server.ID(), cid.Undef, want,
				func(blockstore.Block) error { return nil })
			if err != nil {
				t.Fatal(err)
			}
			<-done // the client closed the stream
			mu.Lock()
			defer mu.Unlock()
			if !slices.Equal(sizes, tc.sizes) {
				t.Fatalf("request sizes %v, want %v", sizes, tc.sizes)
			}
			if !slices.Equal(asked, want) || !slices.Equal(missing, want) {
				t.Fatalf("asked %d CIDs, %d missing; want the %d in order", len(asked), len(missing), len(want))
			}
		})
	}
}

// TestGetSessionClose checks that a closed session refuses further
// requests, that Close is idempotent, and that the server sees a clean end
// of stream, not a misbehaving peer.
func TestGetSessionClose(t *testing.T) {
	client, server := hostPair(t)
	backend := newMemBackend()
	b := makeBlock(t, []byte("closing"))
	backend.add(b)
	svc, st := startService(t, server, backend)

	ctx := context.Background()
	s, err := protocol.NewGetSession(ctx, client, server.ID())
	if err != nil {
		t.Fatal(err)
	}
	if ok, err := s.HasRoot(ctx, b.Cid); err != nil || !ok {
		t.Fatalf("HasRoot = %v, %v", ok, err)
	}
	if err := s.Close(); err != nil {
		t.Fatal(err)
	}
	if err := s.Close(); err != nil {
		t.Fatalf("second Close: %v", err)
	}
	_, err = s.Fetch(ctx, cid.Undef, []cid.Cid{b.Cid}, func(blockstore.Block) error { return nil })
	if !errors.Is(err, protocol.ErrSessionBroken) {
		t.Fatalf("Fetch after Close: err = %v, want ErrSessionBroken", err)
	}
	if _, err := s.HasRoot(ctx, b.Cid); !errors.Is(err, protocol.ErrSessionBroken) {
		t.Fatalf("HasRoot after Close: err = %v, want ErrSessionBroken", err)
	}
	if err := svc.Close(); err != nil { // waits for the handler
		t.Fatal(err)
	}
	if got := st.of(client.ID()); len(got) != 0 {
		t.Fatalf("closing client struck: %q", got)
	}
}

// TestFetchBadFrames plays a server whose answer is not a well-formed
// frame: the client reports the right kind of breach.
func TestFetchBadFrames(t *testing.T) {
	want := makeBlock(t, []byte("asked"))
	cases := []struct {
		name    string
		frame   []byte // written raw after the request is read
		wantErr error
	}{
		{"empty frame", []byte{0x00}, protocol.ErrProtocol},
		{"frame over MaxMessageSize", binary.AppendUvarint(nil, protocol.MaxMessageSize+1), protocol.ErrMessageTooLarge},
		{"end of stream", nil, io.ErrUnexpectedEOF},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			client, server := hostPair(t)
			server.SetStreamHandler(protocol.GetID, func(s network.Stream) {
				if _, err := newRaw(s).recv(); err != nil {
					_ = s.Reset()
					return
				}
				_, _ = s.Write(tc.frame)
				_ = s.CloseWrite()
			})
			_, err := protocol.Fetch(context.Background(), client, server.ID(), cid.Undef,
				[]cid.Cid{want.Cid}, func(blockstore.Block) error { return nil })
			if !errors.Is(err, tc.wantErr) {
				t.Fatalf("err = %v, want %v", err, tc.wantErr)
			}
		})
	}
}

// padFrame returns the envelope of m with an unknown field added to its
// body, so that the envelope is exactly size bytes.
func padFrame(tb testing.TB, m pb.Message, size int) []byte {
	tb.Helper()
	body := m.AppendBody(nil)
	for pad := size; pad >= 0; pad-- {
		b := protowire.AppendBytes(protowire.AppendTag(slices.Clip(body), 15, protowire.BytesType), make([]byte, pad))
		if env := (&pb.Envelope{Type: m.Type(), Body: b}).AppendMarshal(nil); len(env) == size {
			return env
		}
	}
	tb.Fatalf("no padding makes %v %d bytes", m.Type(), size)
	return nil
}

// TestGetRequestFrameLimit checks that MaxRequestSize is inclusive: a
// request frame of that size is served, one byte more is a strike.
func TestGetRequestFrameLimit(t *testing.T) {
	c := makeBlock(t, []byte("limit")).Cid
	cases := []struct {
		name   string
		size   int
		served bool
	}{
		{"at the limit", protocol.MaxRequestSize, true},
		{"one byte over", protocol.MaxRequestSize + 1, false},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			client, server := hostPair(t)
			svc, st := startService(t, server, newMemBackend())
			r := openRaw(t, client, server.ID(), protocol.GetID)
			_ = r.w.WriteMsg(padFrame(t, &pb.GetRequest{Want: []cid.Cid{c}}, tc.size)) // may fail once the server resets
			m, err := r.recv()
			if served := err == nil; served != tc.served {
				t.Fatalf("served = %v (%v, %v), want %v", served, m, err, tc.served)
			}
			if tc.served {
				if mm, ok := m.(*pb.Missing); !ok || !mm.Cid.Equals(c) {
					t.Fatalf("answer %+v, want Missing %s", m, c)
				}
			}
			_ = r.s.Close()
			if err := svc.Close(); err != nil {
				t.Fatal(err)
			}
			if got := st.of(client.ID()); (len(got) > 0) == tc.served {
				t.Fatalf("strikes %q, served %v", got, tc.served)
			}
		})
	}
}

// TestGetBackendError checks that a failing backend resets the stream
// without blaming either side: the client's error names no breach of the
// protocol, and the client is not struck. The operator gets one warning
// with the backend's error.
func TestGetBackendError(t *testing.T) {
	errDisk := errors.New("disk on fire")
	b := makeBlock(t, []byte("stored"))
	cases := []struct {
		name string
		set  func(m *memBackend)
		ask  func(ctx context.Context, h host.Host, p peer.ID) error
	}{
		{"Get fails", func(m *memBackend) { m.failGet = errDisk }, func(ctx context.Context, h host.Host, p peer.ID) error {
			_, err := protocol.Fetch(ctx, h, p, cid.Undef, []cid.Cid{b.Cid}, func(blockstore.Block) error { return nil })
			return err
		}},
		{"Complete fails", func(m *memBackend) { m.failComplete = errDisk }, func(ctx context.Context, h host.Host, p peer.ID) error {
			_, err := protocol.HasRoot(ctx, h, p, b.Cid)
			return err
		}},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			client, server := hostPair(t)
			backend := newMemBackend()
			backend.add(b)
			tc.set(backend)
			svc, st := startService(t, server, backend)
			warnings := captureLogs(t, "warn")
			err := tc.ask(context.Background(), client, server.ID())
			if err == nil {
				t.Fatal("request succeeded against a failing backend")
			}
			for _, breach := range []error{protocol.ErrBadBlock, protocol.ErrProtocol, protocol.ErrMessageTooLarge} {
				if errors.Is(err, breach) {
					t.Fatalf("err = %v, blames the server (%v)", err, breach)
				}
			}
			if err := svc.Close(); err != nil {
				t.Fatal(err)
			}
			if got := st.of(client.ID()); len(got) != 0 {
				t.Fatalf("client struck for a backend error: %q", got)
			}
			if got := warnings(); len(got) != 1 || !strings.Contains(got[0], "backend error") ||
				!strings.Contains(got[0], errDisk.Error()) {
				t.Fatalf("warnings %q, want one about the backend error", got)
			}
		})
	}
}
