package pb

import (
	"fmt"

	"github.com/ipfs/go-cid"
	"google.golang.org/protobuf/proto"

	"github.com/casd/casd/protocol/pb/internal/wire"
)

// Sizes of the owner's key and signature in [Lease], [Remove] and
// [TreeChallenge] (Ed25519). Unlike [StoreOffer], whose lengths the
// protocol layer checks, these messages are malformed with any other
// length: they are new, and no peer sends them otherwise.
const (
	// OwnerKeySize is the length of an owner's Ed25519 public key.
	OwnerKeySize = 32
	// SigSize is the length of an Ed25519 signature.
	SigSize = 64
)

var (
	_ Message = (*Lease)(nil)
	_ Message = (*Remove)(nil)
	_ Message = (*TreeChallenge)(nil)
)

// Lease renews the lease of a replica: the first and only client message
// of a /cas/store/1.0 stream, answered by [StoreReply]. Root is required,
// Owner is [OwnerKeySize] bytes and Sig [SigSize] bytes; docs/wire.md
// defines the signed bytes.
type Lease struct {
	Root   cid.Cid
	Owner  []byte // Ed25519 public key
	Expiry int64  // unix seconds: the lease's new expiry
	Sig    []byte // Ed25519 signature
}

// Type implements [Message].
func (*Lease) Type() Type { return TypeLease }

// Size implements [Message].
func (m *Lease) Size() int { return proto.Size(m.toWire()) }

// AppendBody implements [Message].
func (m *Lease) AppendBody(b []byte) []byte { return appendWire(b, m.toWire()) }

// UnmarshalBody implements [Message].
func (m *Lease) UnmarshalBody(b []byte) error {
	var w wire.Lease
	if err := unmarshalWire(b, &w); err != nil {
		return err
	}
	root, err := signedFields("lease", w.Root, w.Owner, w.Sig)
	if err != nil {
		return err
	}
	*m = Lease{Root: root, Owner: w.Owner, Expiry: w.Expiry, Sig: w.Sig}
	return nil
}

func (m *Lease) toWire() *wire.Lease {
	return &wire.Lease{Root: cidBytes(m.Root), Owner: m.Owner, Expiry: m.Expiry, Sig: m.Sig}
}

// Remove asks the receiver to drop its replica of Root: the first and
// only client message of a /cas/store/1.0 stream, answered by
// [StoreReply]. Field rules are those of [Lease].
type Remove struct {
	Root  cid.Cid
	Owner []byte // Ed25519 public key
	Time  int64  // unix seconds: when the owner signed
	Sig   []byte // Ed25519 signature
}

// Type implements [Message].
func (*Remove) Type() Type { return TypeRemove }

// Size implements [Message].
func (m *Remove) Size() int { return proto.Size(m.toWire()) }

// AppendBody implements [Message].
func (m *Remove) AppendBody(b []byte) []byte { return appendWire(b, m.toWire()) }

// UnmarshalBody implements [Message].
func (m *Remove) UnmarshalBody(b []byte) error {
	var w wire.Remove
	if err := unmarshalWire(b, &w); err != nil {
		return err
	}
	root, err := signedFields("remove", w.Root, w.Owner, w.Sig)
	if err != nil {
		return err
	}
	*m = Remove{Root: root, Owner: w.Owner, Time: w.Time, Sig: w.Sig}
	return nil
}

func (m *Remove) toWire() *wire.Remove {
	return &wire.Remove{Root: cidBytes(m.Root), Owner: m.Owner, Time: m.Time, Sig: m.Sig}
}

// TreeChallenge asks on /cas/get/1.0 for one proof over every block of
// Root's tree, answered by [Proof] or [Missing]; docs/wire.md ("Tree
// challenge") defines the proof. Field rules are those of [Lease], and
// the nonce is exactly [NonceSize] bytes.
type TreeChallenge struct {
	Root  cid.Cid
	Nonce [NonceSize]byte
	Owner []byte // Ed25519 public key
	Time  int64  // unix seconds: when the owner signed
	Sig   []byte // Ed25519 signature
}

// Type implements [Message].
func (*TreeChallenge) Type() Type { return TypeTreeChallenge }

// Size implements [Message].
func (m *TreeChallenge) Size() int { return proto.Size(m.toWire()) }

// AppendBody implements [Message].
func (m *TreeChallenge) AppendBody(b []byte) []byte { return appendWire(b, m.toWire()) }

// UnmarshalBody implements [Message].
func (m *TreeChallenge) UnmarshalBody(b []byte) error {
	var w wire.TreeChallenge
	if err := unmarshalWire(b, &w); err != nil {
		return err
	}
	root, err := signedFields("tree challenge", w.Root, w.Owner, w.Sig)
	if err != nil {
		return err
	}
	if len(w.Nonce) != NonceSize {
		return fmt.Errorf("%w: tree challenge nonce of %d bytes, want %d", ErrMalformed, len(w.Nonce), NonceSize)
	}
	*m = TreeChallenge{Root: root, Owner: w.Owner, Time: w.Time, Sig: w.Sig}
	copy(m.Nonce[:], w.Nonce)
	return nil
}

func (m *TreeChallenge) toWire() *wire.TreeChallenge {
	return &wire.TreeChallenge{Root: cidBytes(m.Root), Nonce: m.Nonce[:], Owner: m.Owner,
		Time: m.Time, Sig: m.Sig}
}

// signedFields checks the fields every owner-signed message shares: a
// root, an owner key of [OwnerKeySize] bytes and a signature of [SigSize]
// bytes. It returns the parsed root.
func signedFields(name string, root, owner, sig []byte) (cid.Cid, error) {
	c, err := requiredCid(name+" root", root)
	if err != nil {
		return cid.Undef, err
	}
	if len(owner) != OwnerKeySize {
		return cid.Undef, fmt.Errorf("%w: %s owner key of %d bytes, want %d", ErrMalformed, name, len(owner), OwnerKeySize)
	}
	if len(sig) != SigSize {
		return cid.Undef, fmt.Errorf("%w: %s signature of %d bytes, want %d", ErrMalformed, name, len(sig), SigSize)
	}
	return c, nil
}
