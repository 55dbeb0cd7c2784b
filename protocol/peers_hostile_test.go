package protocol_test

import (
	"bytes"
	"crypto/rand"
	"encoding/binary"
	"errors"
	"fmt"
	"io"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/libp2p/go-libp2p/core/crypto"
	"github.com/libp2p/go-libp2p/core/network"
	"github.com/libp2p/go-libp2p/core/peer"
	"github.com/libp2p/go-libp2p/core/record"
	recpb "github.com/libp2p/go-libp2p/core/record/pb"
	ma "github.com/multiformats/go-multiaddr"
	"google.golang.org/protobuf/proto"

	"github.com/casd/casd/protocol"
	"github.com/casd/casd/protocol/pb"
)

// otherCodecRecord is a record signed in the peer record domain but with
// another payload type, whose payload is nonetheless a valid peer record.
type otherCodecRecord struct{ peer.PeerRecord }

func (r *otherCodecRecord) Codec() []byte { return []byte{0x03, 0x02} }

// badLists returns, by name, the records of peer lists that break one rule
// each, and a substring of the error that names it.
func badLists(t testing.TB, self peer.ID) map[string]struct {
	records [][]byte
	reason  string
} {
	t.Helper()
	a, b := newIdentity(t), newIdentity(t)
	good := marshalEnv(t, a.record(t, 1, 2))

	tamperedSig := bytes.Clone(good)
	tamperedSig[len(tamperedSig)-1] ^= 1 // the signature is the last field

	// The payload of another record of a, under the first one's signature:
	// addresses swapped in transit.
	var swapped recpb.Envelope
	if err := proto.Unmarshal(good, &swapped); err != nil {
		t.Fatal(err)
	}
	swapped.Payload = seal(t, a.priv, a.id, 1, testAddrs(t, 9000, 2)).RawPayload
	swappedBytes, err := proto.Marshal(&swapped)
	if err != nil {
		t.Fatal(err)
	}

	oc, err := record.Seal(&otherCodecRecord{peer.PeerRecord{PeerID: a.id, Seq: 1, Addrs: testAddrs(t, 4000, 1)}}, a.priv)
	if err != nil {
		t.Fatal(err)
	}

	var tooMany [][]byte
	for _, e := range recordsOf(t, protocol.MaxPeerRecords+1, 1) {
		tooMany = append(tooMany, marshalEnv(t, e))
	}
	return map[string]struct {
		records [][]byte
		reason  string
	}{
		"bad signature":      {[][]byte{good, tamperedSig}, "bad signature"},
		"payload swapped":    {[][]byte{swappedBytes}, "bad signature"},
		"signed by another":  {[][]byte{marshalEnv(t, seal(t, a.priv, b.id, 1, testAddrs(t, 4000, 1)))}, "signed by " + a.id.String()},
		"not a peer record":  {[][]byte{marshalEnv(t, oc)}, "not a peer record"},
		"not an envelope":    {[][]byte{[]byte("junk")}, "protocol violation"},
		"too many records":   {tooMany, "65 peer records, limit 64"},
		"record too large":   {[][]byte{marshalEnv(t, seal(t, a.priv, a.id, 1, longAddrs(t, 20)))}, "bytes, limit 4096"},
		"too many addresses": {[][]byte{marshalEnv(t, a.record(t, 1, protocol.MaxRecordAddrs+1))}, "33 addresses, limit 32"},
		"peer twice":         {[][]byte{good, marshalEnv(t, a.record(t, 2, 1))}, "twice"},
		"same record twice":  {[][]byte{marshalEnv(t, b.record(t, 1, 1)), marshalEnv(t, b.record(t, 1, 1))}, "twice"},
		"empty record (pb)":  {[][]byte{good, nil}, "empty peer record"},
		"RSA key":            {[][]byte{good, marshalEnv(t, rsaRecord(t))}, "RSA key, not Ed25519"},
		"receiver's, forged": {[][]byte{marshalEnv(t, seal(t, a.priv, self, 1, testAddrs(t, 4000, 1)))}, "signed by"},
	}
}

// longAddrs returns n DNS addresses of some 200 bytes each: 20 make a
// record of over 4 KiB with fewer than MaxRecordAddrs addresses.
func longAddrs(t testing.TB, n int) []ma.Multiaddr {
	t.Helper()
	out := make([]ma.Multiaddr, n)
	for i := range out {
		a, err := ma.NewMultiaddr(fmt.Sprintf("/dns4/%s%d.example/tcp/4001", strings.Repeat("x", 200), i))
		if err != nil {
			t.Fatal(err)
		}
		out[i] = a
	}
	return out
}

// TestPeersBadList: a client whose list breaks any rule has its stream
// reset and is struck for it, with the reason, before the reset; nothing
// of the list is merged and nothing is sampled for it.
func TestPeersBadList(t *testing.T) {
	client, server := hostPair(t)
	for name, tc := range badLists(t, server.ID()) {
		t.Run(name, func(t *testing.T) {
			b := &peersBackend{sample: recordsOf(t, 1, 1)}
			st := startPeers(t, server, b)
			r := openRaw(t, client, server.ID(), protocol.PeersID)
			sendList(t, r, tc.records)
			assertStruck(t, r, st, client.ID(), tc.reason)
			if ms := b.merges(); len(ms) != 0 {
				t.Fatalf("merged %d times", len(ms))
			}
			if _, _, samples := b.counts(); samples != 0 {
				t.Fatalf("sampled %d times", samples)
			}
		})
	}
}

// TestPeersBadFrames: out-of-sequence and oversize frames are struck too,
// and nothing is merged.
func TestPeersBadFrames(t *testing.T) {
	client, server := hostPair(t)
	good := [][]byte{marshalEnv(t, newIdentity(t).record(t, 1, 1))}
	cases := map[string]struct {
		run    func(*rawStream) error
		reason string
	}{
		"frame over MaxRequestSize": {func(r *rawStream) error {
			frame := binary.AppendUvarint(nil, protocol.MaxRequestSize+1)
			_, err := r.s.Write(append(frame, make([]byte, protocol.MaxRequestSize+1)...))
			return err
		}, "message too large"},
		"wrong message": {func(r *rawStream) error { return r.send(&pb.Done{}) }, "got Done, want PeerList"},
		"frame after list": {func(r *rawStream) error {
			if err := r.send(&pb.PeerList{Records: good}); err != nil {
				return err
			}
			return r.send(&pb.PeerList{Records: good})
		}, "want end of stream"},
	}
	for name, tc := range cases {
		t.Run(name, func(t *testing.T) {
			b := &peersBackend{}
			st := startPeers(t, server, b)
			r := openRaw(t, client, server.ID(), protocol.PeersID)
			if err := tc.run(r); err != nil {
				t.Fatal(err)
			}
			_ = r.s.CloseWrite()
			assertStruck(t, r, st, client.ID(), tc.reason)
			if ms := b.merges(); len(ms) != 0 {
				t.Fatalf("merged %d times", len(ms))
			}
		})
	}
}

// sendList sends a PeerList of records on r and closes r's write side.
func sendList(t *testing.T, r *rawStream, records [][]byte) {
	t.Helper()
	if err := r.send(&pb.PeerList{Records: records}); err != nil {
		t.Fatal(err)
	}
	if err := r.s.CloseWrite(); err != nil {
		t.Fatal(err)
	}
}

// assertStruck reads r until it fails and checks that the stream was
// reset, not closed, and that p was struck once with a reason containing
// reason by then.
func assertStruck(t *testing.T, r *rawStream, st *strikes, p peer.ID, reason string) {
	t.Helper()
	m, err := r.recv()
	if err == nil || errors.Is(err, io.EOF) {
		t.Fatalf("read %v, %v; want a reset stream", m, err)
	}
	s := st.of(p)
	if len(s) != 1 || !strings.HasPrefix(s[0], "peers: ") || !strings.Contains(s[0], reason) {
		t.Fatalf("strikes %q; want one containing %q", s, reason)
	}
}

// TestPeersSelfDropped: the receiver's own record in a list is dropped,
// not an error, on the server and on the client.
func TestPeersSelfDropped(t *testing.T) {
	client, server := hostPair(t)
	serverID := identity{server.Peerstore().PrivKey(server.ID()), server.ID()}
	clientID := identity{client.Peerstore().PrivKey(client.ID()), client.ID()}
	other := newIdentity(t).record(t, 3, 2)
	b := &peersBackend{}
	st := startPeers(t, server, b)
	r := openRaw(t, client, server.ID(), protocol.PeersID)
	sendList(t, r, [][]byte{marshalEnv(t, serverID.record(t, 1, 1)), marshalEnv(t, other)})
	if _, err := r.recv(); err != nil {
		t.Fatal(err)
	}
	ms := b.merges()
	if len(ms) != 1 || len(ms[0].recs) != 1 || !ms[0].recs[0].Envelope.Equal(other) {
		t.Fatalf("merges %v; want one of the other peer's record alone", ms)
	}
	if s := st.of(client.ID()); len(s) != 0 {
		t.Fatalf("strikes %q", s)
	}

	// The client drops its own record from a reply.
	got, err := protocol.DecodePeerRecords([][]byte{marshalEnv(t, clientID.record(t, 1, 1)), marshalEnv(t, other)}, client.ID())
	if err != nil || len(got) != 1 || !got[0].Envelope.Equal(other) {
		t.Fatalf("decoded %v, %v; want the other record alone", idsOf(got), err)
	}
}

// TestPeersFlood: a peer that the backend does not allow is struck for
// flooding and its stream reset before anything is read, merged or
// sampled.
func TestPeersFlood(t *testing.T) {
	client, server := hostPair(t)
	b := &peersBackend{deny: true, sample: recordsOf(t, 1, 1)}
	st := startPeers(t, server, b)
	_, err := protocol.ExchangePeers(t.Context(), client, server.ID(), recordsOf(t, 2, 1))
	if err == nil {
		t.Fatal("exchange with a flooding client succeeded")
	}
	s := st.of(client.ID())
	if len(s) != 1 || !strings.Contains(s[0], protocol.ErrFlood.Error()) {
		t.Fatalf("strikes %q; want one for flooding", s)
	}
	allows, _, samples := b.counts()
	if allows != 1 || samples != 0 || len(b.merges()) != 0 {
		t.Fatalf("allows %d, samples %d, merges %d; want 1, 0, 0", allows, samples, len(b.merges()))
	}
}

// TestPeersConcurrencyBound: a server runs at most 16 exchanges at once;
// the 17th stream is reset without a strike, and the 16 complete.
func TestPeersConcurrencyBound(t *testing.T) {
	client, server := hostPair(t)
	hold := make(chan struct{})
	b := &peersBackend{hold: hold}
	st := startPeers(t, server, b)
	const running = 16
	var (
		wg   sync.WaitGroup
		errs = make(chan error, running)
	)
	for range running {
		wg.Go(func() {
			_, err := protocol.ExchangePeers(t.Context(), client, server.ID(), nil)
			errs <- err
		})
	}
	defer wg.Wait()
	released := false
	release := func() {
		if !released {
			released = true
			close(hold)
		}
	}
	defer release()
	waitUntil(t, 5*time.Second, func() bool { _, entered, _ := b.counts(); return entered == running })
	if _, err := protocol.ExchangePeers(t.Context(), client, server.ID(), nil); err == nil {
		t.Fatal("a 17th concurrent exchange succeeded")
	}
	if allows, entered, _ := b.counts(); allows != running+1 || entered != running {
		t.Fatalf("allows %d, merges entered %d; want %d, %d", allows, entered, running+1, running)
	}
	release()
	wg.Wait()
	close(errs)
	for err := range errs {
		if err != nil {
			t.Fatalf("a held exchange failed: %v", err)
		}
	}
	if s := st.of(client.ID()); len(s) != 0 {
		t.Fatalf("strikes %q; the busy server's reset is no one's fault", s)
	}
}

// waitUntil polls cond every few milliseconds until it holds, or fails
// the test after d.
func waitUntil(t *testing.T, d time.Duration, cond func() bool) {
	t.Helper()
	deadline := time.Now().Add(d)
	for !cond() {
		if time.Now().After(deadline) {
			t.Fatalf("condition not met within %v", d)
		}
		time.Sleep(5 * time.Millisecond)
	}
}

// TestPeersStall: a client that sends nothing is reset when the exchange's
// bound passes, and not struck.
func TestPeersStall(t *testing.T) {
	client, server := hostPair(t)
	b := &peersBackend{}
	st := &strikes{}
	svc := protocol.New(server, protocol.WithPeersBackend(b), protocol.WithStrikeFunc(st.record),
		protocol.WithPeersTimeout(200*time.Millisecond))
	svc.Start()
	t.Cleanup(func() { _ = svc.Close() })
	r := openRaw(t, client, server.ID(), protocol.PeersID)
	if err := r.send(&pb.PeerList{}); err != nil { // and no end of stream
		t.Fatal(err)
	}
	start := time.Now()
	_ = r.s.SetReadDeadline(start.Add(4 * time.Second)) // the test's own bound
	if m, err := r.recv(); err == nil || errors.Is(err, io.EOF) {
		t.Fatalf("read %v, %v; want a reset stream", m, err)
	}
	if d := time.Since(start); d > 2*time.Second {
		t.Fatalf("reset after %v; bound 200ms", d)
	}
	if s := st.of(client.ID()); len(s) != 0 || len(b.merges()) != 0 {
		t.Fatalf("strikes %q, merges %d; want none", s, len(b.merges()))
	}
}

// TestExchangePeersBadReply: a reply that breaks a rule fails the client's
// exchange with a peer fault naming it.
func TestExchangePeersBadReply(t *testing.T) {
	client, server := hostPair(t)
	lists := badLists(t, client.ID())
	for name, tc := range lists {
		t.Run(name, func(t *testing.T) {
			server.SetStreamHandler(protocol.PeersID, func(s network.Stream) {
				defer s.Close()
				r := newRaw(s)
				if _, err := r.recv(); err != nil {
					_ = s.Reset()
					return
				}
				_ = r.send(&pb.PeerList{Records: tc.records})
			})
			t.Cleanup(func() { server.RemoveStreamHandler(protocol.PeersID) })
			_, err := protocol.ExchangePeers(t.Context(), client, server.ID(), nil)
			if !protocol.IsPeerFault(err) || !strings.Contains(err.Error(), tc.reason) {
				t.Fatalf("error %v; want a peer fault containing %q", err, tc.reason)
			}
		})
	}
}

// TestExchangePeersSends: the client leaves out what the server would
// refuse (a second record of a peer, one over a limit, the server's own
// record), and at most MaxPeerRecords records, so the exchange succeeds
// without a strike.
func TestExchangePeersSends(t *testing.T) {
	client, server := hostPair(t)
	serverID := identity{server.Peerstore().PrivKey(server.ID()), server.ID()}
	a := newIdentity(t)
	valid := append([]*record.Envelope{a.record(t, 1, 1)}, recordsOf(t, protocol.MaxPeerRecords+5, 1)...)
	out := append([]*record.Envelope{
		nil,
		serverID.record(t, 1, 1),
		a.record(t, 1, protocol.MaxRecordAddrs+1),
		seal(t, a.priv, a.id, 1, longAddrs(t, 20)),
		rsaRecord(t),
	}, valid[:3]...)
	out = append(out, a.record(t, 2, 1)) // a again
	out = append(out, valid[3:]...)
	b := &peersBackend{}
	st := startPeers(t, server, b)
	if _, err := protocol.ExchangePeers(t.Context(), client, server.ID(), out); err != nil {
		t.Fatal(err)
	}
	ms := b.merges()
	if len(ms) != 1 {
		t.Fatalf("%d merges, want 1", len(ms))
	}
	want := envIDs(t, valid[:protocol.MaxPeerRecords])
	if got := idsOf(ms[0].recs); !slices.Equal(got, want) {
		t.Fatalf("server merged %d records %v\nwant %d %v", len(got), got, len(want), want)
	}
	if s := st.of(client.ID()); len(s) != 0 {
		t.Fatalf("strikes %q", s)
	}
}

// rsaRecord returns a well-formed record of a peer whose key is RSA.
func rsaRecord(t testing.TB) *record.Envelope {
	t.Helper()
	key, _, err := crypto.GenerateRSAKeyPair(2048, rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	id, err := peer.IDFromPrivateKey(key)
	if err != nil {
		t.Fatal(err)
	}
	return seal(t, key, id, 1, testAddrs(t, 4000, 1))
}

// TestExchangePeersFrameBudget: records that would not fit in one frame
// together are cut at the frame limit, not sent to be refused.
func TestExchangePeersFrameBudget(t *testing.T) {
	client, server := hostPair(t)
	var out []*record.Envelope
	for range protocol.MaxPeerRecords {
		id := newIdentity(t)
		out = append(out, seal(t, id.priv, id.id, 1, longAddrs(t, 15))) // ~3.3 KiB each
	}
	b := &peersBackend{}
	st := startPeers(t, server, b)
	if _, err := protocol.ExchangePeers(t.Context(), client, server.ID(), out); err != nil {
		t.Fatal(err)
	}
	ms := b.merges()
	if len(ms) != 1 || len(ms[0].recs) == 0 || len(ms[0].recs) >= protocol.MaxPeerRecords {
		t.Fatalf("merges %d; want one of some but not all records", len(ms))
	}
	size := 0
	for _, r := range ms[0].recs {
		size += len(marshalEnv(t, r.Envelope))
	}
	if size > protocol.MaxRequestSize || size < protocol.MaxRequestSize-2*protocol.MaxRecordSize {
		t.Fatalf("%d records of %d bytes sent; want a frame filled to within 2 records of %d",
			len(ms[0].recs), size, protocol.MaxRequestSize)
	}
	if s := st.of(client.ID()); len(s) != 0 {
		t.Fatalf("strikes %q", s)
	}
}
