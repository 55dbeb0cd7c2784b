package protocol_test

import (
	"crypto/rand"
	"fmt"
	"io"
	"slices"
	"sync"
	"testing"
	"time"

	"github.com/libp2p/go-libp2p/core/crypto"
	"github.com/libp2p/go-libp2p/core/host"
	"github.com/libp2p/go-libp2p/core/peer"
	"github.com/libp2p/go-libp2p/core/peerstore"
	"github.com/libp2p/go-libp2p/core/record"
	"github.com/libp2p/go-libp2p/p2p/host/peerstore/pstoremem"
	ma "github.com/multiformats/go-multiaddr"

	"github.com/casd/casd/protocol"
)

// peersBackend is a PeersBackend that records what it is given.
type peersBackend struct {
	mu      sync.Mutex // guards every field below
	deny    bool       // Allow answers !deny
	allows  int        // Allow calls
	merged  []merge
	samples int // Sample calls
	sample  []*record.Envelope
	// hold, if set, makes Merge count itself in entered and wait for it
	// to be closed.
	hold    chan struct{}
	entered int
}

var _ protocol.PeersBackend = (*peersBackend)(nil)

// merge records one Merge call.
type merge struct {
	from peer.ID
	recs []protocol.PeerRecord
}

func (b *peersBackend) Allow(peer.ID) bool {
	b.mu.Lock()
	defer b.mu.Unlock()
	b.allows++
	return !b.deny
}

func (b *peersBackend) Merge(from peer.ID, recs []protocol.PeerRecord) {
	b.mu.Lock()
	b.merged = append(b.merged, merge{from, recs})
	hold := b.hold
	if hold != nil {
		b.entered++
	}
	b.mu.Unlock()
	if hold != nil {
		<-hold
	}
}

func (b *peersBackend) Sample(peer.ID) []*record.Envelope {
	b.mu.Lock()
	defer b.mu.Unlock()
	b.samples++
	return slices.Clone(b.sample)
}

func (b *peersBackend) merges() []merge {
	b.mu.Lock()
	defer b.mu.Unlock()
	return slices.Clone(b.merged)
}

func (b *peersBackend) counts() (allows, entered, samples int) {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.allows, b.entered, b.samples
}

// startPeers serves b on h's /cas/peers/1.0 and closes the service at
// cleanup.
func startPeers(tb testing.TB, h host.Host, b *peersBackend) *strikes {
	tb.Helper()
	st := &strikes{}
	svc := protocol.New(h, protocol.WithPeersBackend(b), protocol.WithStrikeFunc(st.record))
	svc.Start()
	tb.Cleanup(func() { _ = svc.Close() })
	return st
}

// identity is a peer's key pair and ID, for signing records.
type identity struct {
	priv crypto.PrivKey
	id   peer.ID
}

func newIdentity(tb testing.TB) identity {
	tb.Helper()
	return identityFrom(tb, rand.Reader)
}

// identityFrom returns the identity whose Ed25519 key is read from r.
func identityFrom(tb testing.TB, r io.Reader) identity {
	tb.Helper()
	priv, _, err := crypto.GenerateEd25519Key(r)
	if err != nil {
		tb.Fatal(err)
	}
	id, err := peer.IDFromPrivateKey(priv)
	if err != nil {
		tb.Fatal(err)
	}
	return identity{priv, id}
}

// testAddrs returns n distinct loopback TCP addresses, tagged by port base.
func testAddrs(tb testing.TB, base, n int) []ma.Multiaddr {
	tb.Helper()
	out := make([]ma.Multiaddr, n)
	for i := range out {
		a, err := ma.NewMultiaddr(fmt.Sprintf("/ip4/127.0.0.1/tcp/%d", base+i))
		if err != nil {
			tb.Fatal(err)
		}
		out[i] = a
	}
	return out
}

// seal returns the envelope, signed by signer, of a peer record of id.
func seal(tb testing.TB, signer crypto.PrivKey, id peer.ID, seq uint64, addrs []ma.Multiaddr) *record.Envelope {
	tb.Helper()
	env, err := record.Seal(&peer.PeerRecord{PeerID: id, Seq: seq, Addrs: addrs}, signer)
	if err != nil {
		tb.Fatal(err)
	}
	return env
}

// selfRecord returns ident's own record with n addresses.
func (ident identity) record(tb testing.TB, seq uint64, n int) *record.Envelope {
	tb.Helper()
	return seal(tb, ident.priv, ident.id, seq, testAddrs(tb, 4000, n))
}

func marshalEnv(tb testing.TB, env *record.Envelope) []byte {
	tb.Helper()
	b, err := env.Marshal()
	if err != nil {
		tb.Fatal(err)
	}
	return b
}

// recordsOf returns n records of fresh identities, each with addrs
// addresses.
func recordsOf(tb testing.TB, n, addrs int) []*record.Envelope {
	tb.Helper()
	out := make([]*record.Envelope, n)
	for i := range out {
		out[i] = newIdentity(tb).record(tb, uint64(i+1), addrs)
	}
	return out
}

// idsOf returns the peer IDs of recs, in order.
func idsOf(recs []protocol.PeerRecord) []peer.ID {
	out := make([]peer.ID, len(recs))
	for i, r := range recs {
		out[i] = r.Record.PeerID
	}
	return out
}

// envIDs returns the peer IDs of the envelopes' records, in order.
func envIDs(tb testing.TB, envs []*record.Envelope) []peer.ID {
	tb.Helper()
	out := make([]peer.ID, len(envs))
	for i, e := range envs {
		r, err := e.Record()
		if err != nil {
			tb.Fatal(err)
		}
		out[i] = r.(*peer.PeerRecord).PeerID
	}
	return out
}

// TestExchangePeers: one exchange carries the client's records to the
// server's backend and the backend's sample back, each verified, with the
// receiver's own record dropped on both sides and no strike.
func TestExchangePeers(t *testing.T) {
	client, server := hostPair(t)
	clientID := identity{client.Peerstore().PrivKey(client.ID()), client.ID()}
	serverID := identity{server.Peerstore().PrivKey(server.ID()), server.ID()}
	others := recordsOf(t, 3, 4)
	b := &peersBackend{sample: append([]*record.Envelope{clientID.record(t, 1, 2)}, others[2], serverID.record(t, 7, 3))}
	st := startPeers(t, server, b)

	out := []*record.Envelope{clientID.record(t, 1, 2), others[0], others[1]}
	got, err := protocol.ExchangePeers(t.Context(), client, server.ID(), out)
	if err != nil {
		t.Fatal(err)
	}
	// The server's sample minus the client's own record.
	if ids, want := idsOf(got), envIDs(t, b.sample[1:]); !slices.Equal(ids, want) {
		t.Fatalf("client got records of %v, want %v", ids, want)
	}
	if got[1].Record.Seq != 7 || len(got[1].Record.Addrs) != 3 || !got[1].Envelope.Equal(b.sample[2]) {
		t.Fatalf("server's record: seq %d, %d addrs; want 7, 3 and the envelope sent", got[1].Record.Seq, len(got[1].Record.Addrs))
	}
	ms := b.merges()
	if len(ms) != 1 || ms[0].from != client.ID() {
		t.Fatalf("merges %v, want one from the client", ms)
	}
	if ids, want := idsOf(ms[0].recs), envIDs(t, out); !slices.Equal(ids, want) {
		t.Fatalf("server merged records of %v, want %v", ids, want)
	}
	if s := st.of(client.ID()); len(s) != 0 {
		t.Fatalf("strikes %v", s)
	}
}

// TestStaleRecordRefusedByPeerstore pins the libp2p behaviour that gossip
// relies on for stale records: DecodePeerRecords accepts a record whatever
// its sequence number (a receiver cannot know), and the certified address
// book of pstoremem refuses (accepted false, no error) a record older than
// one it consumed, keeping the newer addresses; an equal or newer one is
// accepted.
func TestStaleRecordRefusedByPeerstore(t *testing.T) {
	p := newIdentity(t)
	newer := seal(t, p.priv, p.id, 5, testAddrs(t, 5000, 2))
	older := seal(t, p.priv, p.id, 4, testAddrs(t, 6000, 3))
	for _, env := range []*record.Envelope{newer, older} {
		if _, err := protocol.DecodePeerRecords([][]byte{marshalEnv(t, env)}, ""); err != nil {
			t.Fatalf("decode: %v", err)
		}
	}

	ps, err := pstoremem.NewPeerstore()
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = ps.Close() })
	cab, ok := peerstore.GetCertifiedAddrBook(ps)
	if !ok {
		t.Fatal("pstoremem has no certified address book")
	}
	consume := func(env *record.Envelope) bool {
		t.Helper()
		accepted, err := cab.ConsumePeerRecord(env, time.Hour)
		if err != nil {
			t.Fatal(err)
		}
		return accepted
	}
	if !consume(newer) {
		t.Fatal("first record refused")
	}
	if consume(older) {
		t.Fatal("a record of an older sequence number was accepted")
	}
	want := testAddrs(t, 5000, 2)
	got := ps.Addrs(p.id)
	if len(got) != len(want) || !slices.ContainsFunc(got, want[0].Equal) || !slices.ContainsFunc(got, want[1].Equal) {
		t.Fatalf("addrs %v after the stale record; want the newer record's %v", got, want)
	}
	if !consume(newer) {
		t.Fatal("the same record again was refused")
	}
	if !consume(seal(t, p.priv, p.id, 6, testAddrs(t, 7000, 1))) {
		t.Fatal("a newer record was refused")
	}
}

// TestPeersServedWithBackend: a service serves /cas/peers/1.0 only when
// given a PeersBackend, and stops serving it at Close.
func TestPeersServedWithBackend(t *testing.T) {
	client, server := hostPair(t)
	plain := protocol.New(server, protocol.WithGetBackend(newMemBackend()))
	plain.Start()
	if _, err := protocol.ExchangePeers(t.Context(), client, server.ID(), nil); err == nil {
		t.Fatal("exchange with a service without a peers backend succeeded")
	}
	_ = plain.Close()

	svc := protocol.New(server, protocol.WithPeersBackend(&peersBackend{}))
	svc.Start()
	if _, err := protocol.ExchangePeers(t.Context(), client, server.ID(), nil); err != nil {
		t.Fatalf("exchange with a peers backend: %v", err)
	}
	if err := svc.Close(); err != nil {
		t.Fatal(err)
	}
	if _, err := protocol.ExchangePeers(t.Context(), client, server.ID(), nil); err == nil {
		t.Fatal("exchange after Close succeeded")
	}
	if slices.Contains(server.Mux().Protocols(), protocol.PeersID) {
		t.Fatal("handler still registered after Close")
	}
}
