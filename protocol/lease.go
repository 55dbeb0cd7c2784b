package protocol

import (
	"crypto/ed25519"
	"encoding/binary"
	"errors"
	"fmt"
	"time"

	"github.com/libp2p/go-libp2p/core/peer"

	"github.com/casd/casd/protocol/pb"
)

// Leases and removal (docs/wire.md, "Leases and removal"): a replica is
// held until a lease expiry that the owner grants in its offer and renews
// with a signed [pb.Lease]; a signed [pb.Remove] drops it at once. Every
// such message, like an offer, is signed by the owner's key for one
// receiver, so that it cannot be replayed to another holder.

// Lease limits.
const (
	// DefaultLease is the lease a holder grants an offer that states
	// none.
	DefaultLease = 30 * 24 * time.Hour
	// MaxLease is the longest lease a holder grants: a longer one is
	// clamped to now+MaxLease, so a replica whose owner vanished is
	// dropped within about a year.
	MaxLease = 400 * 24 * time.Hour
	// MaxClockSkew is how far the signed time of a [pb.Remove] or a
	// [pb.TreeChallenge] may lie from the receiver's clock, either way.
	// A message outside it is refused (not a strike: clocks disagree);
	// inside it, a recorded message can be replayed only to the same
	// receiver for the same root, where it asks again what was asked.
	MaxClockSkew = time.Hour
)

// Signature domains, one per signed message, so that a signature of one
// kind is never valid as another.
const (
	leaseDomain         = "casd/lease/1.0\x00"
	removeDomain        = "casd/remove/1.0\x00"
	treeChallengeDomain = "casd/tree-challenge/1.0\x00"
)

// ErrStale means a signed message's time lies more than [MaxClockSkew]
// from the receiver's clock.
var ErrStale = errors.New("protocol: signed time outside the receiver's window")

// leaseMessage is what the owner signs to renew:
// domain || receiver || root || be64(expiry).
func leaseMessage(receiver peer.ID, l *pb.Lease) []byte {
	return signedBytes(leaseDomain, receiver, l.Root.KeyString(), uint64(l.Expiry))
}

// removeMessage is what the owner signs to remove:
// domain || receiver || root || be64(time).
func removeMessage(receiver peer.ID, r *pb.Remove) []byte {
	return signedBytes(removeDomain, receiver, r.Root.KeyString(), uint64(r.Time))
}

// treeChallengeMessage is what the owner signs to ask for a tree proof:
// domain || receiver || root || nonce || be64(time).
func treeChallengeMessage(receiver peer.ID, t *pb.TreeChallenge) []byte {
	return signedBytes(treeChallengeDomain, receiver, t.Root.KeyString()+string(t.Nonce[:]), uint64(t.Time))
}

// signedBytes concatenates domain, receiver's ID bytes, the message's
// fields and one big-endian uint64.
func signedBytes(domain string, receiver peer.ID, fields string, n uint64) []byte {
	b := make([]byte, 0, len(domain)+len(receiver)+len(fields)+8)
	b = append(b, domain...)
	b = append(b, receiver...)
	b = append(b, fields...)
	return binary.BigEndian.AppendUint64(b, n)
}

// SignLease sets l.Owner to the public key of priv and l.Sig to the
// owner's signature of the renewal for receiver. Root and Expiry must be
// set first.
func SignLease(priv ed25519.PrivateKey, receiver peer.ID, l *pb.Lease) {
	l.Owner = priv.Public().(ed25519.PublicKey)
	l.Sig = ed25519.Sign(priv, leaseMessage(receiver, l))
}

// VerifyLease checks that l is addressed to receiver and signed by its
// owner; otherwise the error wraps [ErrBadSignature]. The expiry is the
// holder's to judge (it clamps it to [MaxLease]).
func VerifyLease(receiver peer.ID, l *pb.Lease) error {
	if err := checkSigned(l.Root.Defined(), l.Owner, l.Sig); err != nil {
		return fmt.Errorf("lease: %w", err)
	}
	if !ed25519.Verify(l.Owner, leaseMessage(receiver, l), l.Sig) {
		return fmt.Errorf("lease: %w", ErrBadSignature)
	}
	return nil
}

// SignRemove sets r.Owner and r.Sig: the owner's signature of the removal
// for receiver. Root and Time must be set first.
func SignRemove(priv ed25519.PrivateKey, receiver peer.ID, r *pb.Remove) {
	r.Owner = priv.Public().(ed25519.PublicKey)
	r.Sig = ed25519.Sign(priv, removeMessage(receiver, r))
}

// VerifyRemove checks that r is addressed to receiver and signed by its
// owner (else the error wraps [ErrBadSignature]), then that its time lies
// within [MaxClockSkew] of now (else [ErrStale]).
func VerifyRemove(receiver peer.ID, r *pb.Remove, now time.Time) error {
	if err := checkSigned(r.Root.Defined(), r.Owner, r.Sig); err != nil {
		return fmt.Errorf("remove: %w", err)
	}
	if !ed25519.Verify(r.Owner, removeMessage(receiver, r), r.Sig) {
		return fmt.Errorf("remove: %w", ErrBadSignature)
	}
	return checkTime("remove", r.Time, now)
}

// SignTreeChallenge sets t.Owner and t.Sig: the owner's signature of the
// tree challenge for receiver. Root, Nonce and Time must be set first.
func SignTreeChallenge(priv ed25519.PrivateKey, receiver peer.ID, t *pb.TreeChallenge) {
	t.Owner = priv.Public().(ed25519.PublicKey)
	t.Sig = ed25519.Sign(priv, treeChallengeMessage(receiver, t))
}

// VerifyTreeChallenge checks that t is addressed to receiver and signed
// by its owner (else the error wraps [ErrBadSignature]), then that its
// time lies within [MaxClockSkew] of now (else [ErrStale]).
func VerifyTreeChallenge(receiver peer.ID, t *pb.TreeChallenge, now time.Time) error {
	if err := checkSigned(t.Root.Defined(), t.Owner, t.Sig); err != nil {
		return fmt.Errorf("tree challenge: %w", err)
	}
	if !ed25519.Verify(t.Owner, treeChallengeMessage(receiver, t), t.Sig) {
		return fmt.Errorf("tree challenge: %w", ErrBadSignature)
	}
	return checkTime("tree challenge", t.Time, now)
}

// checkSigned checks the shape of a signed message (the decoder already
// did, for one received): a root, a key and a signature of Ed25519 sizes.
func checkSigned(root bool, owner, sig []byte) error {
	switch {
	case len(owner) != ed25519.PublicKeySize:
		return fmt.Errorf("%w: owner key of %d bytes", ErrBadSignature, len(owner))
	case len(sig) != ed25519.SignatureSize:
		return fmt.Errorf("%w: signature of %d bytes", ErrBadSignature, len(sig))
	case !root:
		return fmt.Errorf("%w: no root", ErrBadSignature)
	}
	return nil
}

// checkTime checks that the signed unix time t lies within MaxClockSkew
// of now.
func checkTime(what string, t int64, now time.Time) error {
	if t < now.Add(-MaxClockSkew).Unix() || t > now.Add(MaxClockSkew).Unix() {
		return fmt.Errorf("%s: %w: signed at %s, receiver's clock %s", what, ErrStale,
			time.Unix(t, 0).UTC().Format(time.RFC3339), now.UTC().Format(time.RFC3339))
	}
	return nil
}

// leaseFor returns the lease expiry a holder grants for the stated unix
// expiry at now: [DefaultLease] from now if none is stated (0), at most
// [MaxLease] from now. A stated expiry not after now is an error.
func leaseFor(stated int64, now time.Time) (time.Time, error) {
	if stated == 0 {
		return now.Add(DefaultLease), nil
	}
	exp := time.Unix(stated, 0)
	if !exp.After(now) {
		return time.Time{}, fmt.Errorf("lease expired at %s", exp.UTC().Format(time.RFC3339))
	}
	if limit := now.Add(MaxLease); exp.After(limit) {
		return limit, nil
	}
	return exp, nil
}
