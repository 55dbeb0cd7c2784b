// Package pb holds the wire messages of the casd stream protocols
// /cas/get/1.0, /cas/store/1.0 and /cas/peers/1.0, including the storage
// challenges ([Challenge], [TreeChallenge], [Proof]) of /cas/get/1.0, the
// owner's lease renewals and removals ([Lease], [Remove]) of
// /cas/store/1.0 and the signed peer records ([PeerList]) of
// /cas/peers/1.0.
//
// cas.proto defines their encoding (protocol buffers, proto3) and
// docs/wire.md the protocols. Each frame on a stream carries one
// [Envelope]: a [Type] and the encoded body of a message of that type.
// [Marshal] and [Unmarshal] convert between a typed [Message] and an
// envelope.
//
// # Messages
//
// The Go types here carry parsed CIDs ([cid.Cid]) rather than bytes. The
// envelope and [Block], which carries up to 4 MiB of data, are encoded and
// decoded by hand (the fast path: no copy of the data either way); the
// other messages go through the code protoc-gen-go generates from
// cas.proto, then are checked and converted. Tests pin both paths to the
// same bytes.
//
// # Decoding rules
//
// Unknown fields are skipped, so a newer peer may add fields. Malformed
// input is an error wrapping [ErrMalformed]: a truncated or overlong
// varint, a length running past the end, a field number of 0 or above
// 2^29-1, a stray end-group, a known field with the wrong wire type, a CID
// that does not parse or is not CIDv1 raw sha2-256 (see
// [blockstore.CheckCid]), a string that is not UTF-8, an empty want or
// more than [MaxWant] wants, a [Challenge] without both CIDs or whose
// nonce is not [NonceSize] bytes, a [Proof] that is not [ProofSize] bytes,
// a [Lease], [Remove] or [TreeChallenge] without a root, with an owner key
// that is not [OwnerKeySize] bytes or a signature that is not [SigSize]
// bytes, a [TreeChallenge] whose nonce is not [NonceSize] bytes, an empty
// record in a [PeerList].
// A singular field that appears twice takes its last value, which alone is
// checked. Decoded byte slices may alias the input
// buffer (those of a [Block] and of an [Envelope] do); the caller must not
// modify that buffer while the message is in use. Zero-length bytes decode
// to nil, so that encoding is canonical: decoding, encoding and decoding
// again yields an equal value.
//
// Size limits on whole frames are the caller's job (package protocol).
package pb

import (
	"errors"
	"fmt"
	"slices"

	"github.com/casd/casd/protocol/pb/internal/wire"
)

// ErrMalformed is wrapped by every decoding error.
var ErrMalformed = errors.New("pb: malformed message")

// MaxWant is the largest number of CIDs one [GetRequest] may ask for.
const MaxWant = 256

// Type identifies the message carried in an [Envelope].
type Type uint64

// The message types, numbered by MessageType in cas.proto. Zero is never
// valid, so an empty frame is an error.
const (
	TypeGetRequest    = Type(wire.MessageType_MESSAGE_TYPE_GET_REQUEST)
	TypeBlock         = Type(wire.MessageType_MESSAGE_TYPE_BLOCK)
	TypeMissing       = Type(wire.MessageType_MESSAGE_TYPE_MISSING)
	TypeDone          = Type(wire.MessageType_MESSAGE_TYPE_DONE)
	TypeStoreOffer    = Type(wire.MessageType_MESSAGE_TYPE_STORE_OFFER)
	TypeStoreReply    = Type(wire.MessageType_MESSAGE_TYPE_STORE_REPLY)
	TypeStoreEnd      = Type(wire.MessageType_MESSAGE_TYPE_STORE_END)
	TypeStoreAck      = Type(wire.MessageType_MESSAGE_TYPE_STORE_ACK)
	TypeChallenge     = Type(wire.MessageType_MESSAGE_TYPE_CHALLENGE)
	TypeProof         = Type(wire.MessageType_MESSAGE_TYPE_PROOF)
	TypeLease         = Type(wire.MessageType_MESSAGE_TYPE_LEASE)
	TypeRemove        = Type(wire.MessageType_MESSAGE_TYPE_REMOVE)
	TypeTreeChallenge = Type(wire.MessageType_MESSAGE_TYPE_TREE_CHALLENGE)
	TypePeerList      = Type(wire.MessageType_MESSAGE_TYPE_PEER_LIST)
)

var typeNames = [...]string{
	TypeGetRequest:    "GetRequest",
	TypeBlock:         "Block",
	TypeMissing:       "Missing",
	TypeDone:          "Done",
	TypeStoreOffer:    "StoreOffer",
	TypeStoreReply:    "StoreReply",
	TypeStoreEnd:      "StoreEnd",
	TypeStoreAck:      "StoreAck",
	TypeChallenge:     "Challenge",
	TypeProof:         "Proof",
	TypeLease:         "Lease",
	TypeRemove:        "Remove",
	TypeTreeChallenge: "TreeChallenge",
	TypePeerList:      "PeerList",
}

// String returns the message name of t.
func (t Type) String() string {
	if t < Type(len(typeNames)) && typeNames[t] != "" {
		return typeNames[t]
	}
	return fmt.Sprintf("Type(%d)", uint64(t))
}

// Message is implemented by every wire message in this package.
type Message interface {
	// Type reports the envelope type of the message.
	Type() Type
	// Size reports the length of the encoded body.
	Size() int
	// AppendBody appends the encoded body (without envelope) to b.
	AppendBody(b []byte) []byte
	// UnmarshalBody decodes a body produced by AppendBody, replacing the
	// receiver's contents. Byte slices in the result may alias b.
	UnmarshalBody(b []byte) error
}

// New returns an empty message of type t, or nil if t is unknown.
func New(t Type) Message {
	switch t {
	case TypeGetRequest:
		return new(GetRequest)
	case TypeBlock:
		return new(Block)
	case TypeMissing:
		return new(Missing)
	case TypeDone:
		return new(Done)
	case TypeStoreOffer:
		return new(StoreOffer)
	case TypeStoreReply:
		return new(StoreReply)
	case TypeStoreEnd:
		return new(StoreEnd)
	case TypeStoreAck:
		return new(StoreAck)
	case TypeChallenge:
		return new(Challenge)
	case TypeProof:
		return new(Proof)
	case TypeLease:
		return new(Lease)
	case TypeRemove:
		return new(Remove)
	case TypeTreeChallenge:
		return new(TreeChallenge)
	case TypePeerList:
		return new(PeerList)
	default:
		return nil
	}
}

// Marshal encodes m in an envelope, ready to be framed.
func Marshal(m Message) []byte {
	return AppendMarshal(nil, m)
}

// AppendMarshal appends the envelope encoding of m to b. The body is
// written in place, without an intermediate copy.
func AppendMarshal(b []byte, m Message) []byte {
	size := m.Size()
	b = slices.Grow(b, envelopeSize(m.Type(), size))
	b = appendEnvelopeHeader(b, m.Type(), size)
	return m.AppendBody(b)
}

// Unmarshal decodes an envelope and its body. An unknown type is an error
// wrapping [ErrMalformed]. Byte slices in the result may alias b.
func Unmarshal(b []byte) (Message, error) {
	var e Envelope
	if err := e.Unmarshal(b); err != nil {
		return nil, err
	}
	m := New(e.Type)
	if m == nil {
		return nil, fmt.Errorf("%w: unknown message type %d", ErrMalformed, uint64(e.Type))
	}
	if err := m.UnmarshalBody(e.Body); err != nil {
		return nil, fmt.Errorf("decode %v: %w", e.Type, err)
	}
	return m, nil
}
