package protocol

import (
	"context"
	"crypto/ed25519"
	"encoding/binary"
	"errors"
	"fmt"
	"time"

	"github.com/ipfs/go-cid"
	"github.com/libp2p/go-libp2p/core/host"
	"github.com/libp2p/go-libp2p/core/peer"

	"github.com/casd/casd/blockstore"
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

// leaseFor returns the lease expiry a holder grants an offer stating the
// unix expiry stated at now: [DefaultLease] from now if none is stated
// (0), else as [clampLease].
func leaseFor(stated int64, now time.Time) (time.Time, error) {
	if stated == 0 {
		return now.Add(DefaultLease), nil
	}
	return clampLease(stated, now)
}

// clampLease returns the unix expiry stated, at most [MaxLease] from now.
// An expiry not after now is an error.
func clampLease(stated int64, now time.Time) (time.Time, error) {
	exp := time.Unix(stated, 0)
	if !exp.After(now) {
		return time.Time{}, fmt.Errorf("lease expired at %s", exp.UTC().Format(time.RFC3339))
	}
	if limit := now.Add(MaxLease); exp.After(limit) {
		return limit, nil
	}
	return exp, nil
}

// serveLease answers a renewal: a forged one is refused and struck; a
// genuine one extends the owner's replica to its expiry, clamped to
// MaxLease, if the backend holds it.
func (s *Service) serveLease(ctx context.Context, p peer.ID, c *conn, l *pb.Lease) error {
	if err := VerifyLease(s.h.ID(), l); err != nil {
		s.strikeForged(p, "store", err)
		return reject(c, err.Error())
	}
	lease, err := clampLease(l.Expiry, time.Now())
	if err != nil {
		return reject(c, "lease: "+err.Error())
	}
	if err := s.cfg.store.Renew(ctx, ed25519.PublicKey(l.Owner), l.Root, lease); err != nil {
		log.Debugw("renewal refused", "peer", p, "root", l.Root, "err", err)
		return reject(c, err.Error())
	}
	log.Debugw("lease renewed", "peer", p, "root", l.Root, "until", lease)
	return c.send(&pb.StoreReply{Accept: true})
}

// serveRemove answers a removal: a forged one is refused and struck, a
// stale one only refused; a genuine one drops the owner's replica.
func (s *Service) serveRemove(ctx context.Context, p peer.ID, c *conn, r *pb.Remove) error {
	if err := VerifyRemove(s.h.ID(), r, time.Now()); err != nil {
		s.strikeForged(p, "store", err)
		return reject(c, err.Error())
	}
	if err := s.cfg.store.Remove(ctx, ed25519.PublicKey(r.Owner), r.Root); err != nil {
		if ctx.Err() == nil {
			log.Warnw("remove: backend error", "root", r.Root, "err", err)
		}
		return reject(c, "remove failed: "+err.Error())
	}
	log.Debugw("replica removed", "peer", p, "root", r.Root)
	return c.send(&pb.StoreReply{Accept: true})
}

// strikeForged strikes p if err is a bad signature (a stale time is not
// the peer's fault).
func (s *Service) strikeForged(p peer.ID, op string, err error) {
	if errors.Is(err, ErrBadSignature) && s.cfg.strike != nil {
		s.cfg.strike(p, op+": "+err.Error())
	}
}

// Renew asks p to extend the lease of its replica of root, held for the
// owner key owner, to expiry (p clamps it to [MaxLease] from its clock). A
// refusal (p does not hold root for this owner, or expiry is past) is a
// [*RemoteError] wrapping [ErrRejected]. Deadlines are those of [Store]:
// ctx, and [DefaultIdleTimeout] per message.
func Renew(ctx context.Context, h host.Host, p peer.ID, owner ed25519.PrivateKey, root cid.Cid, expiry time.Time) error {
	if err := checkOwner(owner, root); err != nil {
		return fmt.Errorf("renew: %w", err)
	}
	l := &pb.Lease{Root: root, Expiry: expiry.Unix()}
	SignLease(owner, p, l)
	if err := storeRequest(ctx, h, p, l); err != nil {
		return fmt.Errorf("renew %s on %s: %w", root, p, err)
	}
	return nil
}

// Remove asks p to drop its replica of root, held for the owner key owner.
// p accepts a removal of what it does not hold; it refuses one whose
// signed time (now) lies more than [MaxClockSkew] from its clock, with a
// [*RemoteError]. Deadlines are those of [Renew].
func Remove(ctx context.Context, h host.Host, p peer.ID, owner ed25519.PrivateKey, root cid.Cid) error {
	if err := checkOwner(owner, root); err != nil {
		return fmt.Errorf("remove: %w", err)
	}
	r := &pb.Remove{Root: root, Time: time.Now().Unix()}
	SignRemove(owner, p, r)
	if err := storeRequest(ctx, h, p, r); err != nil {
		return fmt.Errorf("remove %s from %s: %w", root, p, err)
	}
	return nil
}

// checkOwner checks the arguments every owner-signed request shares.
func checkOwner(owner ed25519.PrivateKey, root cid.Cid) error {
	if len(owner) != ed25519.PrivateKeySize {
		return fmt.Errorf("owner key of %d bytes", len(owner))
	}
	if err := blockstore.CheckCid(root); err != nil {
		return fmt.Errorf("root: %w", err)
	}
	return nil
}

// storeRequest sends m as the only message of a new /cas/store/1.0
// stream to p and reads the StoreReply. Cancelling ctx resets the stream,
// as does any failure.
func storeRequest(ctx context.Context, h host.Host, p peer.ID, m pb.Message) (err error) {
	str, err := h.NewStream(ctx, p, StoreID)
	if err != nil {
		return fmt.Errorf("open store stream: %w", err)
	}
	c := newConn(str, DefaultIdleTimeout)
	c.limit, _ = ctx.Deadline()
	stop := context.AfterFunc(ctx, func() { _ = str.Reset() })
	err = requestOn(c, m)
	stop()
	if err != nil {
		err = withCtxErr(ctx, err)
	}
	if err != nil {
		_ = str.Reset()
		return err
	}
	_ = str.Close()
	return nil
}

func requestOn(c *conn, m pb.Message) error {
	if err := c.send(m); err != nil {
		return err
	}
	if err := c.s.CloseWrite(); err != nil {
		return fmt.Errorf("close write: %w", err)
	}
	r, err := c.recv(MaxRequestSize)
	if err != nil {
		return fmt.Errorf("read reply: %w", eofUnexpected(err))
	}
	reply, ok := r.(*pb.StoreReply)
	if !ok {
		return unexpected(r, "StoreReply")
	}
	if !reply.Accept {
		return &RemoteError{Reason: reply.Reason}
	}
	return nil
}

// withCtxErr joins to err, a failed exchange under ctx, the context's
// error if ctx is done or its deadline has passed: the stream's deadline
// is ctx's, and may fire just before ctx's own timer does.
func withCtxErr(ctx context.Context, err error) error {
	cerr := ctx.Err()
	if dl, ok := ctx.Deadline(); cerr == nil && ok && !time.Now().Before(dl) {
		cerr = context.DeadlineExceeded
	}
	if cerr == nil || errors.Is(err, cerr) {
		return err
	}
	return errors.Join(cerr, err)
}
