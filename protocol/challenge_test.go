package protocol_test

import (
	"context"
	"encoding/hex"
	"errors"
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

// pinnedBackend is a memBackend that answers challenges: a root is pinned
// once memBackend.Pin pinned it.
type pinnedBackend struct{ *memBackend }

var _ protocol.ChallengeBackend = pinnedBackend{}

func (b pinnedBackend) Pinned(_ context.Context, root cid.Cid) (bool, error) {
	_, ok := b.pin(root)
	return ok, nil
}

// holderFixture is a server that holds root (pinned) and chunk, and a
// client connected to it.
type holderFixture struct {
	client, server host.Host
	backend        *memBackend
	root, chunk    blockstore.Block
	strikes        *strikes
	svc            *protocol.Service
}

func newHolder(t *testing.T, pin bool) *holderFixture {
	t.Helper()
	f := &holderFixture{backend: newMemBackend(), strikes: &strikes{}}
	f.client, f.server = hostPair(t)
	f.root, f.chunk = makeBlock(t, []byte("root block")), makeBlock(t, []byte("chunk block"))
	f.backend.add(f.root, f.chunk)
	f.backend.setTree(f.root.Cid, f.chunk.Cid)
	if pin {
		if err := f.backend.Pin(context.Background(), f.root.Cid, testOwner, time.Now().Add(time.Hour)); err != nil {
			t.Fatal(err)
		}
	}
	f.svc = protocol.New(f.server, protocol.WithGetBackend(pinnedBackend{f.backend}),
		protocol.WithStrikeFunc(f.strikes.record))
	f.svc.Start()
	t.Cleanup(func() { _ = f.svc.Close() })
	return f
}

// TestAuditHonestHolder: a peer that holds the block under a pinned root
// proves it, for the root and for a chunk, several times on one session;
// the proof is the one docs/wire.md defines (over the server's own ID),
// and the session still serves blocks afterwards.
func TestAuditHonestHolder(t *testing.T) {
	f := newHolder(t, true)
	ctx := context.Background()
	for _, b := range []blockstore.Block{f.chunk, f.root} {
		if err := protocol.Audit(ctx, f.client, f.server.ID(), f.root.Cid, b); err != nil {
			t.Fatalf("audit of an honest holder on %s: %v", b.Cid, err)
		}
	}
	s, err := protocol.NewGetSession(ctx, f.client, f.server.ID())
	if err != nil {
		t.Fatal(err)
	}
	defer s.Close()
	for i := range 3 {
		nonce := protocol.Nonce()
		proof, err := s.Challenge(ctx, f.root.Cid, f.chunk.Cid, nonce)
		if err != nil {
			t.Fatalf("challenge %d: %v", i, err)
		}
		if proof != protocol.ProofOf(f.server.ID(), nonce, f.chunk.Cid, f.chunk.Data) {
			t.Fatalf("challenge %d: proof %x is not ProofOf(server, nonce, cid, data)", i, proof)
		}
	}
	missing, err := s.Fetch(ctx, f.root.Cid, []cid.Cid{f.chunk.Cid}, func(blockstore.Block) error { return nil })
	if err != nil || len(missing) != 0 {
		t.Fatalf("fetch after challenges: missing %v, %v", missing, err)
	}
	if got := f.strikes.of(f.client.ID()); len(got) != 0 {
		t.Fatalf("honest client struck: %q", got)
	}
}

// TestChallengeNotHeld: the server answers Missing, which Audit reports as
// ErrNotHeld, for a block it lacks, for a root it holds but has not
// pinned, and whatever it holds if its backend cannot answer challenges.
func TestChallengeNotHeld(t *testing.T) {
	absent := makeBlock(t, []byte("a block nobody stored"))
	t.Run("block absent", func(t *testing.T) {
		f := newHolder(t, true)
		err := protocol.Audit(context.Background(), f.client, f.server.ID(), f.root.Cid, absent)
		if !errors.Is(err, protocol.ErrNotHeld) {
			t.Fatalf("audit on an absent block: %v, want ErrNotHeld", err)
		}
	})
	t.Run("root not pinned", func(t *testing.T) {
		f := newHolder(t, false)
		err := protocol.Audit(context.Background(), f.client, f.server.ID(), f.root.Cid, f.chunk)
		if !errors.Is(err, protocol.ErrNotHeld) {
			t.Fatalf("audit under an unpinned root: %v, want ErrNotHeld", err)
		}
	})
	t.Run("backend without challenges", func(t *testing.T) {
		client, server := hostPair(t)
		b := newMemBackend()
		chunk := makeBlock(t, []byte("chunk"))
		b.add(chunk)
		_ = b.Pin(context.Background(), chunk.Cid, testOwner, time.Now().Add(time.Hour))
		startService(t, server, b)
		err := protocol.Audit(context.Background(), client, server.ID(), chunk.Cid, chunk)
		if !errors.Is(err, protocol.ErrNotHeld) {
			t.Fatalf("audit of a server that cannot prove: %v, want ErrNotHeld", err)
		}
	})
}

// TestAuditLyingServer mounts the attack of hostile peers point 5: a
// server that says it holds every root complete and holds nothing. Every
// answer it can give without the block fails the audit: a proof over
// another nonce, over another peer's ID (a relayed proof), over other
// data, random bytes, Missing, or a message out of sequence.
func TestAuditLyingServer(t *testing.T) {
	root := makeBlock(t, []byte("the root"))
	chunk := makeBlock(t, []byte("the challenged chunk"))
	other := makeBlock(t, []byte("some other block"))
	relay := newHost(t).ID()
	cases := []struct {
		name    string
		answer  func(self peer.ID, ch *pb.Challenge) pb.Message
		wantErr error
	}{
		{"proof over another nonce", func(self peer.ID, ch *pb.Challenge) pb.Message {
			n := ch.Nonce
			n[0] ^= 1
			return &pb.Proof{Proof: protocol.ProofOf(self, n, ch.Cid, chunk.Data)}
		}, protocol.ErrBadProof},
		{"another holder's proof", func(_ peer.ID, ch *pb.Challenge) pb.Message {
			return &pb.Proof{Proof: protocol.ProofOf(relay, ch.Nonce, ch.Cid, chunk.Data)}
		}, protocol.ErrBadProof},
		{"proof over another block", func(self peer.ID, ch *pb.Challenge) pb.Message {
			return &pb.Proof{Proof: protocol.ProofOf(self, ch.Nonce, other.Cid, other.Data)}
		}, protocol.ErrBadProof},
		{"random proof", func(peer.ID, *pb.Challenge) pb.Message {
			return &pb.Proof{Proof: protocol.Nonce()}
		}, protocol.ErrBadProof},
		{"missing", func(_ peer.ID, ch *pb.Challenge) pb.Message { return &pb.Missing{Cid: ch.Cid} }, protocol.ErrNotHeld},
		{"missing another cid", func(peer.ID, *pb.Challenge) pb.Message { return &pb.Missing{Cid: other.Cid} }, protocol.ErrProtocol},
		{"done", func(peer.ID, *pb.Challenge) pb.Message { return &pb.Done{RootComplete: true} }, protocol.ErrProtocol},
		{"block", func(peer.ID, *pb.Challenge) pb.Message { return &pb.Block{Cid: chunk.Cid, Data: chunk.Data} }, protocol.ErrProtocol},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			client, server := hostPair(t)
			liar(t, server, func(ch *pb.Challenge) pb.Message { return tc.answer(server.ID(), ch) })
			ok, err := protocol.HasRoot(context.Background(), client, server.ID(), root.Cid)
			if err != nil || !ok {
				t.Fatalf("the liar should claim the root: %v, %v", ok, err)
			}
			err = protocol.Audit(context.Background(), client, server.ID(), root.Cid, chunk)
			if !errors.Is(err, tc.wantErr) {
				t.Fatalf("audit of a liar: %v, want %v", err, tc.wantErr)
			}
		})
	}
}

// liar serves /cas/get/1.0 on h as a peer that holds nothing and claims
// everything: Done{root_complete} to every GetRequest, answer(ch) to
// every Challenge.
func liar(tb testing.TB, h host.Host, answer func(*pb.Challenge) pb.Message) {
	tb.Helper()
	h.SetStreamHandler(protocol.GetID, func(s network.Stream) {
		r := newRaw(s)
		defer s.Close()
		for {
			m, err := r.recv()
			if err != nil {
				return
			}
			var out pb.Message = &pb.Done{RootComplete: true}
			if ch, ok := m.(*pb.Challenge); ok {
				out = answer(ch)
			}
			if err := r.send(out); err != nil {
				return
			}
		}
	})
}

// TestMalformedChallengeStrikes: a challenge without its root or CID, or
// whose nonce is not 32 bytes, is a protocol violation: the server resets
// the stream without answering and strikes the client.
func TestMalformedChallengeStrikes(t *testing.T) {
	c := makeBlock(t, []byte("x")).Cid
	body := func(root, cc []byte, nonce []byte) []byte {
		var b []byte
		if root != nil {
			b = protowire.AppendBytes(append(b, 0x0a), root)
		}
		if cc != nil {
			b = protowire.AppendBytes(append(b, 0x12), cc)
		}
		return protowire.AppendBytes(append(b, 0x1a), nonce)
	}
	cases := map[string][]byte{
		"short nonce": body(c.Bytes(), c.Bytes(), make([]byte, 31)),
		"long nonce":  body(c.Bytes(), c.Bytes(), make([]byte, 33)),
		"no root":     body(nil, c.Bytes(), make([]byte, 32)),
		"no cid":      body(c.Bytes(), nil, make([]byte, 32)),
		"bad cid":     body(c.Bytes(), []byte{1, 0x55, 0, 1, 'x'}, make([]byte, 32)),
	}
	for name, b := range cases {
		t.Run(name, func(t *testing.T) {
			f := newHolder(t, true)
			r := openRaw(t, f.client, f.server.ID(), protocol.GetID)
			env := (&pb.Envelope{Type: pb.TypeChallenge, Body: b}).AppendMarshal(nil)
			_ = r.w.WriteMsg(env) // may fail once the server resets
			if m, err := r.recv(); err == nil {
				t.Fatalf("server answered %v to a malformed challenge", m.Type())
			}
			if err := f.svc.Close(); err != nil { // waits for the handler
				t.Fatal(err)
			}
			if got := f.strikes.of(f.client.ID()); len(got) != 1 {
				t.Fatalf("strikes %q, want one", got)
			}
		})
	}
}

// TestChallengeRefusesBadCids: the client refuses, before sending, a CID
// the server would strike it for, and the session stays usable.
func TestChallengeRefusesBadCids(t *testing.T) {
	f := newHolder(t, true)
	s, err := protocol.NewGetSession(context.Background(), f.client, f.server.ID())
	if err != nil {
		t.Fatal(err)
	}
	defer s.Close()
	if _, err := s.Challenge(context.Background(), cid.Undef, f.chunk.Cid, protocol.Nonce()); !errors.Is(err, blockstore.ErrBadCid) {
		t.Fatalf("challenge without a root: %v, want ErrBadCid", err)
	}
	if _, err := s.Challenge(context.Background(), f.root.Cid, f.chunk.Cid, protocol.Nonce()); err != nil {
		t.Fatalf("session unusable after a refused challenge: %v", err)
	}
	if got := f.strikes.of(f.client.ID()); len(got) != 0 {
		t.Fatalf("strikes %q, want none", got)
	}
}

// TestProofKnownAnswer pins the proof of docs/wire.md ("Storage
// challenge") to a known answer, so that any change of its input fails.
func TestProofKnownAnswer(t *testing.T) {
	prover, err := peer.Decode("12D3KooWD3eckifWpRn9wQpMG9R9hX3sD158z7EqHWmweQAJU5SA")
	if err != nil {
		t.Fatal(err)
	}
	foo := makeBlock(t, []byte("foo"))
	var nonce [pb.NonceSize]byte
	for i := range nonce {
		nonce[i] = byte(i)
	}
	got := protocol.ProofOf(prover, nonce, foo.Cid, foo.Data)
	const want = "44f5e5e3e9aa9a4cc0c7669f2c0eb5860e7eb3dca7c7739d8d031c1c58fa08ea"
	if hex.EncodeToString(got[:]) != want {
		t.Fatalf("proof %x, want %s", got, want)
	}
	if !protocol.VerifyProof(prover, nonce, foo.Cid, foo.Data, got) {
		t.Fatal("VerifyProof refuses ProofOf")
	}
}

// BenchmarkAudit is one storage challenge on a 1 MiB block held by a
// loopback peer, on a fresh stream as Audit opens one: what checking one
// claim costs the owner (a stream, a round trip, two hashes of the block,
// one on each side; the server also verifies the block on read in casd).
func BenchmarkAudit(b *testing.B) {
	client, server := hostPair(b)
	backend := newMemBackend()
	root := makeBlock(b, []byte("root"))
	chunk := makeBlocks(b, 1, benchBlockSize, "audit")[0]
	backend.add(root, chunk)
	_ = backend.Pin(context.Background(), root.Cid, testOwner, time.Now().Add(time.Hour))
	svc := protocol.New(server, protocol.WithGetBackend(pinnedBackend{backend}))
	svc.Start()
	b.Cleanup(func() { _ = svc.Close() })
	b.SetBytes(benchBlockSize)
	b.ReportAllocs()
	for b.Loop() {
		if err := protocol.Audit(context.Background(), client, server.ID(), root.Cid, chunk); err != nil {
			b.Fatal(err)
		}
	}
}
