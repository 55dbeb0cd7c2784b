package pb

import (
	"fmt"
	"strings"

	"github.com/ipfs/go-cid"
	"google.golang.org/protobuf/encoding/protowire"
	"google.golang.org/protobuf/proto"
	"google.golang.org/protobuf/reflect/protoreflect"

	"github.com/casd/casd/blockstore"
	"github.com/casd/casd/protocol/pb/internal/wire"
)

// The messages below are encoded by the code generated from cas.proto:
// each converts itself to its generated twin (toWire) to encode, and
// decodes into that twin, then checks and converts it.

var (
	_ Message = (*GetRequest)(nil)
	_ Message = (*Missing)(nil)
	_ Message = (*Done)(nil)
	_ Message = (*StoreOffer)(nil)
	_ Message = (*StoreReply)(nil)
	_ Message = (*StoreEnd)(nil)
	_ Message = (*StoreAck)(nil)
)

// GetRequest asks for blocks on /cas/get/1.0.
type GetRequest struct {
	// Root, if defined, names the tree the wants belong to.
	Root cid.Cid
	// Want lists the CIDs asked for, in order, at most [MaxWant].
	Want []cid.Cid
	// WantRootComplete asks whether the server holds Root's whole tree.
	WantRootComplete bool
}

// Type implements [Message].
func (*GetRequest) Type() Type { return TypeGetRequest }

// Size implements [Message].
func (m *GetRequest) Size() int { return proto.Size(m.toWire()) }

// AppendBody implements [Message]. An undefined CID in Want is encoded as an
// empty field, which decodes as an error.
func (m *GetRequest) AppendBody(b []byte) []byte { return appendWire(b, m.toWire()) }

// UnmarshalBody implements [Message].
func (m *GetRequest) UnmarshalBody(b []byte) error {
	var w wire.GetRequest
	if err := unmarshalWire(b, &w); err != nil {
		return err
	}
	if len(w.Want) > MaxWant {
		return fmt.Errorf("%w: more than %d wants", ErrMalformed, MaxWant)
	}
	root, err := castCid(w.Root)
	if err != nil {
		return err
	}
	*m = GetRequest{Root: root, WantRootComplete: w.WantRootComplete}
	for _, v := range w.Want {
		if len(v) == 0 {
			return fmt.Errorf("%w: empty want", ErrMalformed)
		}
		c, err := castCid(v)
		if err != nil {
			return err
		}
		m.Want = append(m.Want, c)
	}
	return nil
}

func (m *GetRequest) toWire() *wire.GetRequest {
	w := &wire.GetRequest{Root: cidBytes(m.Root), WantRootComplete: m.WantRootComplete}
	if len(m.Want) > 0 {
		w.Want = make([][]byte, len(m.Want))
		for i, c := range m.Want {
			w.Want[i] = c.Bytes()
		}
	}
	return w
}

// Missing says that the server lacks the block with Cid.
type Missing struct {
	Cid cid.Cid
}

// Type implements [Message].
func (*Missing) Type() Type { return TypeMissing }

// Size implements [Message].
func (m *Missing) Size() int { return proto.Size(m.toWire()) }

// AppendBody implements [Message].
func (m *Missing) AppendBody(b []byte) []byte { return appendWire(b, m.toWire()) }

// UnmarshalBody implements [Message].
func (m *Missing) UnmarshalBody(b []byte) error {
	var w wire.Missing
	if err := unmarshalWire(b, &w); err != nil {
		return err
	}
	c, err := castCid(w.Cid)
	if err != nil {
		return err
	}
	*m = Missing{Cid: c}
	return nil
}

func (m *Missing) toWire() *wire.Missing { return &wire.Missing{Cid: cidBytes(m.Cid)} }

// Done ends the answer to one [GetRequest].
type Done struct {
	// RootComplete answers WantRootComplete; false if it was not asked
	// or the request had no root.
	RootComplete bool
}

// Type implements [Message].
func (*Done) Type() Type { return TypeDone }

// Size implements [Message].
func (m *Done) Size() int { return proto.Size(m.toWire()) }

// AppendBody implements [Message].
func (m *Done) AppendBody(b []byte) []byte { return appendWire(b, m.toWire()) }

// UnmarshalBody implements [Message].
func (m *Done) UnmarshalBody(b []byte) error {
	var w wire.Done
	if err := unmarshalWire(b, &w); err != nil {
		return err
	}
	*m = Done{RootComplete: w.RootComplete}
	return nil
}

func (m *Done) toWire() *wire.Done { return &wire.Done{RootComplete: m.RootComplete} }

// StoreOffer opens /cas/store/1.0: the owner asks the receiver to hold the
// blocks of Root. Field lengths (Owner 32, Sig 64) are checked by the
// protocol layer, not here.
type StoreOffer struct {
	Root   cid.Cid
	Owner  []byte // Ed25519 public key
	Blocks uint64 // number of blocks that will follow
	Bytes  uint64 // their total size
	Expiry int64  // unix seconds
	Sig    []byte // Ed25519 signature
	// Lease is the expiry, in unix seconds, of the lease the owner grants
	// the replica; 0 states none (the receiver applies its default).
	Lease int64
}

// Type implements [Message].
func (*StoreOffer) Type() Type { return TypeStoreOffer }

// Size implements [Message].
func (m *StoreOffer) Size() int { return proto.Size(m.toWire()) }

// AppendBody implements [Message].
func (m *StoreOffer) AppendBody(b []byte) []byte { return appendWire(b, m.toWire()) }

// UnmarshalBody implements [Message].
func (m *StoreOffer) UnmarshalBody(b []byte) error {
	var w wire.StoreOffer
	if err := unmarshalWire(b, &w); err != nil {
		return err
	}
	root, err := castCid(w.Root)
	if err != nil {
		return err
	}
	*m = StoreOffer{Root: root, Owner: nilIfEmpty(w.Owner), Blocks: w.Blocks,
		Bytes: w.Bytes, Expiry: w.Expiry, Sig: nilIfEmpty(w.Sig), Lease: w.Lease}
	return nil
}

func (m *StoreOffer) toWire() *wire.StoreOffer {
	return &wire.StoreOffer{Root: cidBytes(m.Root), Owner: m.Owner, Blocks: m.Blocks,
		Bytes: m.Bytes, Expiry: m.Expiry, Sig: m.Sig, Lease: m.Lease}
}

// StoreReply answers a [StoreOffer].
type StoreReply struct {
	Accept bool
	// Reason explains a rejection. The wire requires UTF-8: invalid bytes
	// are encoded as U+FFFD.
	Reason string
}

// Type implements [Message].
func (*StoreReply) Type() Type { return TypeStoreReply }

// Size implements [Message].
func (m *StoreReply) Size() int { return proto.Size(m.toWire()) }

// AppendBody implements [Message].
func (m *StoreReply) AppendBody(b []byte) []byte { return appendWire(b, m.toWire()) }

// UnmarshalBody implements [Message].
func (m *StoreReply) UnmarshalBody(b []byte) error {
	var w wire.StoreReply
	if err := unmarshalWire(b, &w); err != nil {
		return err
	}
	*m = StoreReply{Accept: w.Accept, Reason: w.Reason}
	return nil
}

func (m *StoreReply) toWire() *wire.StoreReply {
	return &wire.StoreReply{Accept: m.Accept, Reason: strings.ToValidUTF8(m.Reason, "\uFFFD")}
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
func (*StoreEnd) UnmarshalBody(b []byte) error { return unmarshalWire(b, &wire.StoreEnd{}) }

// StoreAck is the receiver's final answer on /cas/store/1.0.
type StoreAck struct {
	// Stored counts the blocks of this stream durably stored.
	Stored uint64
	// Complete reports that the receiver holds the whole tree of the root.
	Complete bool
}

// Type implements [Message].
func (*StoreAck) Type() Type { return TypeStoreAck }

// Size implements [Message].
func (m *StoreAck) Size() int { return proto.Size(m.toWire()) }

// AppendBody implements [Message].
func (m *StoreAck) AppendBody(b []byte) []byte { return appendWire(b, m.toWire()) }

// UnmarshalBody implements [Message].
func (m *StoreAck) UnmarshalBody(b []byte) error {
	var w wire.StoreAck
	if err := unmarshalWire(b, &w); err != nil {
		return err
	}
	*m = StoreAck{Stored: w.Stored, Complete: w.Complete}
	return nil
}

func (m *StoreAck) toWire() *wire.StoreAck {
	return &wire.StoreAck{Stored: m.Stored, Complete: m.Complete}
}

// appendWire appends the encoding of w to b. proto3 encodes fields in
// number order and omits zero values, as docs/wire.md requires; there are
// no maps, so the output is deterministic.
func appendWire(b []byte, w proto.Message) []byte {
	b, err := proto.MarshalOptions{}.MarshalAppend(b, w)
	if err != nil {
		// Unreachable: no message has required fields, and toWire makes
		// strings valid UTF-8.
		panic("pb: encode " + string(w.ProtoReflect().Descriptor().Name()) + ": " + err.Error())
	}
	return b
}

// unmarshalWire decodes b into w. Unlike the hand-written decoders before
// it, proto.Unmarshal keeps a known field of the wrong wire type as an
// unknown field; that is malformed here (docs/wire.md), so the unknown
// fields are checked, then dropped.
func unmarshalWire(b []byte, w proto.Message) error {
	if err := proto.Unmarshal(b, w); err != nil {
		return fmt.Errorf("%w: %v", ErrMalformed, err)
	}
	m := w.ProtoReflect()
	return checkUnknown(m.Descriptor(), m.GetUnknown())
}

// checkUnknown reports a field in the well-formed unknown fields u whose
// number is a field of d.
func checkUnknown(d protoreflect.MessageDescriptor, u protoreflect.RawFields) error {
	for len(u) > 0 {
		num, typ, n := protowire.ConsumeField(u)
		if f := d.Fields().ByNumber(num); f != nil {
			return fmt.Errorf("%w: wire type %d for %s field %s", ErrMalformed, typ, f.Kind(), f.Name())
		}
		u = u[n:]
	}
	return nil
}

// castCid parses a CID field; an empty field is cid.Undef. A CID that is
// not CIDv1 raw sha2-256 ([blockstore.CheckCid]) is malformed: casd names
// no block otherwise, and an identity or truncated hash would let a peer
// pass off any data as a block.
func castCid(b []byte) (cid.Cid, error) {
	if len(b) == 0 {
		return cid.Undef, nil
	}
	c, err := cid.Cast(b)
	if err != nil {
		return cid.Undef, fmt.Errorf("%w: cid: %v", ErrMalformed, err)
	}
	if err := blockstore.CheckCid(c); err != nil {
		return cid.Undef, fmt.Errorf("%w: %w", ErrMalformed, err)
	}
	return c, nil
}

// cidBytes encodes a CID field; cid.Undef is an absent field.
func cidBytes(c cid.Cid) []byte {
	if !c.Defined() {
		return nil
	}
	return c.Bytes()
}

func nilIfEmpty(b []byte) []byte {
	if len(b) == 0 {
		return nil
	}
	return b
}
