package pb

import (
	"github.com/ipfs/go-cid"
	"google.golang.org/protobuf/encoding/protowire"
	"google.golang.org/protobuf/proto"

	"github.com/casd/casd/protocol/pb/internal/wire"
)

var _ Message = (*Block)(nil)

// Block carries one block, on both protocols.
type Block struct {
	Cid  cid.Cid
	Data []byte
}

// Type implements [Message].
func (*Block) Type() Type { return TypeBlock }

// Size implements [Message].
func (m *Block) Size() int { return proto.Size(m.toWire()) }

// AppendBody implements [Message].
func (m *Block) AppendBody(b []byte) []byte { return appendWire(b, m.toWire()) }

// AppendMarshalHeader appends the envelope encoding of m without the
// trailing bytes of m.Data: AppendMarshalHeader(b) followed by m.Data equals
// AppendMarshal(b, m).
func (m *Block) AppendMarshalHeader(b []byte) []byte {
	b = appendEnvelopeHeader(b, TypeBlock, m.Size())
	b = appendWire(b, &wire.Block{Cid: cidBytes(m.Cid)})
	if len(m.Data) > 0 {
		b = protowire.AppendTag(b, 2, protowire.BytesType)
		b = protowire.AppendVarint(b, uint64(len(m.Data)))
	}
	return b
}

// UnmarshalBody implements [Message].
func (m *Block) UnmarshalBody(b []byte) error {
	var w wire.Block
	if err := unmarshalWire(b, &w); err != nil {
		return err
	}
	c, err := castCid(w.Cid)
	if err != nil {
		return err
	}
	*m = Block{Cid: c, Data: nilIfEmpty(w.Data)}
	return nil
}

func (m *Block) toWire() *wire.Block { return &wire.Block{Cid: cidBytes(m.Cid), Data: m.Data} }
