package pb

import (
	"fmt"

	"github.com/ipfs/go-cid"
	"google.golang.org/protobuf/encoding/protowire"
)

var (
	_ Message = (*GetRequest)(nil)
	_ Message = (*Block)(nil)
	_ Message = (*Missing)(nil)
	_ Message = (*Done)(nil)
	_ Message = (*StoreOffer)(nil)
	_ Message = (*StoreReply)(nil)
	_ Message = (*StoreEnd)(nil)
	_ Message = (*StoreAck)(nil)
)

// GetRequest asks for blocks on /cas/get/1.0.
//
//	1 root               bytes (CID), optional
//	2 want               repeated bytes (CID), at most MaxWant
//	3 want_root_complete bool
type GetRequest struct {
	Root             cid.Cid
	Want             []cid.Cid
	WantRootComplete bool
}

// Type implements [Message].
func (*GetRequest) Type() Type { return TypeGetRequest }

// Size implements [Message].
func (m *GetRequest) Size() int {
	n := sizeCid(m.Root)
	for _, c := range m.Want {
		n += 1 + protowire.SizeBytes(c.ByteLen())
	}
	return n + sizeVarint(boolToUint(m.WantRootComplete))
}

// AppendBody implements [Message]. An undefined CID in Want is encoded as an
// empty field, which decodes as an error.
func (m *GetRequest) AppendBody(b []byte) []byte {
	b = appendCid(b, 1, m.Root)
	for _, c := range m.Want {
		b = protowire.AppendTag(b, 2, protowire.BytesType)
		b = protowire.AppendString(b, c.KeyString())
	}
	return appendVarint(b, 3, boolToUint(m.WantRootComplete))
}

// UnmarshalBody implements [Message].
func (m *GetRequest) UnmarshalBody(b []byte) error {
	*m = GetRequest{}
	d := decoder{b: b}
	for !d.done() {
		num, typ, err := d.tag()
		if err != nil {
			return err
		}
		switch num {
		case 1:
			m.Root, err = d.cid(typ)
		case 2:
			var c cid.Cid
			c, err = d.cid(typ)
			if err == nil && !c.Defined() {
				err = fmt.Errorf("%w: empty want", ErrMalformed)
			}
			if err == nil && len(m.Want) == MaxWant {
				err = fmt.Errorf("%w: more than %d wants", ErrMalformed, MaxWant)
			}
			m.Want = append(m.Want, c)
		case 3:
			m.WantRootComplete, err = d.bool(typ)
		default:
			err = d.skip(num, typ)
		}
		if err != nil {
			return err
		}
	}
	return nil
}

// Block carries one block, on both protocols.
//
//	1 cid  bytes (CID)
//	2 data bytes
type Block struct {
	Cid  cid.Cid
	Data []byte
}

// Type implements [Message].
func (*Block) Type() Type { return TypeBlock }

// Size implements [Message].
func (m *Block) Size() int { return sizeCid(m.Cid) + sizeBytes(m.Data) }

// AppendBody implements [Message].
func (m *Block) AppendBody(b []byte) []byte {
	b = appendCid(b, 1, m.Cid)
	return appendBytes(b, 2, m.Data)
}

// AppendMarshalHeader appends the envelope encoding of m without the
// trailing bytes of m.Data: AppendMarshalHeader(b) followed by m.Data equals
// AppendMarshal(b, m). It lets a sender write a large block without copying
// it into a frame buffer.
func (m *Block) AppendMarshalHeader(b []byte) []byte {
	size := m.Size()
	b = protowire.AppendTag(b, 1, protowire.VarintType)
	b = protowire.AppendVarint(b, uint64(TypeBlock))
	b = protowire.AppendTag(b, 2, protowire.BytesType)
	b = protowire.AppendVarint(b, uint64(size))
	b = appendCid(b, 1, m.Cid)
	if len(m.Data) > 0 {
		b = protowire.AppendTag(b, 2, protowire.BytesType)
		b = protowire.AppendVarint(b, uint64(len(m.Data)))
	}
	return b
}

// UnmarshalBody implements [Message]. Data aliases b.
func (m *Block) UnmarshalBody(b []byte) error {
	*m = Block{}
	d := decoder{b: b}
	for !d.done() {
		num, typ, err := d.tag()
		if err != nil {
			return err
		}
		switch num {
		case 1:
			m.Cid, err = d.cid(typ)
		case 2:
			m.Data, err = d.bytes(typ)
		default:
			err = d.skip(num, typ)
		}
		if err != nil {
			return err
		}
	}
	return nil
}

// Missing says that the server lacks the block with Cid.
//
//	1 cid bytes (CID)
type Missing struct {
	Cid cid.Cid
}

// Type implements [Message].
func (*Missing) Type() Type { return TypeMissing }

// Size implements [Message].
func (m *Missing) Size() int { return sizeCid(m.Cid) }

// AppendBody implements [Message].
func (m *Missing) AppendBody(b []byte) []byte { return appendCid(b, 1, m.Cid) }

// UnmarshalBody implements [Message].
func (m *Missing) UnmarshalBody(b []byte) error {
	*m = Missing{}
	d := decoder{b: b}
	for !d.done() {
		num, typ, err := d.tag()
		if err != nil {
			return err
		}
		switch num {
		case 1:
			m.Cid, err = d.cid(typ)
		default:
			err = d.skip(num, typ)
		}
		if err != nil {
			return err
		}
	}
	return nil
}

// Done ends the answer to one [GetRequest].
//
//	1 root_complete bool
type Done struct {
	RootComplete bool
}

// Type implements [Message].
func (*Done) Type() Type { return TypeDone }

// Size implements [Message].
func (m *Done) Size() int { return sizeVarint(boolToUint(m.RootComplete)) }

// AppendBody implements [Message].
func (m *Done) AppendBody(b []byte) []byte { return appendVarint(b, 1, boolToUint(m.RootComplete)) }

// UnmarshalBody implements [Message].
func (m *Done) UnmarshalBody(b []byte) error {
	*m = Done{}
	d := decoder{b: b}
	for !d.done() {
		num, typ, err := d.tag()
		if err != nil {
			return err
		}
		switch num {
		case 1:
			m.RootComplete, err = d.bool(typ)
		default:
			err = d.skip(num, typ)
		}
		if err != nil {
			return err
		}
	}
	return nil
}

// StoreOffer opens /cas/store/1.0: the owner asks the receiver to hold the
// blocks of Root. Field lengths (Owner 32, Sig 64) are checked by the
// protocol layer, not here.
//
//	1 root   bytes (CID)
//	2 owner  bytes (Ed25519 public key)
//	3 blocks uint64
//	4 bytes  uint64
//	5 expiry int64 (unix seconds, two's complement varint)
//	6 sig    bytes (Ed25519 signature)
type StoreOffer struct {
	Root   cid.Cid
	Owner  []byte
	Blocks uint64
	Bytes  uint64
	Expiry int64
	Sig    []byte
}

// Type implements [Message].
func (*StoreOffer) Type() Type { return TypeStoreOffer }

// Size implements [Message].
func (m *StoreOffer) Size() int {
	return sizeCid(m.Root) + sizeBytes(m.Owner) + sizeVarint(m.Blocks) +
		sizeVarint(m.Bytes) + sizeVarint(uint64(m.Expiry)) + sizeBytes(m.Sig)
}

// AppendBody implements [Message].
func (m *StoreOffer) AppendBody(b []byte) []byte {
	b = appendCid(b, 1, m.Root)
	b = appendBytes(b, 2, m.Owner)
	b = appendVarint(b, 3, m.Blocks)
	b = appendVarint(b, 4, m.Bytes)
	b = appendVarint(b, 5, uint64(m.Expiry))
	return appendBytes(b, 6, m.Sig)
}

// UnmarshalBody implements [Message]. Owner and Sig alias b.
func (m *StoreOffer) UnmarshalBody(b []byte) error {
	*m = StoreOffer{}
	d := decoder{b: b}
	for !d.done() {
		num, typ, err := d.tag()
		if err != nil {
			return err
		}
		switch num {
		case 1:
			m.Root, err = d.cid(typ)
		case 2:
			m.Owner, err = d.bytes(typ)
		case 3:
			m.Blocks, err = d.varint(typ)
		case 4:
			m.Bytes, err = d.varint(typ)
		case 5:
			var v uint64
			v, err = d.varint(typ)
			m.Expiry = int64(v)
		case 6:
			m.Sig, err = d.bytes(typ)
		default:
			err = d.skip(num, typ)
		}
		if err != nil {
			return err
		}
	}
	return nil
}

// StoreReply answers a [StoreOffer].
//
//	1 accept bool
//	2 reason string (UTF-8), set on rejection
type StoreReply struct {
	Accept bool
	Reason string
}

// Type implements [Message].
func (*StoreReply) Type() Type { return TypeStoreReply }

// Size implements [Message].
func (m *StoreReply) Size() int {
	n := sizeVarint(boolToUint(m.Accept))
	if m.Reason != "" {
		n += 1 + protowire.SizeBytes(len(m.Reason))
	}
	return n
}

// AppendBody implements [Message].
func (m *StoreReply) AppendBody(b []byte) []byte {
	b = appendVarint(b, 1, boolToUint(m.Accept))
	if m.Reason != "" {
		b = protowire.AppendTag(b, 2, protowire.BytesType)
		b = protowire.AppendString(b, m.Reason)
	}
	return b
}

// UnmarshalBody implements [Message].
func (m *StoreReply) UnmarshalBody(b []byte) error {
	*m = StoreReply{}
	d := decoder{b: b}
	for !d.done() {
		num, typ, err := d.tag()
		if err != nil {
			return err
		}
		switch num {
		case 1:
			m.Accept, err = d.bool(typ)
		case 2:
			m.Reason, err = d.string(typ)
		default:
			err = d.skip(num, typ)
		}
		if err != nil {
			return err
		}
	}
	return nil
}

// StoreEnd tells the receiver that the client has sent all its blocks. It
// has no fields.
type StoreEnd struct{}

// Type implements [Message].
func (*StoreEnd) Type() Type { return TypeStoreEnd }

// Size implements [Message].
func (*StoreEnd) Size() int { return 0 }

// AppendBody implements [Message].
func (*StoreEnd) AppendBody(b []byte) []byte { return b }

// UnmarshalBody implements [Message]; all fields are unknown and skipped.
func (*StoreEnd) UnmarshalBody(b []byte) error {
	d := decoder{b: b}
	for !d.done() {
		num, typ, err := d.tag()
		if err != nil {
			return err
		}
		if err := d.skip(num, typ); err != nil {
			return err
		}
	}
	return nil
}

// StoreAck is the receiver's final answer on /cas/store/1.0.
//
//	1 stored   uint64: blocks of this stream durably stored
//	2 complete bool: the receiver holds the whole tree of the root
type StoreAck struct {
	Stored   uint64
	Complete bool
}

// Type implements [Message].
func (*StoreAck) Type() Type { return TypeStoreAck }

// Size implements [Message].
func (m *StoreAck) Size() int {
	return sizeVarint(m.Stored) + sizeVarint(boolToUint(m.Complete))
}

// AppendBody implements [Message].
func (m *StoreAck) AppendBody(b []byte) []byte {
	b = appendVarint(b, 1, m.Stored)
	return appendVarint(b, 2, boolToUint(m.Complete))
}

// UnmarshalBody implements [Message].
func (m *StoreAck) UnmarshalBody(b []byte) error {
	*m = StoreAck{}
	d := decoder{b: b}
	for !d.done() {
		num, typ, err := d.tag()
		if err != nil {
			return err
		}
		switch num {
		case 1:
			m.Stored, err = d.varint(typ)
		case 2:
			m.Complete, err = d.bool(typ)
		default:
			err = d.skip(num, typ)
		}
		if err != nil {
			return err
		}
	}
	return nil
}
