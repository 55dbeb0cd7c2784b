package gossip

import (
	"context"
	"crypto/rand"
	"fmt"
	"sync"
	"testing"
	"time"

	"github.com/libp2p/go-libp2p"
	"github.com/libp2p/go-libp2p/core/crypto"
	"github.com/libp2p/go-libp2p/core/host"
	"github.com/libp2p/go-libp2p/core/network"
	"github.com/libp2p/go-libp2p/core/peer"
	"github.com/libp2p/go-libp2p/core/peerstore"
	"github.com/libp2p/go-libp2p/core/record"
	ma "github.com/multiformats/go-multiaddr"
	"github.com/stretchr/testify/require"

	"github.com/casd/casd/node/internal/peers"
	"github.com/casd/casd/protocol"
)

// waitFor bounds every condition the tests poll for.
const waitFor = 30 * time.Second

// pollEvery is how often they poll it.
const pollEvery = 20 * time.Millisecond

func newKey(t testing.TB) crypto.PrivKey {
	t.Helper()
	k, _, err := crypto.GenerateEd25519Key(rand.Reader)
	require.NoError(t, err)
	return k
}

// newHost starts a libp2p host on a free loopback TCP port, closed at
// cleanup.
func newHost(t testing.TB) host.Host {
	t.Helper()
	h, err := libp2p.New(libp2p.Identity(newKey(t)), libp2p.ListenAddrStrings("/ip4/127.0.0.1/tcp/0"))
	require.NoError(t, err)
	t.Cleanup(func() { require.NoError(t, h.Close()) })
	return h
}

// strikeLog records strikes.
type strikeLog struct {
	mu sync.Mutex
	n  map[peer.ID]int
}

func (s *strikeLog) strike(p peer.ID, _ string) {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.n == nil {
		s.n = make(map[peer.ID]int)
	}
	s.n[p]++
}

func (s *strikeLog) count(p peer.ID) int {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.n[p]
}

// node is a host with a started Gossip serving /cas/peers/1.0.
type node struct {
	h       host.Host
	g       *Gossip
	src     *peers.Sources
	strikes *strikeLog // of the gossip's replies and of the service's handler
}

// startNode starts a Gossip with cfg (on a new host if cfg.Host is nil)
// and a protocol.Service serving it; both are closed at cleanup, the
// service first, before the host.
func startNode(t testing.TB, cfg Config) *node {
	t.Helper()
	if cfg.Host == nil {
		cfg.Host = newHost(t)
	}
	n := &node{h: cfg.Host, src: peers.NewSources(0, nil), strikes: &strikeLog{}}
	cfg.Sources, cfg.Strike = n.src, n.strikes.strike
	g, err := New(cfg)
	require.NoError(t, err)
	n.g = g
	svc := protocol.New(n.h, protocol.WithPeersBackend(g), protocol.WithStrikeFunc(n.strikes.strike))
	svc.Start()
	g.Start()
	t.Cleanup(func() {
		require.NoError(t, svc.Close())
		require.NoError(t, g.Close())
	})
	return n
}

func addrInfo(h host.Host) peer.AddrInfo { return peer.AddrInfo{ID: h.ID(), Addrs: h.Addrs()} }

func connect(t testing.TB, a, b host.Host) {
	t.Helper()
	require.NoError(t, a.Connect(t.Context(), addrInfo(b)))
}

// hasRecord reports whether h's certified address book holds p's record.
func hasRecord(h host.Host, p peer.ID) bool {
	cab, ok := peerstore.GetCertifiedAddrBook(h.Peerstore())
	return ok && cab.GetPeerRecord(p) != nil
}

func connected(h host.Host, p peer.ID) bool {
	return h.Network().Connectedness(p) == network.Connected
}

// signedRecord seals a peer record of key's peer with seq and addrs.
func signedRecord(t testing.TB, key crypto.PrivKey, seq uint64, addrs ...string) *record.Envelope {
	t.Helper()
	id, err := peer.IDFromPrivateKey(key)
	require.NoError(t, err)
	return sealRecord(t, key, id, seq, addrs...)
}

// sealRecord seals a record naming id with key, whatever id is.
func sealRecord(t testing.TB, key crypto.PrivKey, id peer.ID, seq uint64, addrs ...string) *record.Envelope {
	t.Helper()
	rec := &peer.PeerRecord{PeerID: id, Seq: seq}
	for _, s := range addrs {
		rec.Addrs = append(rec.Addrs, ma.StringCast(s))
	}
	env, err := record.Seal(rec, key)
	require.NoError(t, err)
	return env
}

// verified returns env as protocol.DecodePeerRecords passes it to Merge.
func verified(t testing.TB, env *record.Envelope) protocol.PeerRecord {
	t.Helper()
	raw, err := env.Marshal()
	require.NoError(t, err)
	recs, err := protocol.DecodePeerRecords([][]byte{raw}, "")
	require.NoError(t, err)
	require.Len(t, recs, 1)
	return recs[0]
}

func loopbackAddr(i int) string { return fmt.Sprintf("/ip4/127.0.0.1/tcp/%d", 20000+i) }

// eventually polls cond until it holds or waitFor passes.
func eventually(t testing.TB, cond func() bool, format string, args ...any) {
	t.Helper()
	deadline := time.Now().Add(waitFor)
	for !cond() {
		if time.Now().After(deadline) {
			t.Fatalf("after %s: "+format, append([]any{waitFor}, args...)...)
		}
		time.Sleep(pollEvery)
	}
}

// exchangeCtx bounds a test's direct exchange.
func exchangeCtx(t testing.TB) context.Context {
	ctx, cancel := context.WithTimeout(t.Context(), protocol.PeersTimeout)
	t.Cleanup(cancel)
	return ctx
}
