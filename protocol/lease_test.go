package protocol_test

import (
	"crypto/ed25519"
	"encoding/binary"
	"errors"
	"testing"
	"time"

	"github.com/libp2p/go-libp2p/core/peer"

	"github.com/casd/casd/protocol"
	"github.com/casd/casd/protocol/pb"
)

// TestOfferLeaseSigned: an offer without a lease signs the bytes it
// signed before leases (docs/wire.md), so older peers' offers verify;
// an offer with one covers it, so a relay cannot lengthen or drop it.
func TestOfferLeaseSigned(t *testing.T) {
	owner := newKey(t)
	receiver := peer.ID("receiver")
	root := makeBlock(t, []byte("root")).Cid
	now := time.Now()
	o := &pb.StoreOffer{Root: root, Blocks: 2, Bytes: 9, Expiry: now.Add(time.Minute).Unix()}
	old := []byte("casd/store/1.0\x00" + string(receiver) + root.KeyString())
	old = binary.BigEndian.AppendUint64(old, o.Bytes)
	old = binary.BigEndian.AppendUint64(old, uint64(o.Expiry))
	protocol.SignOffer(owner, receiver, o)
	if !ed25519.Verify(o.Owner, old, o.Sig) {
		t.Fatal("an offer without lease does not sign the pre-lease bytes")
	}
	o.Lease = now.Add(time.Hour).Unix()
	if err := protocol.VerifyOffer(receiver, o, now); !errors.Is(err, protocol.ErrBadSignature) {
		t.Fatalf("lease added after signing: %v, want ErrBadSignature", err)
	}
	protocol.SignOffer(owner, receiver, o)
	if err := protocol.VerifyOffer(receiver, o, now); err != nil {
		t.Fatalf("offer with lease: %v", err)
	}
	withLease := binary.BigEndian.AppendUint64(old, uint64(o.Lease))
	if !ed25519.Verify(o.Owner, withLease, o.Sig) {
		t.Fatal("an offer with lease does not sign the bytes docs/wire.md gives")
	}
	o.Lease++
	if err := protocol.VerifyOffer(receiver, o, now); !errors.Is(err, protocol.ErrBadSignature) {
		t.Fatalf("lease changed after signing: %v, want ErrBadSignature", err)
	}
}

// signedCase is one owner-signed message kind, driven generically.
type signedCase struct {
	name   string
	sign   func(priv ed25519.PrivateKey, r peer.ID, signedAt time.Time) pb.Message
	verify func(r peer.ID, m pb.Message, now time.Time) error
	timed  bool // the signed time must be within MaxClockSkew
	// tampers change one signed field of m.
	tampers map[string]func(m pb.Message)
}

func signedCases(t *testing.T) []signedCase {
	root := makeBlock(t, []byte("root")).Cid
	other := makeBlock(t, []byte("other")).Cid
	return []signedCase{{
		name: "Lease",
		sign: func(priv ed25519.PrivateKey, r peer.ID, at time.Time) pb.Message {
			l := &pb.Lease{Root: root, Expiry: at.Add(48 * time.Hour).Unix()}
			protocol.SignLease(priv, r, l)
			return l
		},
		verify: func(r peer.ID, m pb.Message, _ time.Time) error { return protocol.VerifyLease(r, m.(*pb.Lease)) },
		tampers: map[string]func(pb.Message){
			"root":   func(m pb.Message) { m.(*pb.Lease).Root = other },
			"expiry": func(m pb.Message) { m.(*pb.Lease).Expiry++ },
		},
	}, {
		name: "Remove",
		sign: func(priv ed25519.PrivateKey, r peer.ID, at time.Time) pb.Message {
			rm := &pb.Remove{Root: root, Time: at.Unix()}
			protocol.SignRemove(priv, r, rm)
			return rm
		},
		verify: func(r peer.ID, m pb.Message, now time.Time) error {
			return protocol.VerifyRemove(r, m.(*pb.Remove), now)
		},
		timed: true,
		tampers: map[string]func(pb.Message){
			"root": func(m pb.Message) { m.(*pb.Remove).Root = other },
			"time": func(m pb.Message) { m.(*pb.Remove).Time++ },
		},
	}, {
		name: "TreeChallenge",
		sign: func(priv ed25519.PrivateKey, r peer.ID, at time.Time) pb.Message {
			tc := &pb.TreeChallenge{Root: root, Nonce: protocol.Nonce(), Time: at.Unix()}
			protocol.SignTreeChallenge(priv, r, tc)
			return tc
		},
		verify: func(r peer.ID, m pb.Message, now time.Time) error {
			return protocol.VerifyTreeChallenge(r, m.(*pb.TreeChallenge), now)
		},
		timed: true,
		tampers: map[string]func(pb.Message){
			"root":  func(m pb.Message) { m.(*pb.TreeChallenge).Root = other },
			"time":  func(m pb.Message) { m.(*pb.TreeChallenge).Time++ },
			"nonce": func(m pb.Message) { m.(*pb.TreeChallenge).Nonce[7] ^= 1 },
		},
	}}
}

// TestSignedMessages: Lease, Remove and TreeChallenge verify only for the
// receiver they were signed for, with every signed field as signed, by
// the key they carry; Remove and TreeChallenge only within an hour of the
// receiver's clock, and a forgery is a bad signature whatever its time.
func TestSignedMessages(t *testing.T) {
	receiver := peer.ID("receiver")
	for _, sc := range signedCases(t) {
		t.Run(sc.name, func(t *testing.T) {
			owner := newKey(t)
			now := time.Now()
			if err := sc.verify(receiver, sc.sign(owner, receiver, now), now); err != nil {
				t.Fatalf("genuine: %v", err)
			}
			bad := map[string]pb.Message{
				"other receiver": sc.sign(owner, "someone else", now),
				"other key":      swapKey(sc.sign(newKey(t), receiver, now), owner),
			}
			for field, tamper := range sc.tampers {
				m := sc.sign(owner, receiver, now)
				tamper(m)
				bad[field+" changed"] = m
			}
			for name, m := range bad {
				if err := sc.verify(receiver, m, now); !errors.Is(err, protocol.ErrBadSignature) {
					t.Errorf("%s: %v, want ErrBadSignature", name, err)
				}
			}
			// A forgery signed long ago is still a forgery (a strike),
			// not merely stale.
			old := swapKey(sc.sign(newKey(t), receiver, now.Add(-3*time.Hour)), owner)
			if err := sc.verify(receiver, old, now); !errors.Is(err, protocol.ErrBadSignature) {
				t.Errorf("old forgery: %v, want ErrBadSignature", err)
			}
			checkWindow(t, sc, owner, receiver, now)
		})
	}
}

// checkWindow: a signed time just inside MaxClockSkew passes, just
// outside it (either way) is ErrStale for timed messages only.
func checkWindow(t *testing.T, sc signedCase, owner ed25519.PrivateKey, receiver peer.ID, now time.Time) {
	t.Helper()
	skew := protocol.MaxClockSkew
	for _, d := range []time.Duration{skew - time.Minute, -skew + time.Minute} {
		if err := sc.verify(receiver, sc.sign(owner, receiver, now.Add(d)), now); err != nil {
			t.Errorf("signed %v from now: %v", d, err)
		}
	}
	for _, d := range []time.Duration{skew + time.Minute, -skew - time.Minute} {
		err := sc.verify(receiver, sc.sign(owner, receiver, now.Add(d)), now)
		switch {
		case sc.timed && !errors.Is(err, protocol.ErrStale):
			t.Errorf("signed %v from now: %v, want ErrStale", d, err)
		case !sc.timed && err != nil:
			t.Errorf("signed %v from now: %v (not a timed message)", d, err)
		}
	}
}

// swapKey replaces the owner key of a signed message with pub's.
func swapKey(m pb.Message, priv ed25519.PrivateKey) pb.Message {
	pub := priv.Public().(ed25519.PublicKey)
	switch m := m.(type) {
	case *pb.Lease:
		m.Owner = pub
	case *pb.Remove:
		m.Owner = pub
	case *pb.TreeChallenge:
		m.Owner = pub
	}
	return m
}
