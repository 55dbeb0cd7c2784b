package protocol_test

import (
	"context"
	"crypto/ed25519"
	"fmt"
	"sync"
	"testing"
	"time"

	"github.com/ipfs/go-cid"
	"github.com/libp2p/go-libp2p"
	"github.com/libp2p/go-libp2p/core/host"
	"github.com/libp2p/go-libp2p/core/metrics"
	"github.com/libp2p/go-libp2p/core/peer"
	p2pprotocol "github.com/libp2p/go-libp2p/core/protocol"
	"github.com/libp2p/go-libp2p/core/record"
	ma "github.com/multiformats/go-multiaddr"

	"github.com/casd/casd/protocol"
)

// streamBytes is a libp2p bandwidth reporter that counts, synchronously,
// the stream bytes sent and received per protocol (libp2p's own counter
// publishes its totals from a sweeper once a second).
type streamBytes struct {
	mu sync.Mutex
	by map[p2pprotocol.ID]int64
}

var _ metrics.Reporter = (*streamBytes)(nil)

func (s *streamBytes) add(n int64, proto p2pprotocol.ID) {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.by == nil {
		s.by = make(map[p2pprotocol.ID]int64)
	}
	s.by[proto] += n
}

func (s *streamBytes) of(proto p2pprotocol.ID) int64 {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.by[proto]
}

func (*streamBytes) LogSentMessage(int64) {}
func (*streamBytes) LogRecvMessage(int64) {}
func (s *streamBytes) LogSentMessageStream(n int64, proto p2pprotocol.ID, _ peer.ID) {
	s.add(n, proto)
}
func (s *streamBytes) LogRecvMessageStream(n int64, proto p2pprotocol.ID, _ peer.ID) {
	s.add(n, proto)
}
func (*streamBytes) GetBandwidthForPeer(peer.ID) metrics.Stats                { return metrics.Stats{} }
func (*streamBytes) GetBandwidthForProtocol(p2pprotocol.ID) metrics.Stats     { return metrics.Stats{} }
func (*streamBytes) GetBandwidthTotals() metrics.Stats                        { return metrics.Stats{} }
func (*streamBytes) GetBandwidthByPeer() map[peer.ID]metrics.Stats            { return nil }
func (*streamBytes) GetBandwidthByProtocol() map[p2pprotocol.ID]metrics.Stats { return nil }
func (*streamBytes) Reset()                                                   {}
func (*streamBytes) TrimIdle(time.Time)                                       {}

// auditBackend answers both challenges: the light one (Pinned) and the
// tree challenge (HeldFor).
type auditBackend struct{ *treeBackend }

func (b auditBackend) Pinned(_ context.Context, root cid.Cid) (bool, error) {
	_, ok := b.pin(root)
	return ok, nil
}

// TestAuditTraffic measures what an owner's audit costs on the wire, in
// stream bytes both ways (docs/architecture.md, "Detection probability
// and audit traffic"): a light challenge and a tree challenge each cost a
// few hundred bytes, and a tree challenge of a file 64 times larger costs
// the same.
func TestAuditTraffic(t *testing.T) {
	small := measureAudit(t, 1)
	large := measureAudit(t, 64)
	t.Logf("stream bytes, both ways: light challenge %d; tree challenge %d (1 chunk), %d (64 chunks)",
		small.light, small.tree, large.tree)
	for _, n := range []int64{small.light, small.tree, large.tree} {
		if n <= 0 || n > 512 {
			t.Fatalf("an audit exchange of %d bytes; want 1..512", n)
		}
	}
	if d := large.tree - small.tree; d < -8 || d > 8 {
		t.Fatalf("tree challenge of 64 chunks costs %d bytes, of 1 chunk %d: it must not grow with the file",
			large.tree, small.tree)
	}
}

type auditCost struct{ light, tree int64 }

// measureAudit serves a file of n chunks and returns the stream bytes
// one light challenge and one tree challenge of it cost the owner.
func measureAudit(t *testing.T, n int) auditCost {
	t.Helper()
	tree := fileTree(t, n, 64<<10, 4, "traffic")
	b := auditBackend{&treeBackend{memBackend: newMemBackend()}}
	b.add(tree...)
	owner := newKey(t)
	root := tree[0].Cid
	if err := b.Pin(t.Context(), root, owner.Public().(ed25519.PublicKey), time.Now().Add(time.Hour)); err != nil {
		t.Fatal(err)
	}
	server := newHost(t)
	svc := protocol.New(server, protocol.WithGetBackend(b))
	svc.Start()
	t.Cleanup(func() { _ = svc.Close() })

	client, counter := countingClient(t, server)
	ctx, cancel := context.WithTimeout(t.Context(), 10*time.Second)
	defer cancel()

	before := counter.of(protocol.GetID)
	if _, err := protocol.Challenge(ctx, client, server.ID(), root, tree[len(tree)-1].Cid, protocol.Nonce()); err != nil {
		t.Fatal(err)
	}
	light := counter.of(protocol.GetID) - before
	before = counter.of(protocol.GetID)
	if _, err := protocol.TreeChallenge(ctx, client, server.ID(), owner, root, protocol.Nonce()); err != nil {
		t.Fatal(err)
	}
	return auditCost{light: light, tree: counter.of(protocol.GetID) - before}
}

// TestPeersTraffic measures what one peer exchange costs on the wire, in
// stream bytes both ways: 16 records each way, each of an Ed25519 peer
// with 4 addresses (TCP and QUIC, IPv4 and IPv6), as a gossip round of the
// default sample size sends. docs/wire.md ("/cas/peers/1.0") quotes it.
func TestPeersTraffic(t *testing.T) {
	server := newHost(t)
	b := &peersBackend{sample: realisticRecords(t, 16, 0)}
	st := startPeers(t, server, b)
	client, counter := countingClient(t, server)
	out := realisticRecords(t, 16, 100)
	got, err := protocol.ExchangePeers(t.Context(), client, server.ID(), out)
	if err != nil {
		t.Fatal(err)
	}
	if ms := b.merges(); len(got) != 16 || len(ms) != 1 || len(ms[0].recs) != 16 || len(st.of(client.ID())) != 0 {
		t.Fatalf("exchange of %d and %d records; want 16 each way and no strike", len(got), len(ms))
	}
	recBytes := 0
	for _, e := range out {
		recBytes += len(marshalEnv(t, e))
	}
	n := counter.of(protocol.PeersID)
	t.Logf("stream bytes, both ways: %d for 16+16 records of 4 addresses (a record marshals to %d bytes on average)",
		n, recBytes/len(out))
	// The records both ways, plus protocol negotiation, frame and field
	// headers: under 1 KiB more.
	if lo, hi := int64(2*recBytes), int64(2*recBytes+1<<10); n < lo || n > hi {
		t.Fatalf("an exchange of %d bytes; want %d..%d", n, lo, hi)
	}
}

// realisticRecords returns n records of fresh Ed25519 identities, each
// with 4 public-looking addresses numbered from base.
func realisticRecords(tb testing.TB, n, base int) []*record.Envelope {
	tb.Helper()
	out := make([]*record.Envelope, n)
	for i := range out {
		id := newIdentity(tb)
		k := base + i
		var addrs []ma.Multiaddr
		for _, s := range []string{
			"/ip4/198.51.%d.%d/tcp/4001", "/ip4/198.51.%d.%d/udp/4001/quic-v1",
			"/ip6/2001:db8::%x:%x/tcp/4001", "/ip6/2001:db8::%x:%x/udp/4001/quic-v1",
		} {
			a, err := ma.NewMultiaddr(fmt.Sprintf(s, k/256, k%256))
			if err != nil {
				tb.Fatal(err)
			}
			addrs = append(addrs, a)
		}
		out[i] = seal(tb, id.priv, id.id, peer.TimestampSeq(), addrs)
	}
	return out
}

// countingClient returns a host connected to server whose stream bytes,
// both ways, counter counts per protocol.
func countingClient(t testing.TB, server host.Host) (host.Host, *streamBytes) {
	t.Helper()
	counter := &streamBytes{}
	client, err := libp2p.New(libp2p.ListenAddrStrings("/ip4/127.0.0.1/tcp/0"), libp2p.BandwidthReporter(counter))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = client.Close() })
	if err := client.Connect(t.Context(), peer.AddrInfo{ID: server.ID(), Addrs: server.Addrs()}); err != nil {
		t.Fatal(err)
	}
	return client, counter
}
