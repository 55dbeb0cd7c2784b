package pb

import (
	"fmt"

	"github.com/ipfs/go-cid"
	"google.golang.org/protobuf/proto"

	"github.com/casd/casd/protocol/pb/internal/wire"
)

// Sizes of the storage challenge's fields.
const (
	// NonceSize is the length of [Challenge.Nonce].
	NonceSize = 32
	// ProofSize is the length of [Proof.Proof] (a SHA-256 digest).
	ProofSize = 32
)

var (
	_ Message = (*Challenge)(nil)
	_ Message = (*Proof)(nil)
)

// Challenge asks on /cas/get/1.0 for proof that the server holds the block
// Cid of the tree under Root; docs/wire.md ("Storage challenge") defines
// the answer. Both CIDs are required and the nonce is exactly [NonceSize]
// bytes: anything else is malformed.
type Challenge struct {
	Root  cid.Cid
	Cid   cid.Cid
	Nonce [NonceSize]byte
}

// Type implements [Message].
func (*Challenge) Type() Type { return TypeChallenge }

// Size implements [Message].
func (m *Challenge) Size() int { return proto.Size(m.toWire()) }

// AppendBody implements [Message]. An undefined CID is encoded as an
// absent field, which decodes as an error.
func (m *Challenge) AppendBody(b []byte) []byte { return appendWire(b, m.toWire()) }

// UnmarshalBody implements [Message].
func (m *Challenge) UnmarshalBody(b []byte) error {
	var w wire.Challenge
	if err := unmarshalWire(b, &w); err != nil {
		return err
	}
	root, err := requiredCid("root", w.Root)
	if err != nil {
		return err
	}
	c, err := requiredCid("cid", w.Cid)
	if err != nil {
		return err
	}
	if len(w.Nonce) != NonceSize {
		return fmt.Errorf("%w: challenge nonce of %d bytes, want %d", ErrMalformed, len(w.Nonce), NonceSize)
	}
	*m = Challenge{Root: root, Cid: c}
	copy(m.Nonce[:], w.Nonce)
	return nil
}

func (m *Challenge) toWire() *wire.Challenge {
	return &wire.Challenge{Root: cidBytes(m.Root), Cid: cidBytes(m.Cid), Nonce: m.Nonce[:]}
}

// Proof answers a [Challenge] whose block the server holds.
type Proof struct {
	Proof [ProofSize]byte
}

// Type implements [Message].
func (*Proof) Type() Type { return TypeProof }

// Size implements [Message].
func (m *Proof) Size() int { return proto.Size(m.toWire()) }

// AppendBody implements [Message].
func (m *Proof) AppendBody(b []byte) []byte { return appendWire(b, m.toWire()) }

// UnmarshalBody implements [Message]. A proof that is not exactly
// [ProofSize] bytes is malformed.
func (m *Proof) UnmarshalBody(b []byte) error {
	var w wire.Proof
	if err := unmarshalWire(b, &w); err != nil {
		return err
	}
	if len(w.Proof) != ProofSize {
		return fmt.Errorf("%w: proof of %d bytes, want %d", ErrMalformed, len(w.Proof), ProofSize)
	}
	*m = Proof{}
	copy(m.Proof[:], w.Proof)
	return nil
}

func (m *Proof) toWire() *wire.Proof { return &wire.Proof{Proof: m.Proof[:]} }

// requiredCid parses a CID field that must be present.
func requiredCid(name string, b []byte) (cid.Cid, error) {
	if len(b) == 0 {
		return cid.Undef, fmt.Errorf("%w: no %s", ErrMalformed, name)
	}
	return castCid(b)
}
