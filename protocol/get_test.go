package protocol_test

import (
	"context"
	"errors"
	"slices"
	"testing"
	"time"

	"github.com/ipfs/go-cid"
	"github.com/libp2p/go-libp2p/core/network"

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
