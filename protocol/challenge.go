package protocol

import (
	"context"
	"crypto/rand"
	"crypto/sha256"
	"crypto/subtle"
	"errors"
	"fmt"

	"github.com/ipfs/go-cid"
	"github.com/libp2p/go-libp2p/core/host"
	"github.com/libp2p/go-libp2p/core/peer"

	"github.com/casd/casd/blockstore"
	"github.com/casd/casd/protocol/pb"
)

// The storage challenge of /cas/get/1.0 (docs/wire.md, "Storage
// challenge"): a client that holds a block sends a fresh nonce and the
// block's CID, and the server proves that it holds the block too by
// answering a hash over the nonce, its own peer ID, the CID and the
// block's bytes. The proof reveals nothing of the block.

// ChallengeDomain prefixes the input of every proof.
const ChallengeDomain = "casd/challenge/1.0\x00"

var (
	// ErrNotHeld means a challenged peer answered that it does not hold
	// the block, or not under a pinned root (a [pb.Missing] answer to a
	// challenge or a tree challenge), or that a holder refuses to renew
	// a replica it does not hold.
	ErrNotHeld = errors.New("protocol: not held")
	// ErrBadProof means a challenged peer answered a proof that does not
	// match the block.
	ErrBadProof = errors.New("protocol: wrong storage proof")
)

// ChallengeBackend is the optional ability of a [GetBackend] to answer
// storage challenges. A backend without it answers every challenge
// [pb.Missing].
type ChallengeBackend interface {
	// Pinned reports whether root is pinned here, for any reason. It is
	// asked before each challenged block is read, so it must be cheap:
	// the proof itself shows that the block is present.
	Pinned(ctx context.Context, root cid.Cid) (bool, error)
}

// Nonce returns a fresh challenge nonce from crypto/rand.
func Nonce() [pb.NonceSize]byte {
	var n [pb.NonceSize]byte
	_, _ = rand.Read(n[:]) // crypto/rand.Read never fails (Go 1.24)
	return n
}

// ProofOf returns the proof that prover holds the block c with data, for
// nonce: SHA-256(ChallengeDomain || nonce || prover || c || data), with
// prover and c in their binary forms (both self-delimiting). The prover's
// ID is in the input so that a peer cannot pass on another's proof: a peer
// that does not hold the block must fetch all of it to answer.
func ProofOf(prover peer.ID, nonce [pb.NonceSize]byte, c cid.Cid, data []byte) [pb.ProofSize]byte {
	h := sha256.New()
	h.Write([]byte(ChallengeDomain))
	h.Write(nonce[:])
	h.Write([]byte(prover))
	h.Write(c.Bytes())
	h.Write(data)
	var out [pb.ProofSize]byte
	h.Sum(out[:0])
	return out
}

// VerifyProof reports whether proof is the proof that prover holds the
// block c with data, for nonce. The caller checks that data is the block
// c (for a local block, [blockstore.VerifyBlock]).
func VerifyProof(prover peer.ID, nonce [pb.NonceSize]byte, c cid.Cid, data []byte, proof [pb.ProofSize]byte) bool {
	want := ProofOf(prover, nonce, c, data)
	return subtle.ConstantTimeCompare(want[:], proof[:]) == 1
}

// serveChallenge answers one challenge: a Proof if the backend holds root
// pinned and the block, else Missing. Like a want, it costs one block
// read; like a request, one message answers it.
func (s *Service) serveChallenge(ctx context.Context, c *conn, ch *pb.Challenge) error {
	data, err := s.challenged(ctx, ch)
	switch {
	case err == nil:
		return c.send(&pb.Proof{Proof: ProofOf(s.h.ID(), ch.Nonce, ch.Cid, data)})
	case errors.Is(err, blockstore.ErrNotFound):
		return c.send(&pb.Missing{Cid: ch.Cid})
	default:
		if ctx.Err() == nil {
			log.Warnw("challenge: backend error", "root", ch.Root, "cid", ch.Cid, "err", err)
		}
		return fmt.Errorf("challenge %s: %w", ch.Cid, err)
	}
}

// challenged returns the block a challenge names, or an error wrapping
// blockstore.ErrNotFound if this node does not hold it under a pinned root.
func (s *Service) challenged(ctx context.Context, ch *pb.Challenge) ([]byte, error) {
	b, ok := s.cfg.get.(ChallengeBackend)
	if !ok {
		return nil, blockstore.ErrNotFound
	}
	pinned, err := b.Pinned(ctx, ch.Root)
	if err != nil {
		return nil, fmt.Errorf("pins of %s: %w", ch.Root, err)
	}
	if !pinned {
		return nil, fmt.Errorf("root %s not pinned: %w", ch.Root, blockstore.ErrNotFound)
	}
	return s.cfg.get.Get(ctx, ch.Cid)
}

// Challenge asks the peer to prove that it holds the block c of the tree
// under root, for nonce, and returns its proof, unchecked (see
// [VerifyProof]). A peer that answers that it lacks the block returns an
// error wrapping [ErrNotHeld]; one that breaks the protocol an error
// wrapping [ErrProtocol] or [ErrMessageTooLarge]. Any error breaks the
// session, except one wrapping [blockstore.ErrBadCid], refused before
// anything is sent.
func (s *GetSession) Challenge(ctx context.Context, root, c cid.Cid, nonce [pb.NonceSize]byte) ([pb.ProofSize]byte, error) {
	var (
		proof [pb.ProofSize]byte
		held  bool
	)
	if err := checkCids(root, c); err != nil {
		return proof, fmt.Errorf("challenge: %w", err)
	}
	err := s.do(ctx, func(conn *conn) error {
		log.Debugw("challenge", "peer", s.p, "root", root, "cid", c)
		if err := conn.send(&pb.Challenge{Root: root, Cid: c, Nonce: nonce}); err != nil {
			return err
		}
		m, err := conn.recv(MaxRequestSize)
		if err != nil {
			return fmt.Errorf("read proof: %w", eofUnexpected(err))
		}
		switch m := m.(type) {
		case *pb.Proof:
			proof, held = m.Proof, true
			return nil
		case *pb.Missing:
			if !m.Cid.Equals(c) {
				return fmt.Errorf("%w: missing %s, challenged on %s", ErrProtocol, m.Cid, c)
			}
			return nil
		default:
			return unexpected(m, "Proof or Missing")
		}
	})
	if err == nil && !held {
		err = fmt.Errorf("challenge %s on %s: %w", s.p, c, ErrNotHeld)
	}
	return proof, err
}

func checkCids(cs ...cid.Cid) error {
	for _, c := range cs {
		if err := blockstore.CheckCid(c); err != nil {
			return err
		}
	}
	return nil
}

// Challenge opens a stream to p, challenges it once and closes the stream;
// see [GetSession.Challenge].
func Challenge(ctx context.Context, h host.Host, p peer.ID, root, c cid.Cid, nonce [pb.NonceSize]byte) ([pb.ProofSize]byte, error) {
	s, err := NewGetSession(ctx, h, p)
	if err != nil {
		return [pb.ProofSize]byte{}, err
	}
	defer s.Close()
	return s.Challenge(ctx, root, c, nonce)
}

// Audit challenges p with a fresh nonce on b, a block of the tree under
// root that the caller holds and has verified, and checks the proof. It
// returns nil if p proved that it holds b, an error wrapping [ErrNotHeld]
// if p says it does not, one wrapping [ErrBadProof] if its proof is wrong:
// both mean that a claim p made to hold root was false. Other errors are
// those of [Challenge].
func Audit(ctx context.Context, h host.Host, p peer.ID, root cid.Cid, b blockstore.Block) error {
	nonce := Nonce()
	proof, err := Challenge(ctx, h, p, root, b.Cid, nonce)
	if err != nil {
		return err
	}
	if !VerifyProof(p, nonce, b.Cid, b.Data, proof) {
		return fmt.Errorf("audit %s on %s: %w", p, b.Cid, ErrBadProof)
	}
	return nil
}
