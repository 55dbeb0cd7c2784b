package protocol_test

import (
	"context"
	"crypto/ed25519"
	"sync"
	"testing"
	"time"

	"github.com/ipfs/go-cid"
	"github.com/libp2p/go-libp2p"
	"github.com/libp2p/go-libp2p/core/metrics"
	"github.com/libp2p/go-libp2p/core/peer"
	p2pprotocol "github.com/libp2p/go-libp2p/core/protocol"

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

	counter := &streamBytes{}
	client, err := libp2p.New(libp2p.ListenAddrStrings("/ip4/127.0.0.1/tcp/0"), libp2p.BandwidthReporter(counter))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = client.Close() })
	if err := client.Connect(t.Context(), peer.AddrInfo{ID: server.ID(), Addrs: server.Addrs()}); err != nil {
		t.Fatal(err)
	}
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
