package replicate

import (
	"context"
	"crypto/rand"
	"errors"
	"fmt"
	"io"
	"math/big"
	mrand "math/rand/v2"

	"github.com/ipfs/go-cid"
	"github.com/libp2p/go-libp2p/core/host"
	"github.com/libp2p/go-libp2p/core/peer"

	"github.com/casd/casd/blockstore"
	"github.com/casd/casd/dag"
	"github.com/casd/casd/node/internal/peers"
	"github.com/casd/casd/protocol"
)

var (
	// ErrNotLocal means this node does not hold a root whole, so it cannot
	// challenge anyone on it: it has no block to check a proof against.
	ErrNotLocal = errors.New("replicate: root not held locally")
	// ErrInconclusive means that every block a peer was challenged on was
	// also served by this node while the challenge ran, so the peer may
	// have fetched it to answer: its claim does not count, but it is not
	// struck (an honest reader may have fetched the same block).
	ErrInconclusive = errors.New("replicate: challenge inconclusive: the block was served meanwhile")
)

// maxAuditTries bounds the blocks one audit challenges a peer on: it tries
// another block when this node served the first one meanwhile.
const maxAuditTries = 3

// AuditorConfig is what an [Auditor] is built with.
type AuditorConfig struct {
	Host host.Host
	// Local is the node's own store, where the challenged blocks come
	// from.
	Local dag.BlockGetter
	// Strike counts a failed challenge against a peer.
	Strike func(p peer.ID, reason string)
	// Proven records the peers that pass.
	Proven *peers.Proven
	// Rand picks the challenged blocks; nil means crypto/rand.
	Rand io.Reader
}

// Auditor decides whether a peer's claim to hold a root counts: it
// challenges the peer ([protocol.Audit]) on a block of the root's tree
// picked at random among those this node holds. It is safe for concurrent
// use and starts no goroutine.
type Auditor struct {
	cfg     AuditorConfig
	watched servedWatch
}

// NewAuditor returns an auditor over cfg.
func NewAuditor(cfg AuditorConfig) *Auditor {
	if cfg.Rand == nil {
		cfg.Rand = rand.Reader
	}
	return &Auditor{cfg: cfg}
}

// Served tells the auditor that this node sent the block c to a peer; the
// node's /cas/get backend calls it for every block it serves. It is cheap
// when no audit runs.
func (a *Auditor) Served(c cid.Cid) { a.watched.note(c) }

// Audit challenges p, which claimed to hold root whole, on a random block
// of root's tree, chunks preferred. It returns nil if p proved that it
// holds the block, and records p as proven. A false claim (p answers that
// it lacks the block, or a wrong proof, or breaks the protocol) strikes p,
// forgets it as proven, and returns an error wrapping
// [protocol.ErrNotHeld], [protocol.ErrBadProof] or [protocol.ErrProtocol].
// A proof given while this node served the same block (see [Auditor.Served])
// proves nothing; Audit then tries another block, up to maxAuditTries, and
// then returns an error wrapping [ErrInconclusive]. If this node does not
// hold root whole the error wraps [ErrNotLocal] and nobody is asked. Other
// errors (p unreachable, ctx done) only mean that the claim was not
// checked.
func (a *Auditor) Audit(ctx context.Context, p peer.ID, root cid.Cid) error {
	for try := 1; ; try++ {
		b, err := a.pick(ctx, root)
		if err != nil {
			return err
		}
		stop := a.watched.watch(b.Cid)
		err = protocol.Audit(ctx, a.cfg.Host, p, root, b)
		if stop() && err == nil {
			log.Debugw("challenged block served meanwhile", "peer", p, "cid", root, "block", b.Cid, "try", try)
			if try < maxAuditTries {
				continue
			}
			err = ErrInconclusive
		}
		return a.judge(p, root, b, err)
	}
}

// judge records the outcome of a challenge of p on block b of root.
func (a *Auditor) judge(p peer.ID, root cid.Cid, b blockstore.Block, err error) error {
	switch {
	case err == nil:
		a.cfg.Proven.Add(p)
		log.Debugw("challenge passed", "peer", p, "cid", root, "block", b.Cid)
		return nil
	case falseClaim(err):
		a.cfg.Proven.Forget(p)
		a.cfg.Strike(p, fmt.Sprintf("claimed %s, failed a challenge: %v", root, err))
		log.Debugw("peer claimed a file it cannot prove", "peer", p, "cid", root, "err", err)
	}
	return fmt.Errorf("audit %s for %s: %w", p, root, err)
}

// Verify is [Auditor.Audit] for a caller that can live with a claim it
// cannot check: it returns true, nil if p proved holding root; false, nil
// if this node does not hold root whole, so the claim stands unverified;
// and an error if the claim failed or could not be checked (it must not
// count).
func (a *Auditor) Verify(ctx context.Context, p peer.ID, root cid.Cid) (verified bool, err error) {
	err = a.Audit(ctx, p, root)
	switch {
	case err == nil:
		return true, nil
	case errors.Is(err, ErrNotLocal):
		return false, nil
	default:
		return false, err
	}
}

// falseClaim reports whether a challenge's error means that the peer lied.
func falseClaim(err error) bool {
	return errors.Is(err, protocol.ErrNotHeld) || errors.Is(err, protocol.ErrBadProof) ||
		errors.Is(err, protocol.ErrProtocol) || errors.Is(err, protocol.ErrMessageTooLarge)
}

// pick returns a block of root's tree chosen uniformly at random among its
// chunks (among all its blocks if it has none), read from the local store
// and checked against its CID: a corrupt local copy would make an honest
// peer's proof look wrong.
func (a *Auditor) pick(ctx context.Context, root cid.Cid) (blockstore.Block, error) {
	c, err := a.choose(ctx, root)
	if err != nil {
		return blockstore.Block{}, err
	}
	data, err := a.cfg.Local.Get(ctx, c)
	if err == nil {
		err = blockstore.VerifyBlock(c, data)
	}
	if err != nil {
		return blockstore.Block{}, fmt.Errorf("%w: block %s of %s: %w", ErrNotLocal, c, root, err)
	}
	return blockstore.Block{Cid: c, Data: data}, nil
}

// choose walks root's tree and returns one of its chunks, or of its blocks
// if it has no chunk, uniformly at random. It keeps one candidate of each
// (reservoir sampling: the i-th replaces the kept one with probability
// 1/i), so memory does not grow with the tree; the draws come from a
// ChaCha8 stream keyed from Rand, as unpredictable as Rand itself.
func (a *Auditor) choose(ctx context.Context, root cid.Cid) (cid.Cid, error) {
	var key [32]byte
	if _, err := io.ReadFull(a.cfg.Rand, key[:]); err != nil {
		return cid.Undef, fmt.Errorf("random choice: %w", err)
	}
	rng := mrand.New(mrand.NewChaCha8(key))
	var (
		chunk, block     cid.Cid
		nChunks, nBlocks int
	)
	err := dag.Walk(ctx, a.cfg.Local, root, func(c cid.Cid, kind byte) error {
		if nBlocks++; rng.IntN(nBlocks) == 0 {
			block = c
		}
		if kind == dag.KindChunk {
			if nChunks++; rng.IntN(nChunks) == 0 {
				chunk = c
			}
		}
		return nil
	})
	if errors.Is(err, blockstore.ErrNotFound) || dag.IsAuthError(err) || errors.Is(err, dag.ErrTooManyBlocks) {
		return cid.Undef, fmt.Errorf("%w: %s: %w", ErrNotLocal, root, err)
	}
	if err != nil {
		return cid.Undef, fmt.Errorf("walk %s: %w", root, err)
	}
	if nChunks > 0 {
		return chunk, nil
	}
	return block, nil
}

// randIntn returns a uniform random int in [0, n), n > 0, read from r.
func randIntn(r io.Reader, n int) (int, error) {
	v, err := rand.Int(r, big.NewInt(int64(n)))
	if err != nil {
		return 0, fmt.Errorf("random choice: %w", err)
	}
	return int(v.Int64()), nil
}
