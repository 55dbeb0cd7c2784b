package pb

import (
	"fmt"

	"google.golang.org/protobuf/encoding/protowire"

	"github.com/casd/casd/protocol/pb/internal/wire"
)

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
	return len(appendEnvelopeHeader(make([]byte, 0, 32), t, body)) + body
}

func appendEnvelopeHeader(b []byte, t Type, body int) []byte {
	b = protowire.AppendTag(b, 1, protowire.VarintType)
	b = protowire.AppendVarint(b, uint64(t))
	b = protowire.AppendTag(b, 2, protowire.BytesType)
	return protowire.AppendVarint(b, uint64(body))
}

// AppendMarshal appends the encoding of e to b.
func (e *Envelope) AppendMarshal(b []byte) []byte {
	t := uint64(e.Type)
	body := e.Body
	if body == nil {
		body = []byte{}
	}
	return appendWire(b, &wire.Envelope{Type: &t, Body: body})
}

// Unmarshal decodes an envelope. A missing or zero type is an error; the
// type is not checked against the known types (see [Unmarshal]).
func (e *Envelope) Unmarshal(b []byte) error {
	var w wire.Envelope
	if err := unmarshalWire(b, &w); err != nil {
		return err
	}
	*e = Envelope{Type: Type(w.GetType()), Body: nilIfEmpty(w.Body)}
	if e.Type == 0 {
		return fmt.Errorf("%w: envelope without type", ErrMalformed)
	}
	return nil
}
