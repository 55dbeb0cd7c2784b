package pb

import (
	"bytes"
	"reflect"
	"testing"

	"github.com/ipfs/go-cid"
	mh "github.com/multiformats/go-multihash"
	"google.golang.org/protobuf/encoding/protowire"
	"google.golang.org/protobuf/proto"

	"github.com/casd/casd/protocol/pb/internal/wire"
)

// The hand-written fast path (envelope and Block) must encode exactly what
// the code generated from cas.proto encodes, and accept exactly the input
// that the generated code plus the checks of the other messages accept.

// generatedBlock decodes a Block body the way the other messages are
// decoded: the reference for Block.UnmarshalBody.
func generatedBlock(b []byte) (*Block, error) {
	var w wire.Block
	if err := unmarshalWire(b, &w); err != nil {
		return nil, err
	}
	c, err := castCid(w.Cid)
	if err != nil {
		return nil, err
	}
	return &Block{Cid: c, Data: nilIfEmpty(w.Data)}, nil
}

// generatedEnvelope is the reference for Envelope.Unmarshal.
func generatedEnvelope(b []byte) (*Envelope, error) {
	var w wire.Envelope
	if err := unmarshalWire(b, &w); err != nil {
		return nil, err
	}
	if w.GetType() == 0 {
		return nil, ErrMalformed
	}
	return &Envelope{Type: Type(w.GetType()), Body: nilIfEmpty(w.Body)}, nil
}

// generatedFrame encodes the envelope of a block with the generated code.
func generatedFrame(tb testing.TB, m *Block) []byte {
	tb.Helper()
	body, err := proto.Marshal(&wire.Block{Cid: cidBytes(m.Cid), Data: m.Data})
	if err != nil {
		tb.Fatal(err)
	}
	t := uint64(TypeBlock)
	frame, err := proto.Marshal(&wire.Envelope{Type: &t, Body: append([]byte{}, body...)})
	if err != nil {
		tb.Fatal(err)
	}
	return frame
}

func TestFastPathEncodesAsGenerated(t *testing.T) {
	h, err := mh.Sum([]byte("a"), mh.SHA2_256, -1)
	if err != nil {
		t.Fatal(err)
	}
	v1, v0 := cid.NewCidV1(cid.Raw, h), cid.NewCidV0(h)
	blocks := map[string]*Block{
		"empty":       {},
		"cid only":    {Cid: v1},
		"data only":   {Data: []byte("x")},
		"small":       {Cid: v1, Data: []byte("hello")},
		"cidv0":       {Cid: v0, Data: []byte("hello")},
		"127 bytes":   {Cid: v1, Data: bytes.Repeat([]byte{1}, 127)},
		"128 bytes":   {Cid: v1, Data: bytes.Repeat([]byte{1}, 128)},
		"1 MiB":       {Cid: v1, Data: bytes.Repeat([]byte{7}, 1<<20)},
		"max block":   {Cid: v1, Data: bytes.Repeat([]byte{9}, 4<<20+64<<10)},
		"2 MiB zeros": {Cid: v1, Data: make([]byte, 2<<20)},
	}
	for name, m := range blocks {
		t.Run(name, func(t *testing.T) {
			want := generatedFrame(t, m)
			if got := Marshal(m); !bytes.Equal(got, want) {
				t.Fatalf("Marshal differs from the generated code:\n got %x\nwant %x", head(got), head(want))
			}
			if got := append(m.AppendMarshalHeader(nil), m.Data...); !bytes.Equal(got, want) {
				t.Fatalf("AppendMarshalHeader+Data differs from the generated code:\n got %x\nwant %x", head(got), head(want))
			}
			if m.Size() != proto.Size(&wire.Block{Cid: cidBytes(m.Cid), Data: m.Data}) {
				t.Fatalf("Size %d differs from the generated code", m.Size())
			}
		})
	}
}

func head(b []byte) []byte { return b[:min(len(b), 64)] }

func TestEnvelopeEncodesAsGenerated(t *testing.T) {
	for _, e := range []Envelope{{Type: TypeStoreEnd}, {Type: TypeDone, Body: []byte{8, 1}}, {Type: 1 << 40}, {}} {
		typ := uint64(e.Type)
		want, err := proto.Marshal(&wire.Envelope{Type: &typ, Body: append([]byte{}, e.Body...)})
		if err != nil {
			t.Fatal(err)
		}
		if got := e.AppendMarshal(nil); !bytes.Equal(got, want) || e.Size() != len(want) {
			t.Errorf("%+v: got %x (Size %d), generated %x", e, got, e.Size(), want)
		}
	}
}

// FuzzFastPath decodes arbitrary input as a Block body and as an envelope
// with the fast path and with the generated code: both must accept the same
// input, decode it to the same value and re-encode it to the same bytes.
func FuzzFastPath(f *testing.F) {
	c := cid.NewCidV1(cid.Raw, mh.Multihash(append([]byte{0x12, 0x20}, make([]byte, 32)...)))
	blk := &Block{Cid: c, Data: []byte("hello")}
	f.Add(blk.AppendBody(nil))
	f.Add(Marshal(blk))
	f.Add(Marshal(&StoreEnd{}))
	f.Add([]byte{0x08, 0x01})                                    // block cid as varint
	f.Add([]byte{0x12, 0x00, 0x12, 0x01, 0x00})                  // data twice
	f.Add([]byte{0x0a, 0x01, 0xff, 0x0a, 0x00})                  // bad cid, then empty
	f.Add([]byte{0xf8, 0xff, 0xff, 0xff, 0x0f, 0x00})            // field number 2^32-1
	f.Add([]byte{0x7b, 0x08, 0x01, 0x7c})                        // group 15
	f.Add(protowire.AppendTag(nil, protowire.MaxValidNumber, 0)) // largest field number

	// CIDs that parse but are not CIDv1 raw sha2-256: both paths refuse them.
	id := cid.NewCidV1(cid.Raw, mh.Multihash([]byte{0x00, 0x05, 'h', 'e', 'l', 'l', 'o'}))
	f.Add((&Block{Cid: id, Data: []byte("hello")}).AppendBody(nil))
	f.Add((&Block{Cid: cid.NewCidV0(c.Hash())}).AppendBody(nil))
	f.Fuzz(func(t *testing.T, b []byte) {
		var fast Block
		errFast := fast.UnmarshalBody(b)
		gen, errGen := generatedBlock(b)
		if (errFast == nil) != (errGen == nil) {
			t.Fatalf("Block: fast path error %v, generated error %v", errFast, errGen)
		}
		if errFast == nil {
			if !reflect.DeepEqual(&fast, gen) {
				t.Fatalf("Block: fast path %+v, generated %+v", fast, gen)
			}
			want, err := proto.Marshal(&wire.Block{Cid: cidBytes(gen.Cid), Data: gen.Data})
			if err != nil {
				t.Fatal(err)
			}
			if got := fast.AppendBody(nil); !bytes.Equal(got, want) {
				t.Fatalf("Block: fast path encodes %x, generated %x", got, want)
			}
		}

		var env Envelope
		errFast = env.Unmarshal(b)
		genEnv, errGen := generatedEnvelope(b)
		if (errFast == nil) != (errGen == nil) {
			t.Fatalf("Envelope: fast path error %v, generated error %v", errFast, errGen)
		}
		if errFast == nil && !reflect.DeepEqual(&env, genEnv) {
			t.Fatalf("Envelope: fast path %+v, generated %+v", env, genEnv)
		}
	})
}
