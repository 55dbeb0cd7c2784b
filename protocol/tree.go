package protocol

import (
	"context"
	"crypto/ed25519"
	"crypto/sha256"
	"encoding/binary"
	"errors"
	"fmt"
	"hash"
	"sync"
	"time"

	"github.com/ipfs/go-cid"
	"github.com/libp2p/go-libp2p/core/host"
	"github.com/libp2p/go-libp2p/core/peer"

	"github.com/casd/casd/blockstore"
	"github.com/casd/casd/dag"
	"github.com/casd/casd/protocol/pb"
)

// The tree challenge of /cas/get/1.0 (docs/wire.md, "Tree challenge"):
// the owner of a replica asks its holder for one proof over every block
// of the tree, so that a holder that lost or corrupted any one block
// fails. The challenge is signed by the owner, so that no one else can
// make a holder read a whole file.

// TreeProofDomain prefixes the input of every tree proof.
const TreeProofDomain = "casd/tree-proof/1.0\x00"

// Limits of the server side of tree challenges.
const (
	// maxTreeProofs is how many tree proofs one Service computes at a
	// time; more challenges wait for a slot. Each reads a whole tree.
	maxTreeProofs = 2
	// treeProofGrace and treeProofFloorRate bound a proof's time: it is
	// abandoned (the stream reset) once it has run longer than the grace
	// plus the time to read the bytes read so far at the floor rate. The
	// tree's size is not known before it is read (it is encrypted), so the
	// bound grows as the proof reads: a disk slower than 4 MiB/s, or a
	// backend that stalls, cannot hold a slot for long.
	treeProofGrace     = 30 * time.Second
	treeProofFloorRate = 4 << 20 // bytes per second
)

// treeBound is the time bound of tree proofs: grace plus the bytes read
// at rate (bytes per second).
type treeBound struct {
	grace time.Duration
	rate  float64
}

// errProofTooSlow is why a tree proof that ran past its bound stopped.
var errProofTooSlow = errors.New("protocol: tree proof ran past its time bound")

// TreeBackend is the optional ability of a [GetBackend] to answer tree
// challenges. A backend without it answers every tree challenge
// [pb.Missing] for the root.
type TreeBackend interface {
	// HeldFor reports whether root is pinned here as a replica of owner.
	HeldFor(ctx context.Context, owner ed25519.PublicKey, root cid.Cid) (bool, error)
}

// TreeProver is one expected tree proof to compute: the proof Peer must
// give for Nonce.
type TreeProver struct {
	Peer  peer.ID
	Nonce [pb.NonceSize]byte
}

// TreeProofs computes, in one walk of the tree under root read from get,
// the proof each prover must give: SHA-256(TreeProofDomain || nonce ||
// prover || root || for each block in dag.Walk order: CID || be64(len) ||
// data). Every block is verified against its CID first, so the proofs are
// those of the tree root names. Blocks are read one at a time; the walk is
// bounded as dag.Walk is. A block get lacks is an error wrapping
// blockstore.ErrNotFound.
func TreeProofs(ctx context.Context, get dag.BlockGetter, root cid.Cid, provers []TreeProver) ([][pb.ProofSize]byte, error) {
	return treeProofs(ctx, get, root, provers, true)
}

// missingBlockError names the block a tree proof lacks.
type missingBlockError struct {
	cid cid.Cid
	err error
}

func (e *missingBlockError) Error() string { return fmt.Sprintf("block %s: %v", e.cid, e.err) }
func (e *missingBlockError) Unwrap() error { return e.err }

// treeProofs is TreeProofs; verify false trusts get to return only
// verified blocks (a GetBackend's contract): a wrong block then only makes
// a wrong proof.
func treeProofs(ctx context.Context, get dag.BlockGetter, root cid.Cid, provers []TreeProver, verify bool) ([][pb.ProofSize]byte, error) {
	if err := blockstore.CheckCid(root); err != nil {
		return nil, fmt.Errorf("tree proof: root: %w", err)
	}
	hs := make([]hash.Hash, len(provers))
	rootBytes := root.Bytes()
	for i, p := range provers {
		h := sha256.New()
		h.Write([]byte(TreeProofDomain))
		h.Write(p.Nonce[:])
		h.Write([]byte(p.Peer))
		h.Write(rootBytes)
		hs[i] = h
	}
	var size [8]byte
	err := dag.Walk(ctx, get, root, func(c cid.Cid, _ byte) error {
		data, err := get.Get(ctx, c)
		if errors.Is(err, blockstore.ErrNotFound) {
			return &missingBlockError{cid: c, err: err}
		}
		if err != nil {
			return fmt.Errorf("block %s: %w", c, err)
		}
		if verify {
			if err := blockstore.VerifyBlock(c, data); err != nil {
				return fmt.Errorf("block %s: %w", c, err)
			}
		}
		binary.BigEndian.PutUint64(size[:], uint64(len(data)))
		cb := c.Bytes()
		for _, h := range hs {
			h.Write(cb)
			h.Write(size[:])
			h.Write(data)
		}
		return nil
	})
	if err != nil {
		return nil, fmt.Errorf("tree proof of %s: %w", root, err)
	}
	out := make([][pb.ProofSize]byte, len(hs))
	for i, h := range hs {
		h.Sum(out[i][:0])
	}
	return out, nil
}

// serveTreeChallenge answers one tree challenge: a forged one is an error
// wrapping ErrBadSignature (the stream is reset, the peer struck); one
// outside the clock window, or for a root not held for its owner, is
// answered Missing{root}; otherwise the proof, or Missing naming the
// first block this node lacks.
func (s *Service) serveTreeChallenge(ctx context.Context, c *conn, tc *pb.TreeChallenge) error {
	if err := VerifyTreeChallenge(s.h.ID(), tc, time.Now()); err != nil {
		if errors.Is(err, ErrBadSignature) {
			return err
		}
		log.Debugw("tree challenge refused", "root", tc.Root, "err", err)
		return c.send(&pb.Missing{Cid: tc.Root})
	}
	held, err := s.heldFor(ctx, tc)
	if err != nil {
		return err
	}
	if !held {
		return c.send(&pb.Missing{Cid: tc.Root})
	}
	proof, err := s.proveTree(ctx, tc)
	var missing *missingBlockError
	switch {
	case err == nil:
		return c.send(&pb.Proof{Proof: proof})
	case errors.As(err, &missing):
		return c.send(&pb.Missing{Cid: missing.cid})
	case errors.Is(err, blockstore.ErrNotFound):
		return c.send(&pb.Missing{Cid: tc.Root})
	default:
		if ctx.Err() == nil {
			log.Warnw("tree challenge: proof failed", "root", tc.Root, "err", err)
		}
		return err
	}
}

// heldFor asks the backend whether it holds tc's root for tc's owner.
func (s *Service) heldFor(ctx context.Context, tc *pb.TreeChallenge) (bool, error) {
	b, ok := s.cfg.get.(TreeBackend)
	if !ok {
		return false, nil
	}
	held, err := b.HeldFor(ctx, ed25519.PublicKey(tc.Owner), tc.Root)
	if err != nil {
		return false, fmt.Errorf("tree challenge: pins of %s: %w", tc.Root, err)
	}
	return held, nil
}

// proveTree computes this node's proof for tc once a slot is free, within
// the time bound of treeProofGrace and treeProofFloorRate.
func (s *Service) proveTree(ctx context.Context, tc *pb.TreeChallenge) ([pb.ProofSize]byte, error) {
	release, err := s.treeSlot(ctx)
	if err != nil {
		return [pb.ProofSize]byte{}, err
	}
	defer release()
	ctx, cancel := context.WithCancelCause(ctx)
	defer cancel(nil)
	b := newProofBudget(s.cfg.tree, time.Now(), func() { cancel(errProofTooSlow) })
	defer b.stop()
	proofs, err := treeProofs(ctx, budgetGetter{s.cfg.get, b}, tc.Root,
		[]TreeProver{{Peer: s.h.ID(), Nonce: tc.Nonce}}, false)
	if err != nil {
		if cause := context.Cause(ctx); errors.Is(cause, errProofTooSlow) {
			err = fmt.Errorf("%w: %w", cause, err)
		}
		return [pb.ProofSize]byte{}, err
	}
	return proofs[0], nil
}

// treeSlot waits for one of the maxTreeProofs slots, or for ctx, and
// returns the function that frees it.
func (s *Service) treeSlot(ctx context.Context) (release func(), err error) {
	select {
	case s.treeSlots <- struct{}{}:
		return func() { <-s.treeSlots }, nil
	default:
	}
	s.treeWaiting.Add(1)
	defer s.treeWaiting.Add(-1)
	select {
	case s.treeSlots <- struct{}{}:
		return func() { <-s.treeSlots }, nil
	case <-ctx.Done():
		return nil, fmt.Errorf("wait for a tree proof slot: %w", ctx.Err())
	}
}

// proofBudget cancels a tree proof that runs past its bound's grace plus
// its bytes read at the bound's rate.
type proofBudget struct {
	bound treeBound
	start time.Time
	timer *time.Timer

	mu   sync.Mutex // guards read
	read int64
}

func newProofBudget(bound treeBound, start time.Time, expire func()) *proofBudget {
	return &proofBudget{bound: bound, start: start, timer: time.AfterFunc(bound.grace, expire)}
}

// add counts n more bytes read and moves the bound accordingly.
func (b *proofBudget) add(n int) {
	b.mu.Lock()
	defer b.mu.Unlock()
	b.read += int64(n)
	allowed := b.bound.grace + time.Duration(float64(b.read)/b.bound.rate*float64(time.Second))
	b.timer.Reset(time.Until(b.start.Add(allowed)))
}

func (b *proofBudget) stop() { b.timer.Stop() }

// budgetGetter counts what a tree proof reads against its budget.
type budgetGetter struct {
	get    GetBackend
	budget *proofBudget
}

func (g budgetGetter) Get(ctx context.Context, c cid.Cid) ([]byte, error) {
	data, err := g.get.Get(ctx, c)
	if err == nil {
		g.budget.add(len(data))
	}
	return data, err
}

// TreeChallenge asks p, with a challenge signed by owner, for its proof
// that it holds every block of the tree under root, for nonce, and returns
// the proof, unchecked (compare it with [TreeProofs] for p and nonce). A
// peer that answers Missing returns an error wrapping [ErrNotHeld]. The
// server sends nothing while it proves, which takes one read of the tree,
// so the wait for the answer is bounded by ctx alone, not by an idle
// timeout: give ctx a deadline. Cancelling ctx resets the stream.
func TreeChallenge(ctx context.Context, h host.Host, p peer.ID, owner ed25519.PrivateKey, root cid.Cid,
	nonce [pb.NonceSize]byte) ([pb.ProofSize]byte, error) {
	if err := checkOwner(owner, root); err != nil {
		return [pb.ProofSize]byte{}, fmt.Errorf("tree challenge: %w", err)
	}
	tc := &pb.TreeChallenge{Root: root, Nonce: nonce, Time: time.Now().Unix()}
	SignTreeChallenge(owner, p, tc)
	s, err := NewGetSession(ctx, h, p)
	if err != nil {
		return [pb.ProofSize]byte{}, err
	}
	defer s.Close()
	return s.treeChallenge(ctx, tc)
}

func (s *GetSession) treeChallenge(ctx context.Context, tc *pb.TreeChallenge) ([pb.ProofSize]byte, error) {
	var (
		proof   [pb.ProofSize]byte
		missing cid.Cid
	)
	err := s.do(ctx, func(c *conn) error {
		log.Debugw("tree challenge", "peer", s.p, "root", tc.Root)
		if err := c.send(tc); err != nil {
			return err
		}
		m, err := c.recvSlow(MaxRequestSize)
		if err != nil {
			return fmt.Errorf("read tree proof: %w", eofUnexpected(err))
		}
		switch m := m.(type) {
		case *pb.Proof:
			proof = m.Proof
			return nil
		case *pb.Missing:
			if !m.Cid.Defined() {
				return fmt.Errorf("%w: Missing without a CID", ErrProtocol)
			}
			missing = m.Cid
			return nil
		default:
			return unexpected(m, "Proof or Missing")
		}
	})
	if err == nil && missing.Defined() {
		err = fmt.Errorf("tree challenge %s on %s: missing %s: %w", s.p, tc.Root, missing, ErrNotHeld)
	}
	return proof, err
}
