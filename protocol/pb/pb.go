// Package pb holds the wire messages of the casd stream protocols
// /cas/get/1.0 and /cas/store/1.0.
//
// The messages are protocol-buffer encoded by hand with
// [google.golang.org/protobuf/encoding/protowire]: there is no .proto file
// and no generated code, and the exact layout is specified in docs/wire.md.
// Each frame on a stream carries one [Envelope]: a [Type] and the encoded
// body of a message of that type. [Marshal] and [Unmarshal] convert between
// a typed [Message] and an envelope.
//
// # Decoding rules
//
// Unknown fields are skipped, so a newer peer may add fields. Malformed
// input is an error: a truncated or overlong varint, a length running past
// the end, a known field with the wrong wire type, a CID that does not
// parse, a string that is not UTF-8, more than [MaxWant] wants. Decoded byte
// slices alias the input buffer; the caller must not reuse that buffer while
// the message is in use. Zero-length bytes decode to nil, so that encoding
// is canonical: decoding, encoding and decoding again yields an equal value.
//
// Size limits on whole frames are the caller's job (package protocol).
package pb

import (
	"errors"
	"fmt"
	"unicode/utf8"

	"github.com/ipfs/go-cid"
	"google.golang.org/protobuf/encoding/protowire"
)

// ErrMalformed is wrapped by every decoding error.
var ErrMalformed = errors.New("pb: malformed message")

// MaxWant is the largest number of CIDs one [GetRequest] may ask for.
const MaxWant = 256

// Type identifies the message carried in an [Envelope].
type Type uint64

// The message types. Zero is never valid, so an empty frame is an error.
const (
	TypeGetRequest Type = 1
	TypeBlock      Type = 2
	TypeMissing    Type = 3
	TypeDone       Type = 4
	TypeStoreOffer Type = 5
	TypeStoreReply Type = 6
	TypeStoreEnd   Type = 7
	TypeStoreAck   Type = 8
)

// String returns the message name of t.
func (t Type) String() string {
	switch t {
	case TypeGetRequest:
		return "GetRequest"
	case TypeBlock:
		return "Block"
	case TypeMissing:
		return "Missing"
	case TypeDone:
		return "Done"
	case TypeStoreOffer:
		return "StoreOffer"
	case TypeStoreReply:
		return "StoreReply"
	case TypeStoreEnd:
		return "StoreEnd"
	case TypeStoreAck:
		return "StoreAck"
	default:
		return fmt.Sprintf("Type(%d)", uint64(t))
	}
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
	// receiver's contents. Byte slices in the result alias b.
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
	default:
		return nil
	}
}

// Envelope is the frame-level message: field 1 is the type, field 2 the body.
type Envelope struct {
	Type Type
	Body []byte
}

// Size reports the encoded length of e.
func (e *Envelope) Size() int {
	return envelopeSize(e.Type, len(e.Body))
}

func envelopeSize(t Type, body int) int {
	return protowire.SizeTag(1) + protowire.SizeVarint(uint64(t)) +
		protowire.SizeTag(2) + protowire.SizeBytes(body)
}

// AppendMarshal appends the encoding of e to b.
func (e *Envelope) AppendMarshal(b []byte) []byte {
	b = protowire.AppendTag(b, 1, protowire.VarintType)
	b = protowire.AppendVarint(b, uint64(e.Type))
	b = protowire.AppendTag(b, 2, protowire.BytesType)
	return protowire.AppendBytes(b, e.Body)
}

// Unmarshal decodes an envelope. A missing or zero type is an error; the
// type is not checked against the known types (see [Unmarshal]).
func (e *Envelope) Unmarshal(b []byte) error {
	*e = Envelope{}
	d := decoder{b: b}
	for !d.done() {
		num, typ, err := d.tag()
		if err != nil {
			return err
		}
		switch num {
		case 1:
			v, err := d.varint(typ)
			if err != nil {
				return err
			}
			e.Type = Type(v)
		case 2:
			v, err := d.bytes(typ)
			if err != nil {
				return err
			}
			e.Body = v
		default:
			if err := d.skip(num, typ); err != nil {
				return err
			}
		}
	}
	if e.Type == 0 {
		return fmt.Errorf("%w: envelope without type", ErrMalformed)
	}
	return nil
}

// Marshal encodes m in an envelope, ready to be framed.
func Marshal(m Message) []byte {
	return AppendMarshal(nil, m)
}

// AppendMarshal appends the envelope encoding of m to b. The body is
// written in place, without an intermediate copy.
func AppendMarshal(b []byte, m Message) []byte {
	size := m.Size()
	if cap(b)-len(b) < envelopeSize(m.Type(), size) {
		nb := make([]byte, len(b), len(b)+envelopeSize(m.Type(), size))
		copy(nb, b)
		b = nb
	}
	b = protowire.AppendTag(b, 1, protowire.VarintType)
	b = protowire.AppendVarint(b, uint64(m.Type()))
	b = protowire.AppendTag(b, 2, protowire.BytesType)
	b = protowire.AppendVarint(b, uint64(size))
	return m.AppendBody(b)
}

// Unmarshal decodes an envelope and its body. An unknown type is an error
// wrapping [ErrMalformed]. Byte slices in the result alias b.
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

// decoder walks the fields of one message.
type decoder struct {
	b []byte
}

func (d *decoder) done() bool { return len(d.b) == 0 }

func (d *decoder) tag() (protowire.Number, protowire.Type, error) {
	num, typ, n := protowire.ConsumeTag(d.b)
	if n < 0 {
		return 0, 0, fmt.Errorf("%w: tag: %v", ErrMalformed, protowire.ParseError(n))
	}
	d.b = d.b[n:]
	return num, typ, nil
}

func (d *decoder) varint(typ protowire.Type) (uint64, error) {
	if typ != protowire.VarintType {
		return 0, fmt.Errorf("%w: wire type %d for varint field", ErrMalformed, typ)
	}
	v, n := protowire.ConsumeVarint(d.b)
	if n < 0 {
		return 0, fmt.Errorf("%w: varint: %v", ErrMalformed, protowire.ParseError(n))
	}
	d.b = d.b[n:]
	return v, nil
}

func (d *decoder) bool(typ protowire.Type) (bool, error) {
	v, err := d.varint(typ)
	return protowire.DecodeBool(v), err
}

// bytes returns a length-delimited field, nil when empty.
func (d *decoder) bytes(typ protowire.Type) ([]byte, error) {
	if typ != protowire.BytesType {
		return nil, fmt.Errorf("%w: wire type %d for bytes field", ErrMalformed, typ)
	}
	v, n := protowire.ConsumeBytes(d.b)
	if n < 0 {
		return nil, fmt.Errorf("%w: bytes: %v", ErrMalformed, protowire.ParseError(n))
	}
	d.b = d.b[n:]
	if len(v) == 0 {
		return nil, nil
	}
	return v[:len(v):len(v)], nil
}

func (d *decoder) string(typ protowire.Type) (string, error) {
	v, err := d.bytes(typ)
	if err != nil {
		return "", err
	}
	if !utf8.Valid(v) {
		return "", fmt.Errorf("%w: string is not UTF-8", ErrMalformed)
	}
	return string(v), nil
}

// cid decodes a CID field; an empty field is cid.Undef.
func (d *decoder) cid(typ protowire.Type) (cid.Cid, error) {
	v, err := d.bytes(typ)
	if err != nil || len(v) == 0 {
		return cid.Undef, err
	}
	c, err := cid.Cast(v)
	if err != nil {
		return cid.Undef, fmt.Errorf("%w: cid: %v", ErrMalformed, err)
	}
	return c, nil
}

func (d *decoder) skip(num protowire.Number, typ protowire.Type) error {
	n := protowire.ConsumeFieldValue(num, typ, d.b)
	if n < 0 {
		return fmt.Errorf("%w: field %d: %v", ErrMalformed, num, protowire.ParseError(n))
	}
	d.b = d.b[n:]
	return nil
}

// Encoding helpers. Zero values are omitted, as in proto3.

func sizeCid(c cid.Cid) int {
	if !c.Defined() {
		return 0
	}
	return 1 + protowire.SizeBytes(c.ByteLen())
}

func appendCid(b []byte, num protowire.Number, c cid.Cid) []byte {
	if !c.Defined() {
		return b
	}
	b = protowire.AppendTag(b, num, protowire.BytesType)
	return protowire.AppendString(b, c.KeyString())
}

func sizeBytes(v []byte) int {
	if len(v) == 0 {
		return 0
	}
	return 1 + protowire.SizeBytes(len(v))
}

func appendBytes(b []byte, num protowire.Number, v []byte) []byte {
	if len(v) == 0 {
		return b
	}
	b = protowire.AppendTag(b, num, protowire.BytesType)
	return protowire.AppendBytes(b, v)
}

func sizeVarint(v uint64) int {
	if v == 0 {
		return 0
	}
	return 1 + protowire.SizeVarint(v)
}

func appendVarint(b []byte, num protowire.Number, v uint64) []byte {
	if v == 0 {
		return b
	}
	b = protowire.AppendTag(b, num, protowire.VarintType)
	return protowire.AppendVarint(b, v)
}

func boolToUint(v bool) uint64 { return protowire.EncodeBool(v) }
