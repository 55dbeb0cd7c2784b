package pb

import (
	"fmt"
	"slices"

	"github.com/ipfs/go-cid"
	"google.golang.org/protobuf/encoding/protowire"
	"google.golang.org/protobuf/proto"
	"google.golang.org/protobuf/reflect/protoreflect"

	"github.com/casd/casd/protocol/pb/internal/wire"
)

// The fast path: the envelope and Block are encoded and decoded here by
// hand, because the generated code copies bytes fields both ways (a 4 MiB
// block twice on decoding, envelope and body), and cannot write a frame's
// header apart from its data. docs/wire.md ("Fast path") has the numbers.
// The field numbers come from cas.proto's descriptors, and tests check
// that both paths agree byte for byte and accept the same input.

var (
	_ Message = (*Block)(nil)

	envelopeType = fieldOf(&wire.Envelope{}, "type", protoreflect.Uint64Kind)
	envelopeBody = fieldOf(&wire.Envelope{}, "body", protoreflect.BytesKind)
	blockCid     = fieldOf(&wire.Block{}, "cid", protoreflect.BytesKind)
	blockData    = fieldOf(&wire.Block{}, "data", protoreflect.BytesKind)
)

// field is a field of the fast path: its number, and the wire type of the
// kind the fast path codes.
type field struct {
	num protowire.Number
	typ protowire.Type
}

// fieldOf looks up a field in cas.proto's descriptor of m, and panics if
// it is gone or its kind changed: the hand-written codec would be wrong.
func fieldOf(m proto.Message, name protoreflect.Name, kind protoreflect.Kind) field {
	d := m.ProtoReflect().Descriptor()
	f := d.Fields().ByName(name)
	if f == nil || f.Kind() != kind || f.Cardinality() == protoreflect.Repeated {
		panic(fmt.Sprintf("pb: the fast path codes %s.%s as singular %v; update it to cas.proto", d.Name(), name, kind))
	}
	typ := protowire.BytesType
	if kind == protoreflect.Uint64Kind {
		typ = protowire.VarintType
	}
	return field{f.Number(), typ}
}

// Envelope is the frame-level message: a message type and the encoded body
// of a message of that type.
type Envelope struct {
	Type Type
	Body []byte
}

// Size reports the encoded length of e.
func (e *Envelope) Size() int {
	return envelopeSize(e.Type, len(e.Body))
}

func envelopeSize(t Type, body int) int {
	return protowire.SizeTag(envelopeType.num) + protowire.SizeVarint(uint64(t)) +
		protowire.SizeTag(envelopeBody.num) + protowire.SizeBytes(body)
}

// appendEnvelopeHeader appends an envelope up to its body of size bytes.
// Both fields are always written (cas.proto marks them optional).
func appendEnvelopeHeader(b []byte, t Type, size int) []byte {
	b = protowire.AppendTag(b, envelopeType.num, envelopeType.typ)
	b = protowire.AppendVarint(b, uint64(t))
	b = protowire.AppendTag(b, envelopeBody.num, envelopeBody.typ)
	return protowire.AppendVarint(b, uint64(size))
}

// AppendMarshal appends the encoding of e to b.
func (e *Envelope) AppendMarshal(b []byte) []byte {
	return append(appendEnvelopeHeader(b, e.Type, len(e.Body)), e.Body...)
}

// Unmarshal decodes an envelope. A missing or zero type is an error; the
// type is not checked against the known types (see [Unmarshal]). Body
// aliases b.
func (e *Envelope) Unmarshal(b []byte) error {
	*e = Envelope{}
	err := scan(b, []field{envelopeType, envelopeBody}, func(i int, v uint64, p []byte) {
		if i == 0 {
			e.Type = Type(v)
		} else {
			e.Body = nilIfEmpty(p)
		}
	})
	if err != nil {
		return err
	}
	if e.Type == 0 {
		return fmt.Errorf("%w: envelope without type", ErrMalformed)
	}
	return nil
}

// Block carries one block, on both protocols.
type Block struct {
	Cid  cid.Cid
	Data []byte
}

// Type implements [Message].
func (*Block) Type() Type { return TypeBlock }

// Size implements [Message].
func (m *Block) Size() int { return m.headerSize() + len(m.Data) }

// headerSize is the encoded size of m without the bytes of Data.
func (m *Block) headerSize() int {
	n := 0
	if m.Cid.Defined() {
		n += protowire.SizeTag(blockCid.num) + protowire.SizeBytes(m.Cid.ByteLen())
	}
	if len(m.Data) > 0 {
		n += protowire.SizeTag(blockData.num) + protowire.SizeVarint(uint64(len(m.Data)))
	}
	return n
}

// AppendBody implements [Message].
func (m *Block) AppendBody(b []byte) []byte {
	return append(m.appendHeader(b), m.Data...)
}

// appendHeader appends the encoding of m without the bytes of Data.
// Undefined Cid and empty Data are omitted, as proto3 does.
func (m *Block) appendHeader(b []byte) []byte {
	if m.Cid.Defined() {
		b = protowire.AppendTag(b, blockCid.num, blockCid.typ)
		b = protowire.AppendString(b, m.Cid.KeyString())
	}
	if len(m.Data) > 0 {
		b = protowire.AppendTag(b, blockData.num, blockData.typ)
		b = protowire.AppendVarint(b, uint64(len(m.Data)))
	}
	return b
}

// AppendMarshalHeader appends the envelope encoding of m without the
// trailing bytes of m.Data: AppendMarshalHeader(b) followed by m.Data equals
// AppendMarshal(b, m). It lets a sender write a large block without copying
// it into a frame buffer.
func (m *Block) AppendMarshalHeader(b []byte) []byte {
	return m.appendHeader(appendEnvelopeHeader(b, TypeBlock, m.Size()))
}

// UnmarshalBody implements [Message]. Data aliases b.
func (m *Block) UnmarshalBody(b []byte) error {
	*m = Block{}
	var c []byte
	err := scan(b, []field{blockCid, blockData}, func(i int, _ uint64, p []byte) {
		if i == 0 {
			c = p
		} else {
			m.Data = nilIfEmpty(p)
		}
	})
	if err != nil {
		return err
	}
	m.Cid, err = castCid(c)
	return err
}

// scan walks the fields of the message b for the fast path, with the rules
// of [unmarshalWire]: it calls set(i, v, p) with the value of each field
// numbered fields[i].num (v for a varint, p for bytes, capacity clipped),
// skips unknown fields, and rejects malformed input and a known field of
// another wire type.
func scan(b []byte, fields []field, set func(i int, v uint64, p []byte)) error {
	for len(b) > 0 {
		num, typ, n := protowire.ConsumeTag(b)
		if n < 0 {
			return fmt.Errorf("%w: tag: %v", ErrMalformed, protowire.ParseError(n))
		}
		if num > protowire.MaxValidNumber {
			return fmt.Errorf("%w: field number %d", ErrMalformed, num)
		}
		b = b[n:]
		i := slices.IndexFunc(fields, func(f field) bool { return f.num == num })
		switch {
		case i < 0:
			n = protowire.ConsumeFieldValue(num, typ, b)
		case typ != fields[i].typ:
			return fmt.Errorf("%w: wire type %d for field %d", ErrMalformed, typ, num)
		case typ == protowire.VarintType:
			var v uint64
			if v, n = protowire.ConsumeVarint(b); n >= 0 {
				set(i, v, nil)
			}
		default:
			var p []byte
			if p, n = protowire.ConsumeBytes(b); n >= 0 {
				set(i, 0, slices.Clip(p))
			}
		}
		if n < 0 {
			return fmt.Errorf("%w: field %d: %v", ErrMalformed, num, protowire.ParseError(n))
		}
		b = b[n:]
	}
	return nil
}
