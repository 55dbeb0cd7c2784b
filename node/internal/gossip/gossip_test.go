package gossip

import (
	"fmt"
	"net"
	"slices"
	"testing"
	"time"

	"github.com/libp2p/go-libp2p/core/host"
	"github.com/libp2p/go-libp2p/core/peer"
	"github.com/libp2p/go-libp2p/core/peerstore"
	"github.com/libp2p/go-libp2p/core/record"
	"github.com/stretchr/testify/require"

	"github.com/casd/casd/node/internal/peers"
	"github.com/casd/casd/protocol"
)

// chain starts n nodes with cfg, each connected to the next only.
func chain(t *testing.T, n int, cfg Config) []*node {
	t.Helper()
	nodes := make([]*node, n)
	for i := range nodes {
		nodes[i] = startNode(t, cfg)
		if i > 0 {
			connect(t, nodes[i-1].h, nodes[i].h)
		}
	}
	return nodes
}

// TestChainSpreadsByGossip: in a chain of six nodes that dial nobody
// (LowWater 0), gossip alone brings every node the signed record of every
// other, and the ones it is not connected to are noted as learned by
// gossip. (Merge not consuming the records, or not noting the source,
// fails it.)
func TestChainSpreadsByGossip(t *testing.T) {
	nodes := chain(t, 6, Config{Interval: 200 * time.Millisecond})
	eventually(t, func() bool {
		for _, a := range nodes {
			for _, b := range nodes {
				if a != b && !hasRecord(a.h, b.h.ID()) {
					return false
				}
			}
		}
		return true
	}, "not every node knows every other")
	for i, a := range nodes {
		require.LessOrEqual(t, len(a.h.Network().Peers()), 2, "node %d dialled with LowWater 0", i)
		for j, b := range nodes {
			if j < i-1 || j > i+1 {
				info, ok := a.src.Get(b.h.ID())
				require.True(t, ok, "node %d has no source for node %d", i, j)
				require.NotZero(t, info.Sources&peers.SourceGossip, "node %d learned node %d but not by gossip", i, j)
			}
		}
	}
}

// TestGossipDialsBelowLowWater: nodes below their low-water mark dial the
// peers gossip names, so a chain of five becomes fully connected. (Never
// queueing the dials fails it.)
func TestGossipDialsBelowLowWater(t *testing.T) {
	nodes := chain(t, 5, Config{Interval: 200 * time.Millisecond, LowWater: 8})
	eventually(t, func() bool {
		for _, a := range nodes {
			if len(a.h.Network().Peers()) < len(nodes)-1 {
				return false
			}
		}
		return true
	}, "chain not fully connected")
}

// TestMergeDropsStaleRecord: a record older (lower seq) than the one held
// is not merged and does not make its peer a gossip peer; a newer one is,
// and does; self's own record is never consumed. (Taking a refused record
// as accepted fails it.)
func TestMergeDropsStaleRecord(t *testing.T) {
	n := startNode(t, Config{Interval: time.Hour})
	cab := n.g.cab
	key := newKey(t)
	id, err := peer.IDFromPrivateKey(key)
	require.NoError(t, err)
	from := newHost(t).ID()

	held := signedRecord(t, key, 10, loopbackAddr(1))
	_, err = cab.ConsumePeerRecord(held, time.Hour) // as identify would
	require.NoError(t, err)

	n.g.Merge(from, []protocol.PeerRecord{verified(t, signedRecord(t, key, 5, loopbackAddr(2)))})
	require.True(t, cab.GetPeerRecord(id).Equal(held), "a stale record replaced the held one")
	_, known := n.src.Get(id)
	require.False(t, known, "a stale record noted its peer")

	newer := signedRecord(t, key, 11, loopbackAddr(3))
	n.g.Merge(from, []protocol.PeerRecord{verified(t, newer)})
	require.True(t, cab.GetPeerRecord(id).Equal(newer), "a newer record was not merged")
	info, _ := n.src.Get(id)
	require.NotZero(t, info.Sources&peers.SourceGossip)

	selfKey := n.h.Peerstore().PrivKey(n.h.ID())
	before := cab.GetPeerRecord(n.h.ID())
	n.g.Merge(from, []protocol.PeerRecord{verified(t, signedRecord(t, selfKey, ^uint64(0), loopbackAddr(4)))})
	require.True(t, cab.GetPeerRecord(n.h.ID()).Equal(before), "self's record was replaced")
}

// fakeBackend serves /cas/peers/1.0 with fixed records.
type fakeBackend struct{ sample []*record.Envelope }

func (f *fakeBackend) Allow(peer.ID) bool                   { return true }
func (f *fakeBackend) Merge(peer.ID, []protocol.PeerRecord) {}
func (f *fakeBackend) Sample(peer.ID) []*record.Envelope    { return f.sample }

// startFake serves b on a new host, closed at cleanup.
func startFake(t *testing.T, b protocol.PeersBackend) host.Host {
	t.Helper()
	h := newHost(t)
	svc := protocol.New(h, protocol.WithPeersBackend(b))
	svc.Start()
	t.Cleanup(func() { require.NoError(t, svc.Close()) })
	return h
}

// TestBadReplyStrikes: a reply holding a record with a broken signature,
// or a record of one peer signed by another, strikes the replying peer
// and merges nothing of it. (Not striking on a peer fault fails it.)
func TestBadReplyStrikes(t *testing.T) {
	victim, other := newKey(t), newKey(t)
	victimID, err := peer.IDFromPrivateKey(victim)
	require.NoError(t, err)

	good, err := signedRecord(t, victim, 1, loopbackAddr(1)).Marshal()
	require.NoError(t, err)
	tampered := slices.Clone(good)
	tampered[len(tampered)-1] ^= 0xff // the signature is the envelope's last field
	badSig, err := record.UnmarshalEnvelope(tampered)
	require.NoError(t, err)

	for name, env := range map[string]*record.Envelope{
		"bad signature":          badSig,
		"signed by another peer": sealRecord(t, other, victimID, 1, loopbackAddr(1)),
	} {
		t.Run(name, func(t *testing.T) {
			n := startNode(t, Config{Interval: 100 * time.Millisecond, Fanout: 1})
			fake := startFake(t, &fakeBackend{sample: []*record.Envelope{env}})
			connect(t, n.h, fake)
			eventually(t, func() bool { return n.strikes.count(fake.ID()) > 0 }, "%s not struck", fake.ID())
			require.False(t, hasRecord(n.h, victimID), "a bad record was merged")
		})
	}
}

// TestFloodRefused: a peer that runs exchanges back to back gets
// allowBurst of them, then is refused and struck by the serving node.
// (An Allow that always says yes fails it.)
func TestFloodRefused(t *testing.T) {
	n := startNode(t, Config{Interval: time.Hour})
	client := newHost(t)
	connect(t, client, n.h)
	ok := 0
	for range 3 * allowBurst {
		if _, err := protocol.ExchangePeers(exchangeCtx(t), client, n.h.ID(), nil); err == nil {
			ok++
		}
	}
	require.Equal(t, allowBurst, ok)
	require.Positive(t, n.strikes.count(client.ID()), "the flooding peer was not struck")
}

// hangingListener accepts TCP connections on loopback and never answers,
// so a dial to it waits for its deadline.
func hangingListener(t *testing.T) string {
	t.Helper()
	l, err := net.Listen("tcp", "127.0.0.1:0")
	require.NoError(t, err)
	done := make(chan struct{})
	go func() {
		defer close(done)
		var conns []net.Conn
		defer func() {
			for _, c := range conns {
				_ = c.Close()
			}
		}()
		for {
			c, err := l.Accept()
			if err != nil {
				return
			}
			conns = append(conns, c)
		}
	}()
	t.Cleanup(func() { _ = l.Close(); <-done })
	return fmt.Sprintf("/ip4/127.0.0.1/tcp/%d", l.Addr().(*net.TCPAddr).Port)
}

// TestCloseCancelsDials: Close returns promptly while dials of learned
// peers hang, and Merge after Close queues nothing (goleak checks that no
// goroutine is left). (Dialling without the Gossip's context fails it:
// Close then waits for the dial timeout.)
func TestCloseCancelsDials(t *testing.T) {
	addr := hangingListener(t)
	h := newHost(t)
	g, err := New(Config{Host: h, Interval: time.Hour, LowWater: 8})
	require.NoError(t, err)
	g.Start()
	recs := make([]protocol.PeerRecord, 0, 2*dialWorkers)
	for range 2 * dialWorkers {
		recs = append(recs, verified(t, signedRecord(t, newKey(t), 1, addr)))
	}
	g.Merge(h.ID(), recs)
	eventually(t, func() bool { return len(g.dials.queued) < dialWorkers }, "workers did not take the dials")

	start := time.Now()
	require.NoError(t, g.Close())
	require.Less(t, time.Since(start), time.Second, "Close waited for the dials to time out")

	g.Merge(h.ID(), []protocol.PeerRecord{verified(t, signedRecord(t, newKey(t), 1, addr))})
	require.Empty(t, g.dials.queued, "Merge after Close queued a dial")
}

// TestSampleBounds: a sample starts with self's record, holds every
// connected peer's before others', never the receiver's, never a record
// a receiver would refuse, and never more than SampleSize.
func TestSampleBounds(t *testing.T) {
	const size = 8
	n := startNode(t, Config{Interval: time.Hour, SampleSize: size})
	var conns []peer.ID
	for range 4 {
		h := newHost(t)
		connect(t, n.h, h)
		conns = append(conns, h.ID())
		own, ok := peerstore.GetCertifiedAddrBook(h.Peerstore())
		require.True(t, ok)
		_, err := n.g.cab.ConsumePeerRecord(own.GetPeerRecord(h.ID()), time.Hour) // as its gossip would
		require.NoError(t, err)
	}
	for i := range 20 {
		_, err := n.g.cab.ConsumePeerRecord(signedRecord(t, newKey(t), 1, loopbackAddr(i)), time.Hour)
		require.NoError(t, err)
	}
	many := make([]string, protocol.MaxRecordAddrs+1)
	for i := range many {
		many[i] = loopbackAddr(100 + i)
	}
	tooMany := signedRecord(t, newKey(t), 1, many...)
	_, err := n.g.cab.ConsumePeerRecord(tooMany, time.Hour)
	require.NoError(t, err)

	to := conns[0]
	for range 10 {
		s := ids(t, n.g.Sample(to))
		require.Len(t, s, size)
		require.Equal(t, n.h.ID(), s[0], "self's record is not first")
		require.NotContains(t, s, to)
		require.Subset(t, s[1:4], conns[1:], "connected peers are not first")
		require.Len(t, slices.Compact(slices.Sorted(slices.Values(s))), size, "a peer twice")
	}
	n.g.cfg.SampleSize = protocol.MaxPeerRecords
	all := ids(t, n.g.Sample(to))
	require.Len(t, all, 1+3+20, "not every sendable record")
	rec, err := tooMany.Record()
	require.NoError(t, err)
	require.NotContains(t, all, rec.(*peer.PeerRecord).PeerID, "a record with too many addresses")
}

func ids(t *testing.T, envs []*record.Envelope) []peer.ID {
	t.Helper()
	out := make([]peer.ID, len(envs))
	for i, env := range envs {
		r, err := env.Record()
		require.NoError(t, err)
		out[i] = r.(*peer.PeerRecord).PeerID
	}
	return out
}

// TestIdentifyKeepsRecords: the signed record a peer sends in identify is
// kept in the certified address book, with no exchange (Interval is an
// hour and the peer does not speak /cas/peers/1.0), so it is sampled and
// remembered. (Dropping it, as libp2p does, fails it.)
func TestIdentifyKeepsRecords(t *testing.T) {
	n := startNode(t, Config{Interval: time.Hour})
	other := newHost(t)
	connect(t, other, n.h)
	eventually(t, func() bool { return hasRecord(n.h, other.ID()) }, "identified peer's record not kept")
	require.Contains(t, ids(t, n.g.Sample("")), other.ID())
}

// TestChainOfTwelveLocalProfile measures gossip alone (no DHT) at the
// local profile's Interval of 2s on the chain of twelve: how long
// until every node holds the records of at least 9 of the 11 others, and
// of all of them, without dialling (LowWater 0), and, dialling below a
// low-water mark of 32, how long until every node is connected to at
// least 9 others. The bound is 90s.
func TestChainOfTwelveLocalProfile(t *testing.T) {
	if testing.Short() {
		t.Skip("a measurement of about a minute")
	}
	const size, want, bound = 12, 9, 90 * time.Second
	for _, lowWater := range []int{0, 32} {
		t.Run(fmt.Sprintf("LowWater %d", lowWater), func(t *testing.T) {
			start := time.Now()
			nodes := chain(t, size, Config{Interval: 2 * time.Second, LowWater: lowWater})
			least := func(count func(a, b *node) bool) int {
				m := size
				for _, a := range nodes {
					k := 0
					for _, b := range nodes {
						if a != b && count(a, b) {
							k++
						}
					}
					m = min(m, k)
				}
				return m
			}
			known := func(a, b *node) bool { return hasRecord(a.h, b.h.ID()) }
			linked := func(a, b *node) bool { return connected(a.h, b.h.ID()) }
			deadline := start.Add(bound)
			var at9, atAll time.Duration
			for time.Now().Before(deadline) && (at9 == 0 || atAll == 0) {
				k := least(known)
				if lowWater > 0 {
					k = least(linked)
				}
				if at9 == 0 && k >= want {
					at9 = time.Since(start)
				}
				if atAll == 0 && k == size-1 {
					atAll = time.Since(start)
				}
				time.Sleep(pollEvery)
			}
			what := "knows"
			if lowWater > 0 {
				what = "is connected to"
			}
			require.NotZero(t, at9, "after %s not every node %s %d others", bound, what, want)
			t.Logf("every node %s >= %d of %d others after %s, all of them after %s", what, want, size-1, at9, atAll)
		})
	}
}

// TestLifecycle: Start twice starts once, Close twice is safe, Start after
// Close starts nothing (goleak would see it), and New refuses a missing
// host or a negative setting.
func TestLifecycle(t *testing.T) {
	h := newHost(t)
	g, err := New(Config{Host: h, Interval: time.Hour})
	require.NoError(t, err)
	g.Start()
	g.Start()
	require.NoError(t, g.Close())
	require.NoError(t, g.Close())

	g, err = New(Config{Host: h})
	require.NoError(t, err)
	require.NoError(t, g.Close())
	g.Start()
	require.False(t, g.started, "Start after Close started")

	_, err = New(Config{})
	require.Error(t, err)
	_, err = New(Config{Host: h, Fanout: -1})
	require.Error(t, err)
	g, err = New(Config{Host: h, SampleSize: 1000})
	require.NoError(t, err)
	require.Equal(t, protocol.MaxPeerRecords, g.cfg.SampleSize)
	require.Equal(t, DefaultInterval, g.cfg.Interval)
	require.Equal(t, DefaultFanout, g.cfg.Fanout)
	require.NoError(t, g.Close())
}
