package replicate

import (
	"bytes"
	"context"
	"crypto/ed25519"
	"crypto/rand"
	"encoding/hex"
	"errors"
	"path/filepath"
	"sync"
	"testing"
	"time"

	"github.com/ipfs/go-cid"
	"github.com/libp2p/go-libp2p"
	"github.com/libp2p/go-libp2p/core/host"
	"github.com/libp2p/go-libp2p/core/network"
	"github.com/libp2p/go-libp2p/core/peer"
	"github.com/libp2p/go-msgio"
	"github.com/stretchr/testify/require"

	"github.com/casd/casd/blockstore"
	"github.com/casd/casd/crypt"
	"github.com/casd/casd/dag"
	"github.com/casd/casd/node/internal/peers"
	"github.com/casd/casd/protocol"
	"github.com/casd/casd/protocol/pb"
)

// newHost starts a libp2p host on loopback TCP, closed at cleanup.
func newHost(t *testing.T) host.Host {
	t.Helper()
	h, err := libp2p.New(libp2p.ListenAddrStrings("/ip4/127.0.0.1/tcp/0"))
	require.NoError(t, err)
	t.Cleanup(func() { _ = h.Close() })
	return h
}

func openStore(t *testing.T) *blockstore.Store {
	t.Helper()
	dir := t.TempDir()
	s, err := blockstore.Open(filepath.Join(dir, "blocks"), filepath.Join(dir, "meta.db"))
	require.NoError(t, err)
	t.Cleanup(func() { require.NoError(t, s.Close()) })
	return s
}

// honest is a peer that stores what it is offered, pins complete roots and
// answers challenges, like a casd node.
type honest struct{ store *blockstore.Store }

var (
	_ protocol.GetBackend       = honest{}
	_ protocol.StoreBackend     = honest{}
	_ protocol.ChallengeBackend = honest{}
)

func (h honest) Get(ctx context.Context, c cid.Cid) ([]byte, error) { return h.store.Get(ctx, c) }

func (h honest) Complete(ctx context.Context, root cid.Cid) (bool, error) {
	err := dag.Walk(ctx, h.store, root, func(c cid.Cid, _ byte) error {
		ok, err := h.store.Has(ctx, c)
		if err == nil && !ok {
			err = blockstore.ErrNotFound
		}
		return err
	})
	if errors.Is(err, blockstore.ErrNotFound) {
		return false, nil
	}
	return err == nil, err
}

func (h honest) Pinned(ctx context.Context, root cid.Cid) (bool, error) {
	pins, err := h.store.PinsOf(ctx, root)
	return len(pins) > 0, err
}

func (honest) Reserve(context.Context, ed25519.PublicKey, cid.Cid, int64) (func(), error) {
	return func() {}, nil
}

func (h honest) PutMany(ctx context.Context, bs []blockstore.Block) error {
	return h.store.PutMany(ctx, bs)
}

func (h honest) Pin(ctx context.Context, root cid.Cid, owner ed25519.PublicKey, _ time.Time) error {
	return h.store.Pin(ctx, root, protocol.ReplicaPinPrefix+hex.EncodeToString(owner))
}

func (h honest) Renew(ctx context.Context, owner ed25519.PublicKey, root cid.Cid, _ time.Time) error {
	pins, err := h.store.PinsOf(ctx, root)
	for _, p := range pins {
		if p.Reason == protocol.ReplicaPinPrefix+hex.EncodeToString(owner) {
			return err
		}
	}
	return errors.Join(err, protocol.ErrNotHeld)
}

func (h honest) Remove(ctx context.Context, owner ed25519.PublicKey, root cid.Cid) error {
	return h.store.Unpin(ctx, root, protocol.ReplicaPinPrefix+hex.EncodeToString(owner))
}

func startHonest(t *testing.T) (host.Host, *blockstore.Store) {
	t.Helper()
	h, st := newHost(t), openStore(t)
	svc := protocol.New(h, protocol.WithGetBackend(honest{st}), protocol.WithStoreBackend(honest{st}))
	svc.Start()
	t.Cleanup(func() { _ = svc.Close() })
	return h, st
}

// lie is how a liar answers a challenge; it gets the blocks it was sent.
type lie func(ch *pb.Challenge, self peer.ID, got map[cid.Cid][]byte) pb.Message

// startLiar starts a peer that holds nothing it can prove: it answers
// root_complete = claimHolds to every GetRequest, accepts every store
// offer and acknowledges it complete, and answers every challenge with
// answer.
func startLiar(t *testing.T, claimHolds bool, answer lie) host.Host {
	t.Helper()
	h := newHost(t)
	var (
		mu  sync.Mutex // guards got
		got = map[cid.Cid][]byte{}
	)
	h.SetStreamHandler(protocol.GetID, func(s network.Stream) {
		defer s.Close()
		r, w := msgio.NewVarintReaderSize(s, protocol.MaxMessageSize), msgio.NewVarintWriter(s)
		for m := range frames(r) {
			var out pb.Message = &pb.Done{RootComplete: claimHolds}
			if ch, ok := m.(*pb.Challenge); ok {
				mu.Lock()
				out = answer(ch, h.ID(), got)
				mu.Unlock()
			}
			if w.WriteMsg(pb.Marshal(out)) != nil {
				return
			}
		}
	})
	h.SetStreamHandler(protocol.StoreID, func(s network.Stream) {
		defer s.Close()
		r, w := msgio.NewVarintReaderSize(s, protocol.MaxMessageSize), msgio.NewVarintWriter(s)
		n := uint64(0)
		for m := range frames(r) {
			switch m := m.(type) {
			case *pb.StoreOffer:
				_ = w.WriteMsg(pb.Marshal(&pb.StoreReply{Accept: true}))
			case *pb.Block:
				n++
				mu.Lock()
				got[m.Cid] = bytes.Clone(m.Data)
				mu.Unlock()
			case *pb.StoreEnd:
				_ = w.WriteMsg(pb.Marshal(&pb.StoreAck{Stored: n, Complete: true}))
				return
			}
		}
	})
	return h
}

// frames yields the messages read from r until an error.
func frames(r msgio.Reader) func(func(pb.Message) bool) {
	return func(yield func(pb.Message) bool) {
		for {
			b, err := r.ReadMsg()
			if err != nil {
				return
			}
			m, err := pb.Unmarshal(b)
			if err != nil || !yield(m) {
				return
			}
		}
	}
}

// The lies of the attack.
var (
	// sayMissing: the peer says it lacks the block.
	sayMissing lie = func(ch *pb.Challenge, _ peer.ID, _ map[cid.Cid][]byte) pb.Message {
		return &pb.Missing{Cid: ch.Cid}
	}
	// guess: a proof made up without the block.
	guess lie = func(*pb.Challenge, peer.ID, map[cid.Cid][]byte) pb.Message {
		return &pb.Proof{Proof: protocol.Nonce()}
	}
	// staleNonce: the peer kept the blocks sent to it (in memory, where
	// they will not survive) but answers with a proof over another nonce,
	// as a peer replaying an old proof would.
	staleNonce lie = func(ch *pb.Challenge, self peer.ID, got map[cid.Cid][]byte) pb.Message {
		return &pb.Proof{Proof: protocol.ProofOf(self, [pb.NonceSize]byte{1}, ch.Cid, got[ch.Cid])}
	}
)

// struck records strikes.
type struck struct {
	mu sync.Mutex // guards n
	n  map[peer.ID]int
}

func (s *struck) strike(p peer.ID, _ string) {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.n == nil {
		s.n = map[peer.ID]int{}
	}
	s.n[p]++
}

func (s *struck) of(p peer.ID) int {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.n[p]
}

// owner is a node that added a file and places it.
type owner struct {
	h       host.Host
	store   *blockstore.Store
	root    cid.Cid
	strikes *struck
	proven  *peers.Proven
}

// newOwner adds a file of 5 chunks to a fresh store, pinned.
func newOwner(t *testing.T) *owner {
	t.Helper()
	o := &owner{h: newHost(t), store: openStore(t), strikes: &struck{}, proven: peers.NewProven()}
	var s crypt.Secrets
	_, _ = rand.Read(s.Master[:])
	_, _ = rand.Read(s.Convergence[:])
	data := make([]byte, 4*dag.MinChunkSize+1000)
	_, _ = rand.Read(data)
	added, err := dag.Add(t.Context(), bytes.NewReader(data), dag.Meta{Name: "f"}, &s, o.store,
		dag.AddOptions{ChunkSize: dag.MinChunkSize})
	require.NoError(t, err)
	require.NoError(t, o.store.Pin(t.Context(), added.Root, "owner"))
	o.root = added.Root
	return o
}

// replicator returns a replicator of goal over candidates, each connected.
func (o *owner) replicator(t *testing.T, goal int, candidates ...host.Host) *Replicator {
	t.Helper()
	var ids closest
	for _, h := range candidates {
		require.NoError(t, o.h.Connect(t.Context(), peer.AddrInfo{ID: h.ID(), Addrs: h.Addrs()}))
		ids = append(ids, h.ID())
	}
	_, key, err := ed25519.GenerateKey(rand.Reader)
	require.NoError(t, err)
	audit := NewAuditor(AuditorConfig{Host: o.h, Local: o.store, Strike: o.strikes.strike, Proven: o.proven})
	r, err := New(t.Context(), Config{
		Host: o.h, Closest: ids, Store: o.store, Owner: key, Goal: goal,
		Hints: peers.NewHints(), Holds: holds(o.h), Audit: audit, Proven: o.proven,
		Announce: func(cid.Cid) {},
	})
	require.NoError(t, err)
	return r
}

func holds(h host.Host) func(context.Context, peer.ID, cid.Cid, time.Duration) bool {
	return func(ctx context.Context, p peer.ID, root cid.Cid, timeout time.Duration) bool {
		ctx, cancel := context.WithTimeout(ctx, timeout)
		defer cancel()
		ok, err := protocol.HasRoot(ctx, h, p, root)
		return ok && err == nil
	}
}

// TestLiarsNotCounted mounts hostile peers point 5: peers that say they
// already hold the file, or acknowledge every store complete, without
// holding anything they can prove. Placement of goal 3 over 2 honest peers
// and 4 liars counts the 2 honest peers only (the file stays pending),
// strikes each liar once and remembers only the honest peers as proven.
func TestLiarsNotCounted(t *testing.T) {
	o := newOwner(t)
	h1, s1 := startHonest(t)
	h2, s2 := startHonest(t)
	liars := []host.Host{
		startLiar(t, true, sayMissing), // "I hold it", then Missing
		startLiar(t, true, guess),      // "I hold it", then a made-up proof
		startLiar(t, false, guess),     // stores into thin air, acks complete
		startLiar(t, false, staleNonce),
	}
	r := o.replicator(t, 3, append([]host.Host{h1, h2}, liars...)...)

	got, err := r.Replicate(t.Context(), o.root)
	require.NoError(t, err)
	require.ElementsMatch(t, []string{h1.ID().String(), h2.ID().String()}, got)
	require.Equal(t, []cid.Cid{o.root}, r.Pending(), "short of its goal: pending")
	for i, l := range liars {
		require.Equal(t, 1, o.strikes.of(l.ID()), "liar %d strikes", i)
		require.False(t, o.proven.Has(l.ID()), "liar %d proven", i)
	}
	for _, h := range []host.Host{h1, h2} {
		require.Zero(t, o.strikes.of(h.ID()))
		require.True(t, o.proven.Has(h.ID()))
	}
	for _, s := range []*blockstore.Store{s1, s2} {
		pins, err := s.PinsOf(t.Context(), o.root)
		require.NoError(t, err)
		require.Len(t, pins, 1, "the honest peers hold the file pinned")
	}

	// A retry asks the honest peers again: they say they hold it and
	// prove it, without a transfer.
	got, err = r.Replicate(t.Context(), o.root)
	require.NoError(t, err)
	require.ElementsMatch(t, []string{h1.ID().String(), h2.ID().String()}, got)
}
