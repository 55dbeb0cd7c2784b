package node

import (
	"bytes"
	"context"
	"crypto/rand"
	"errors"
	"io"
	"iter"
	"path/filepath"
	"slices"
	"testing"
	"time"

	"github.com/ipfs/go-cid"
	"github.com/libp2p/go-libp2p/core/network"
	"github.com/libp2p/go-libp2p/core/peer"
	"github.com/libp2p/go-libp2p/p2p/protocol/ping"
	"github.com/stretchr/testify/require"

	"github.com/casd/casd/blockstore"
	"github.com/casd/casd/config"
	"github.com/casd/casd/core"
	"github.com/casd/casd/dag"
	"github.com/casd/casd/node/internal/fetch"
	"github.com/casd/casd/node/internal/peers"
	"github.com/casd/casd/protocol"
)

// lyingBackend serves the blocks of a real store with one byte flipped.
type lyingBackend struct{ store *blockstore.Store }

func (b lyingBackend) Get(ctx context.Context, c cid.Cid) ([]byte, error) {
	data, err := b.store.Get(ctx, c)
	if err != nil {
		return nil, err
	}
	data[len(data)/2] ^= 0x40
	return data, nil
}

func (b lyingBackend) Complete(context.Context, cid.Cid) (bool, error) { return true, nil }

func startTestNode(t *testing.T, factor int) *Node {
	t.Helper()
	repo, err := config.Init(filepath.Join(t.TempDir(), "repo"), config.InitOptions{Profile: config.ProfileLocal})
	require.NoError(t, err)
	cfg := repo.Config.Clone()
	cfg.Replication.Factor = factor
	require.NoError(t, repo.SaveConfig(cfg))
	n, err := Open(t.Context(), repo, Options{Online: true})
	require.NoError(t, err)
	t.Cleanup(func() { require.NoError(t, n.Close()) })
	return n
}

func connect(t *testing.T, from, to *Node) {
	t.Helper()
	require.NoError(t, from.net.stack.Host.Connect(t.Context(), peer.AddrInfo{ID: to.net.stack.Host.ID(), Addrs: to.net.stack.Host.Addrs()}))
}

// TestFetcherDropsLyingPeer: a peer that serves wrong blocks is dropped for
// the file and struck, and the blocks come from an honest peer instead.
func TestFetcherDropsLyingPeer(t *testing.T) {
	honest := startTestNode(t, 0)
	reader := startTestNode(t, 0)
	liar := startTestNode(t, 0)
	data := make([]byte, 3<<20+17)
	_, err := rand.Read(data)
	require.NoError(t, err)
	res, err := honest.Add(t.Context(), bytes.NewReader(data), core.AddOptions{Name: "x"})
	require.NoError(t, err)

	// The liar holds a copy of every block and serves it corrupted.
	root, err := cid.Decode(res.Cid)
	require.NoError(t, err)
	for b, err := range treeBlocks(t, honest, root) {
		require.NoError(t, err)
		require.NoError(t, liar.store.Put(t.Context(), b))
	}
	require.NoError(t, liar.net.proto.Close())
	lying := protocol.New(liar.net.stack.Host, protocol.WithGetBackend(lyingBackend{liar.store}))
	lying.Start()
	t.Cleanup(func() { require.NoError(t, lying.Close()) })

	connect(t, reader, honest)
	connect(t, reader, liar)
	// Sources set by hand, the liar first, and no lookup.
	f, sources := fetcherOf(reader, root, liar, honest)

	c, err := dag.ParseCapability(res.Capability)
	require.NoError(t, err)
	file, err := dag.OpenFile(t.Context(), f, root, c.Key)
	require.NoError(t, err)
	var out bytes.Buffer
	_, err = file.WriteTo(t.Context(), &out, f, dag.ReadOptions{Window: 4})
	require.NoError(t, err)
	require.True(t, bytes.Equal(data, out.Bytes()), "reader accepted a wrong block")

	require.True(t, sources.Dropped(liar.net.stack.Host.ID()), "the liar was not dropped")
	require.False(t, sources.Dropped(honest.net.stack.Host.ID()))
	strikes := reader.net.strikes.Count(liar.net.stack.Host.ID())
	require.GreaterOrEqual(t, strikes, 1)
	require.False(t, slices.Contains(reader.net.stack.Host.Network().Peers(), liar.net.stack.Host.ID()) && strikes >= peers.MaxStrikes,
		"a peer past the strike limit stays connected")
}

// TestRetryReachesGoalWhenPeersAppear: an add that found too few peers is
// retried, and reaches its goal once enough peers are there.
func TestRetryReachesGoalWhenPeersAppear(t *testing.T) {
	owner := startTestNode(t, 3)
	first := startTestNode(t, 0)
	connect(t, owner, first)
	res, err := owner.Add(t.Context(), bytes.NewReader([]byte("too few peers")), core.AddOptions{Name: "x"})
	require.NoError(t, err)
	require.Len(t, res.Replicas, 1)
	root, err := cid.Decode(res.Cid)
	require.NoError(t, err)
	require.Contains(t, owner.net.repl.Pending(), root, "an under-replicated root must be retried")

	for range 2 {
		connect(t, owner, startTestNode(t, 0))
	}
	owner.net.repl.RetryPending(t.Context())

	st, err := owner.Status(t.Context(), res.Cid)
	require.NoError(t, err)
	require.Len(t, st.Replicas, 3)
	require.Len(t, owner.net.hints.Of(root), 3, "the owner must remember its replicas")
	require.NotContains(t, owner.net.repl.Pending(), root, "a root at its goal is no longer retried")
}

// TestFetcherAbandonsSilentPeer: a source that takes a request and then
// goes silent (no answer, no pong), like a crashed peer behind a QUIC
// connection that still looks open, is abandoned well before the
// protocol's 30 s idle timeout, and the block comes from another peer.
func TestFetcherAbandonsSilentPeer(t *testing.T) {
	honest := startTestNode(t, 0)
	reader := startTestNode(t, 0)
	silent := startTestNode(t, 0)
	res, err := honest.Add(t.Context(), bytes.NewReader([]byte("who answers?")), core.AddOptions{Name: "x"})
	require.NoError(t, err)
	root, err := cid.Decode(res.Cid)
	require.NoError(t, err)

	require.NoError(t, silent.net.proto.Close())
	silent.net.stack.Host.RemoveStreamHandler(ping.ID)
	silent.net.stack.Host.SetStreamHandler(protocol.GetID, func(s network.Stream) {
		_, _ = io.Copy(io.Discard, s) // swallow the request; never answer
		_ = s.Reset()
	})
	connect(t, reader, honest)
	connect(t, reader, silent)

	f, sources := fetcherOf(reader, root, silent, honest)
	require.Equal(t, "who answers?", readWithin(t, f, root, res.Capability, 20*time.Second)) // under the idle timeout
	require.True(t, sources.Parked(silent.net.stack.Host.ID()), "the silent peer was not parked")
}

// TestFetcherRetriesSilentOnlySource: the only holder of a file misses
// the pings of a first request (a loaded peer can), then answers again.
// It is parked, not given up on: the read asks it again once the other
// sources (here, one that lacks the file) have failed, and completes.
func TestFetcherRetriesSilentOnlySource(t *testing.T) {
	holder := startTestNode(t, 0)
	empty := startTestNode(t, 0)
	reader := startTestNode(t, 0)
	res, err := holder.Add(t.Context(), bytes.NewReader([]byte("slow but there")), core.AddOptions{Name: "x"})
	require.NoError(t, err)
	root, err := cid.Decode(res.Cid)
	require.NoError(t, err)

	h := holder.net.stack.Host
	require.NoError(t, holder.net.proto.Close())
	h.RemoveStreamHandler(ping.ID)
	revived := protocol.New(h, protocol.WithGetBackend(getBackend{holder.store}))
	t.Cleanup(func() { require.NoError(t, revived.Close()) })
	h.SetStreamHandler(protocol.GetID, func(s network.Stream) {
		_, _ = io.Copy(io.Discard, s) // the first request: swallowed, no pong
		_ = s.Reset()
		ping.NewPingService(h) // answers pings again
		revived.Start()        // serves the next requests
	})
	connect(t, reader, holder)
	connect(t, reader, empty)

	f, sources := fetcherOf(reader, root, holder, empty)
	require.Equal(t, "slow but there", readWithin(t, f, root, res.Capability, 25*time.Second)) // under the idle timeout
	require.False(t, sources.Dropped(h.ID()), "the slow holder was dropped")
}

// TestStartAnnouncesHeldRoots: a file added offline is announced when the
// node goes online, so that peers find it as a provider.
func TestStartAnnouncesHeldRoots(t *testing.T) {
	repo, err := config.Init(filepath.Join(t.TempDir(), "repo"), config.InitOptions{Profile: config.ProfileLocal})
	require.NoError(t, err)
	offline, err := Open(t.Context(), repo, Options{})
	require.NoError(t, err)
	res, err := offline.Add(t.Context(), bytes.NewReader([]byte("added offline")), core.AddOptions{Name: "x"})
	require.NoError(t, err)
	require.NoError(t, offline.Close())
	root, err := cid.Decode(res.Cid)
	require.NoError(t, err)

	peerNode := startTestNode(t, 0)
	cfg := repo.Config.Clone()
	id, err := peerNode.ID(t.Context())
	require.NoError(t, err)
	cfg.Bootstrap = id.Addrs[:1]
	require.NoError(t, repo.SaveConfig(cfg))
	n, err := Open(t.Context(), repo, Options{Online: true})
	require.NoError(t, err)
	t.Cleanup(func() { require.NoError(t, n.Close()) })

	require.Eventually(t, func() bool {
		provs, err := peerNode.net.stack.DHT.ProviderStore().GetProviders(t.Context(), root.Hash())
		return err == nil && slices.ContainsFunc(provs, func(ai peer.AddrInfo) bool { return ai.ID == n.net.stack.Host.ID() })
	}, 30*time.Second, 20*time.Millisecond, "the peer never learnt that the node provides %s", root)
}

// TestPendingSurvivesRestart: a file below its replication goal is still
// retried after the daemon restarts, and stops being retried at its goal.
func TestPendingSurvivesRestart(t *testing.T) {
	repo, err := config.Init(filepath.Join(t.TempDir(), "repo"), config.InitOptions{Profile: config.ProfileLocal})
	require.NoError(t, err)
	n, err := Open(t.Context(), repo, Options{Online: true})
	require.NoError(t, err)
	res, err := n.Add(t.Context(), bytes.NewReader([]byte("nobody to hold me")), core.AddOptions{Name: "x"})
	require.NoError(t, err)
	require.Empty(t, res.Replicas)
	require.NoError(t, n.Close())

	n, err = Open(t.Context(), repo, Options{Online: true})
	require.NoError(t, err)
	t.Cleanup(func() { require.NoError(t, n.Close()) })
	root, err := cid.Decode(res.Cid)
	require.NoError(t, err)
	isPending := func() bool { return slices.Contains(n.net.repl.Pending(), root) }
	require.True(t, isPending(), "the restarted node forgot the pending replication")

	for range 3 {
		connect(t, n, startTestNode(t, 0))
	}
	n.net.repl.RetryPending(t.Context())
	require.False(t, isPending())
	pins, err := n.store.PinsOf(t.Context(), root)
	require.NoError(t, err)
	require.Len(t, pins, 1)
	require.Equal(t, PinOwner, pins[0].Reason)
	ls, err := n.Ls(t.Context())
	require.NoError(t, err)
	require.Len(t, ls, 1)
}

// TestReadAsksKnownReplicasFirst: a peer known to hold a root (a hint) is
// a source even when no DHT provider and no connection leads to it.
func TestReadAsksKnownReplicasFirst(t *testing.T) {
	owner := startTestNode(t, 0)
	holder := startTestNode(t, 0)
	reader := startTestNode(t, 0) // connected to nobody: its DHT is empty
	res, err := owner.Add(t.Context(), bytes.NewReader([]byte("ask the replica")), core.AddOptions{Name: "x"})
	require.NoError(t, err)
	root, err := cid.Decode(res.Cid)
	require.NoError(t, err)
	// The holder has the file pinned, but never announced it.
	for b, err := range treeBlocks(t, owner, root) {
		require.NoError(t, err)
		require.NoError(t, holder.store.Put(t.Context(), b))
	}
	require.NoError(t, holder.store.Pin(t.Context(), root, "replica:test"))

	_, _, err = catInternal(t, reader, res.Capability)
	require.Error(t, err, "without a hint the reader has no way to the holder")

	reader.net.stack.Host.Peerstore().AddAddrs(holder.net.stack.Host.ID(), holder.net.stack.Host.Addrs(), time.Hour)
	reader.net.hints.Add(root, holder.net.stack.Host.ID())
	got, _, err := catInternal(t, reader, res.Capability)
	require.NoError(t, err)
	require.Equal(t, "ask the replica", string(got))
}

func catInternal(t *testing.T, n *Node, ref string) ([]byte, core.FileInfo, error) {
	t.Helper()
	var buf bytes.Buffer
	var info core.FileInfo
	err := n.Cat(t.Context(), ref, func(fi core.FileInfo) (io.Writer, error) { info = fi; return &buf, nil })
	return buf.Bytes(), info, err
}

// fetcherOf returns a fetcher of root for n whose sources are the given
// nodes, in order, and nothing else.
func fetcherOf(n *Node, root cid.Cid, from ...*Node) (*fetch.Fetcher, *fetch.Sources) {
	s := fetch.NewSources()
	for _, m := range from {
		s.Add(m.net.stack.Host.ID(), true)
	}
	s.Seal()
	return n.net.fetch.OpenSources(root, s), s
}

// readWithin reads the file of capability through f, within d.
func readWithin(t *testing.T, f *fetch.Fetcher, root cid.Cid, capability string, d time.Duration) string {
	t.Helper()
	ctx, cancel := context.WithTimeout(t.Context(), d)
	defer cancel()
	c, err := dag.ParseCapability(capability)
	require.NoError(t, err)
	file, err := dag.OpenFile(ctx, f, root, c.Key)
	require.NoError(t, err)
	var out bytes.Buffer
	_, err = file.WriteTo(ctx, &out, f, dag.ReadOptions{})
	require.NoError(t, err)
	return out.String()
}

// treeBlocks yields every block of a file held by n, root first.
func treeBlocks(t *testing.T, n *Node, root cid.Cid) iter.Seq2[blockstore.Block, error] {
	t.Helper()
	return func(yield func(blockstore.Block, error) bool) {
		err := dag.Walk(t.Context(), n.store, root, func(c cid.Cid, _ byte) error {
			data, err := n.store.Get(t.Context(), c)
			if err == nil && !yield(blockstore.Block{Cid: c, Data: data}, nil) {
				return errStopWalk
			}
			return err
		})
		if err != nil && !errors.Is(err, errStopWalk) {
			yield(blockstore.Block{}, err)
		}
	}
}

var errStopWalk = errors.New("stop")

// claimingBackend says it holds every root whole and then has no block.
type claimingBackend struct{}

func (claimingBackend) Get(context.Context, cid.Cid) ([]byte, error) {
	return nil, blockstore.ErrNotFound
}
func (claimingBackend) Complete(context.Context, cid.Cid) (bool, error) { return true, nil }

// TestLiarsDoNotBlockReads: eight peers claim to hold a file whole and then
// answer Missing for every block; one honest holder exists. The read gets
// every byte, and every liar it asked is dropped and struck.
func TestLiarsDoNotBlockReads(t *testing.T) {
	honest := startTestNode(t, 0)
	reader := startTestNode(t, 0)
	data := make([]byte, 5<<20+3)
	_, err := rand.Read(data)
	require.NoError(t, err)
	res, err := honest.Add(t.Context(), bytes.NewReader(data), core.AddOptions{Name: "x"})
	require.NoError(t, err)
	root, err := cid.Decode(res.Cid)
	require.NoError(t, err)
	var liars []*Node
	for range 8 {
		liar := startTestNode(t, 0)
		require.NoError(t, liar.net.proto.Close())
		lying := protocol.New(liar.net.stack.Host, protocol.WithGetBackend(claimingBackend{}))
		lying.Start()
		t.Cleanup(func() { require.NoError(t, lying.Close()) })
		connect(t, reader, liar)
		reader.net.hints.Add(root, liar.net.stack.Host.ID())
		liars = append(liars, liar)
	}
	connect(t, reader, honest)
	reader.net.hints.Add(root, honest.net.stack.Host.ID())

	got, _, err := catInternal(t, reader, res.Capability)
	require.NoError(t, err)
	require.True(t, bytes.Equal(data, got), "read back %d bytes, want the %d added", len(got), len(data))
	struck := 0
	for _, l := range liars {
		struck += reader.net.strikes.Count(l.net.stack.Host.ID())
	}
	require.Positive(t, struck, "no liar was struck")
}

// TestStruckOutPeerCannotRedial: a peer that reaches the strike limit is
// disconnected and then refused both ways, instead of redialling at once.
func TestStruckOutPeerCannotRedial(t *testing.T) {
	victim := startTestNode(t, 0)
	attacker := startTestNode(t, 0)
	other := startTestNode(t, 0)
	res, err := victim.Add(t.Context(), bytes.NewReader([]byte("held")), core.AddOptions{Name: "x"})
	require.NoError(t, err)
	root, err := cid.Decode(res.Cid)
	require.NoError(t, err)
	connect(t, attacker, victim)
	held, err := protocol.HasRoot(t.Context(), attacker.net.stack.Host, victim.net.stack.Host.ID(), root)
	require.NoError(t, err)
	require.True(t, held)
	bad := attacker.net.stack.Host.ID()
	for range peers.MaxStrikes {
		victim.net.strike(bad, "test")
	}
	require.NotEqual(t, network.Connected, victim.net.stack.Host.Network().Connectedness(bad))
	require.True(t, victim.net.bans.Banned(bad))

	// The attacker's dial may seem to succeed on its side (the victim
	// refuses once the handshake names the peer), but no request gets
	// through.
	v := peer.AddrInfo{ID: victim.net.stack.Host.ID(), Addrs: victim.net.stack.Host.Addrs()}
	attacker.net.stack.Host.Peerstore().AddAddrs(v.ID, v.Addrs, time.Hour)
	_, err = protocol.HasRoot(t.Context(), attacker.net.stack.Host, v.ID, root)
	require.Error(t, err, "a banned peer's request got through")
	a := peer.AddrInfo{ID: bad, Addrs: attacker.net.stack.Host.Addrs()}
	require.Error(t, victim.net.stack.Host.Connect(t.Context(), a), "the victim dialled a banned peer")
	connect(t, other, victim) // others still get in
}
