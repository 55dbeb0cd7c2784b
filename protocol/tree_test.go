package protocol_test

import (
	"context"
	"crypto/ed25519"
	"crypto/sha256"
	"encoding/binary"
	"errors"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/ipfs/go-cid"
	"github.com/libp2p/go-libp2p/core/host"

	"github.com/casd/casd/blockstore"
	"github.com/casd/casd/dag"
	"github.com/casd/casd/dag/dagtest"
	"github.com/casd/casd/protocol"
	"github.com/casd/casd/protocol/pb"
)

// treeBackend is a memBackend that answers tree challenges: HeldFor is
// true for the owner a root was pinned for. If gate is set, a Get of
// gateOn (a chunk: a walk reads it once) counts itself in entered and
// waits for a token on gate (or ctx).
type treeBackend struct {
	*memBackend
	gate    chan struct{}
	gateOn  cid.Cid
	mu      sync.Mutex // guards entered
	entered int
}

var _ protocol.TreeBackend = (*treeBackend)(nil)

func (b *treeBackend) HeldFor(_ context.Context, owner ed25519.PublicKey, root cid.Cid) (bool, error) {
	p, ok := b.pin(root)
	return ok && p.owner.Equal(owner), nil
}

func (b *treeBackend) Get(ctx context.Context, c cid.Cid) ([]byte, error) {
	if b.gate != nil {
		if c.Equals(b.gateOn) {
			b.mu.Lock()
			b.entered++
			b.mu.Unlock()
			select {
			case <-b.gate:
			case <-ctx.Done():
				return nil, ctx.Err()
			}
		}
	}
	return b.memBackend.Get(ctx, c)
}

func (b *treeBackend) enteredCount() int {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.entered
}

// treeFixture is a holder of a small file tree, pinned for owner, served
// from a treeBackend, and a client; own is the owner's copy of the tree.
type treeFixture struct {
	client, server host.Host
	backend        *treeBackend
	strikes        *strikes
	svc            *protocol.Service
	owner          ed25519.PrivateKey
	tree           []blockstore.Block
	own            *dagtest.MemStore
}

func newTreeFixture(t *testing.T, gated bool, opts ...protocol.Option) *treeFixture {
	t.Helper()
	f := &treeFixture{backend: &treeBackend{memBackend: newMemBackend()}, owner: newKey(t),
		strikes: &strikes{}, own: dagtest.NewMemStore()}
	if gated {
		f.backend.gate = make(chan struct{})
	}
	f.client, f.server = hostPair(t)
	f.tree = fileTree(t, 40, 3000, 4, "tree") // height 2: root, inner nodes, chunks
	f.backend.add(f.tree...)
	f.backend.gateOn = f.tree[len(f.tree)-1].Cid
	if err := f.own.PutMany(t.Context(), f.tree); err != nil {
		t.Fatal(err)
	}
	pub := f.owner.Public().(ed25519.PublicKey)
	if err := f.backend.Pin(t.Context(), f.tree[0].Cid, pub, time.Now().Add(time.Hour)); err != nil {
		t.Fatal(err)
	}
	opts = append([]protocol.Option{protocol.WithGetBackend(f.backend), protocol.WithStrikeFunc(f.strikes.record)}, opts...)
	f.svc = protocol.New(f.server, opts...)
	f.svc.Start()
	t.Cleanup(func() { _ = f.svc.Close() })
	return f
}

// challenge tree-challenges the holder as owner and returns the proof and
// the one the owner expects.
func (f *treeFixture) challenge(t *testing.T, owner ed25519.PrivateKey) (got, want [pb.ProofSize]byte, err error) {
	t.Helper()
	nonce := protocol.Nonce()
	ctx, cancel := context.WithTimeout(t.Context(), 10*time.Second)
	defer cancel()
	got, err = protocol.TreeChallenge(ctx, f.client, f.server.ID(), owner, f.tree[0].Cid, nonce)
	wants, werr := protocol.TreeProofs(t.Context(), f.own, f.tree[0].Cid,
		[]protocol.TreeProver{{Peer: f.server.ID(), Nonce: nonce}})
	if werr != nil {
		t.Fatal(werr)
	}
	return got, wants[0], err
}

// TestTreeChallengeHonest: a holder of the whole tree, pinned for the
// challenging owner, answers the proof the owner computes with
// TreeProofs, and is not struck.
func TestTreeChallengeHonest(t *testing.T) {
	f := newTreeFixture(t, false)
	got, want, err := f.challenge(t, f.owner)
	if err != nil {
		t.Fatal(err)
	}
	if got != want {
		t.Fatalf("proof %x, owner expects %x", got, want)
	}
	if s := f.strikes.of(f.client.ID()); len(s) != 0 {
		t.Fatalf("struck: %q", s)
	}
}

// TestTreeProofInput pins the proof's input (docs/wire.md): domain,
// nonce, prover, root, then every block in dag.Walk order as CID ||
// be64(len) || data, computed here from the order fileTree gives (the
// order dag.Walk visits, TestTreeHelpers). Two provers in one call get
// the proofs each would get alone.
func TestTreeProofInput(t *testing.T) {
	tree := fileTree(t, 40, 3000, 4, "input")
	own := dagtest.NewMemStore()
	if err := own.PutMany(t.Context(), tree); err != nil {
		t.Fatal(err)
	}
	provers := []protocol.TreeProver{
		{Peer: "prover-a", Nonce: [pb.NonceSize]byte{1}},
		{Peer: "prover-b", Nonce: [pb.NonceSize]byte{2}},
	}
	got, err := protocol.TreeProofs(t.Context(), own, tree[0].Cid, provers)
	if err != nil {
		t.Fatal(err)
	}
	for i, p := range provers {
		h := sha256.New()
		h.Write([]byte("casd/tree-proof/1.0\x00"))
		h.Write(p.Nonce[:])
		h.Write([]byte(p.Peer))
		h.Write(tree[0].Cid.Bytes())
		for _, b := range tree {
			h.Write(b.Cid.Bytes())
			h.Write(binary.BigEndian.AppendUint64(nil, uint64(len(b.Data))))
			h.Write(b.Data)
		}
		if want := h.Sum(nil); string(got[i][:]) != string(want) {
			t.Errorf("prover %d: proof %x, want %x", i, got[i], want)
		}
		alone, err := protocol.TreeProofs(t.Context(), own, tree[0].Cid, provers[i:i+1])
		if err != nil || alone[0] != got[i] {
			t.Errorf("prover %d alone: %x, %v; with others %x", i, alone, err, got[i])
		}
	}
	if got[0] == got[1] {
		t.Fatal("two provers got the same proof")
	}
}

// TestTreeProofsOwnerCopy: the owner's side refuses a copy that lacks a
// block or holds a corrupt one, rather than computing a reference from it.
func TestTreeProofsOwnerCopy(t *testing.T) {
	tree := fileTree(t, 10, 500, 4, "owner")
	prover := []protocol.TreeProver{{Peer: "p", Nonce: protocol.Nonce()}}
	lacking := newMemBackend()
	lacking.add(tree[:len(tree)-1]...)
	if _, err := protocol.TreeProofs(t.Context(), lacking, tree[0].Cid, prover); !errors.Is(err, blockstore.ErrNotFound) {
		t.Errorf("lacking a chunk: %v, want ErrNotFound", err)
	}
	corrupt := newMemBackend()
	corrupt.add(tree...)
	last := tree[len(tree)-1]
	corrupt.add(blockstore.Block{Cid: last.Cid, Data: append([]byte(nil), last.Data[:len(last.Data)-1]...)})
	if _, err := protocol.TreeProofs(t.Context(), corrupt, tree[0].Cid, prover); err == nil {
		t.Error("a corrupt chunk gave a proof")
	}
}

// TestTreeChallengeDamagedHolder: a holder that lost one block answers
// Missing naming it (ErrNotHeld); one whose block is corrupted (its
// backend does not notice) answers a proof that does not match.
func TestTreeChallengeDamagedHolder(t *testing.T) {
	for _, i := range []int{0, 1, 7, 39} { // the root, an inner node, chunks
		f := newTreeFixture(t, false)
		victim := f.tree[i]
		f.backend.mu.Lock()
		delete(f.backend.blocks, victim.Cid)
		f.backend.mu.Unlock()
		_, _, err := f.challenge(t, f.owner)
		if !errors.Is(err, protocol.ErrNotHeld) || !strings.Contains(err.Error(), victim.Cid.String()) {
			t.Errorf("block %d lost: %v, want ErrNotHeld naming %s", i, err, victim.Cid)
		}
	}
	for _, i := range []int{1, 7, 39} {
		f := newTreeFixture(t, false)
		victim := f.tree[i]
		data := append([]byte(nil), victim.Data...)
		data[len(data)-1] ^= 1
		f.backend.add(blockstore.Block{Cid: victim.Cid, Data: data})
		got, want, err := f.challenge(t, f.owner)
		if err == nil && got == want {
			t.Errorf("block %d corrupted: the proof matches", i)
		}
	}
}

// TestTreeChallengeNotHeldFor: a challenge signed by a key other than the
// one the root is held for, or served by a backend that cannot tell
// (no TreeBackend), is answered Missing{root}: ErrNotHeld, no strike.
func TestTreeChallengeNotHeldFor(t *testing.T) {
	f := newTreeFixture(t, false)
	_, _, err := f.challenge(t, newKey(t))
	if !errors.Is(err, protocol.ErrNotHeld) {
		t.Fatalf("stranger's challenge: %v, want ErrNotHeld", err)
	}
	if s := f.strikes.of(f.client.ID()); len(s) != 0 {
		t.Fatalf("struck for a genuine challenge: %q", s)
	}

	g := newTreeFixture(t, false)
	_ = g.svc.Close()
	plain := protocol.New(g.server, protocol.WithGetBackend(g.backend.memBackend))
	plain.Start()
	t.Cleanup(func() { _ = plain.Close() })
	if _, _, err := g.challenge(t, g.owner); !errors.Is(err, protocol.ErrNotHeld) {
		t.Fatalf("backend without TreeBackend: %v, want ErrNotHeld", err)
	}
}

// TestTreeChallengeForged: a tree challenge whose signature does not
// verify for the holder resets the stream and is struck; one signed more
// than an hour away from the holder's clock is answered Missing{root},
// not struck.
func TestTreeChallengeForged(t *testing.T) {
	f := newTreeFixture(t, false)
	root := f.tree[0].Cid
	forged := &pb.TreeChallenge{Root: root, Nonce: protocol.Nonce(), Time: time.Now().Unix()}
	protocol.SignTreeChallenge(newKey(t), f.server.ID(), forged)
	forged.Owner = f.owner.Public().(ed25519.PublicKey)
	r := openRaw(t, f.client, f.server.ID(), protocol.GetID)
	if err := r.send(forged); err != nil {
		t.Fatal(err)
	}
	if m, err := r.recv(); err == nil {
		t.Fatalf("forged challenge answered %T", m)
	}
	if s := f.strikes.of(f.client.ID()); len(s) != 1 || !strings.Contains(s[0], "signature") {
		t.Fatalf("strikes %q, want one for the signature", s)
	}

	stale := &pb.TreeChallenge{Root: root, Nonce: protocol.Nonce(), Time: time.Now().Add(-2 * time.Hour).Unix()}
	protocol.SignTreeChallenge(f.owner, f.server.ID(), stale)
	r = openRaw(t, f.client, f.server.ID(), protocol.GetID)
	if err := r.send(stale); err != nil {
		t.Fatal(err)
	}
	m, err := r.recv()
	if miss, ok := m.(*pb.Missing); err != nil || !ok || !miss.Cid.Equals(root) {
		t.Fatalf("stale challenge answered %+v, %v; want Missing{root}", m, err)
	}
	if s := f.strikes.of(f.client.ID()); len(s) != 1 {
		t.Fatalf("struck for a stale challenge: %q", s)
	}
}

// TestTreeProofCap: a holder runs at most two tree proofs at a time; a
// third waits for a slot, then runs once one is free. All three prove.
func TestTreeProofCap(t *testing.T) {
	f := newTreeFixture(t, true)
	results := make(chan error, 3)
	var wg sync.WaitGroup
	for range 3 {
		wg.Go(func() {
			got, want, err := f.challenge(t, f.owner)
			if err == nil && got != want {
				err = errors.New("wrong proof")
			}
			results <- err
		})
	}
	waitFor(t, "two proofs running and one waiting", func() bool {
		return f.backend.enteredCount() == 2 && protocol.TreeWaiting(f.svc) == 1
	})
	if n := f.backend.enteredCount(); n != 2 {
		t.Fatalf("%d proofs running, at most 2", n)
	}
	f.backend.gate <- struct{}{}
	waitFor(t, "the third proof to start", func() bool { return f.backend.enteredCount() == 3 })
	f.backend.gate <- struct{}{}
	f.backend.gate <- struct{}{}
	wg.Wait()
	for range 3 {
		if err := <-results; err != nil {
			t.Error(err)
		}
	}
}

// waitFor polls cond until it holds, or fails the test after 10 s.
func waitFor(t *testing.T, what string, cond func() bool) {
	t.Helper()
	deadline := time.Now().Add(10 * time.Second)
	for !cond() {
		if time.Now().After(deadline) {
			t.Fatalf("timed out waiting for %s", what)
		}
		time.Sleep(5 * time.Millisecond)
	}
}

var _ dag.BlockGetter = (*memBackend)(nil)

// TestTreeProofTimeBound: a proof that stalls past its bound (here 100
// ms, whatever it read) is abandoned: the holder resets the stream long
// before the client's 10 s deadline, strikes no one, and frees its slot.
func TestTreeProofTimeBound(t *testing.T) {
	f := newTreeFixture(t, true, protocol.WithTreeProofBound(100*time.Millisecond, 1<<30))
	start := time.Now()
	_, _, err := f.challenge(t, f.owner)
	if err == nil || errors.Is(err, protocol.ErrNotHeld) || errors.Is(err, context.DeadlineExceeded) {
		t.Fatalf("stalled proof: %v, want the stream reset by the holder", err)
	}
	if elapsed := time.Since(start); elapsed > 5*time.Second {
		t.Fatalf("stalled proof abandoned after %v", elapsed)
	}
	if s := f.strikes.of(f.client.ID()); len(s) != 0 {
		t.Fatalf("struck for a slow backend: %q", s)
	}
	close(f.backend.gate)
	for range 3 { // more than the slots: none was kept by the stalled proof
		got, want, err := f.challenge(t, f.owner)
		if err != nil || got != want {
			t.Fatalf("after the stall: %v, proof match %v", err, got == want)
		}
	}
}
