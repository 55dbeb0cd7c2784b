package pb_test

import (
	"bytes"
	"errors"
	"fmt"
	"reflect"
	"testing"

	"github.com/ipfs/go-cid"
	mh "github.com/multiformats/go-multihash"
	"google.golang.org/protobuf/encoding/protowire"

	"github.com/casd/casd/protocol/pb"
)

func testCid(tb testing.TB, s string) cid.Cid {
	tb.Helper()
	h, err := mh.Sum([]byte(s), mh.SHA2_256, -1)
	if err != nil {
		tb.Fatal(err)
	}
	return cid.NewCidV1(cid.Raw, h)
}

func sampleMessages(tb testing.TB) map[string]pb.Message {
	tb.Helper()
	a, b := testCid(tb, "a"), testCid(tb, "b")
	owner, sig := bytes.Repeat([]byte{3}, pb.OwnerKeySize), bytes.Repeat([]byte{4}, pb.SigSize)
	return map[string]pb.Message{
		"GetRequest":       &pb.GetRequest{Root: a, Want: []cid.Cid{a, b}, WantRootComplete: true},
		"GetRequest/empty": &pb.GetRequest{},
		"Block":            &pb.Block{Cid: a, Data: []byte("hello")},
		"Missing":          &pb.Missing{Cid: b},
		"Done":             &pb.Done{RootComplete: true},
		"Done/false":       &pb.Done{},
		"StoreOffer": &pb.StoreOffer{Root: a, Owner: bytes.Repeat([]byte{1}, 32), Blocks: 3,
			Bytes: 1 << 40, Expiry: -5, Sig: bytes.Repeat([]byte{2}, 64)},
		"StoreOffer/lease": &pb.StoreOffer{Root: a, Owner: bytes.Repeat([]byte{1}, 32), Blocks: 3,
			Bytes: 7, Expiry: 5, Sig: bytes.Repeat([]byte{2}, 64), Lease: 1 << 40},
		"StoreReply":           &pb.StoreReply{Reason: "over quota: ünïcode"},
		"StoreEnd":             &pb.StoreEnd{},
		"StoreAck":             &pb.StoreAck{Stored: 12, Complete: true},
		"Challenge":            &pb.Challenge{Root: a, Cid: b, Nonce: [pb.NonceSize]byte{1, 2, 31: 3}},
		"Challenge/zero nonce": &pb.Challenge{Root: a, Cid: a},
		"Proof":                &pb.Proof{Proof: [pb.ProofSize]byte{9, 31: 8}},
		"Proof/zero":           &pb.Proof{},
		"Lease":                &pb.Lease{Root: a, Owner: owner, Expiry: 1 << 33, Sig: sig},
		"Lease/zero expiry":    &pb.Lease{Root: a, Owner: owner, Sig: sig},
		"Remove":               &pb.Remove{Root: b, Owner: owner, Time: -7, Sig: sig},
		"TreeChallenge": &pb.TreeChallenge{Root: a, Nonce: [pb.NonceSize]byte{4, 31: 5},
			Owner: owner, Time: 1 << 31, Sig: sig},
		"TreeChallenge/zero nonce": &pb.TreeChallenge{Root: a, Owner: owner, Sig: sig},
		"PeerList":                 &pb.PeerList{Records: [][]byte{[]byte("rec-a"), {0}, bytes.Repeat([]byte{5}, 300)}},
		"PeerList/empty":           &pb.PeerList{},
	}
}

func TestRoundTrip(t *testing.T) {
	for name, m := range sampleMessages(t) {
		t.Run(name, func(t *testing.T) {
			enc := pb.Marshal(m)
			var env pb.Envelope
			if err := env.Unmarshal(enc); err != nil {
				t.Fatal(err)
			}
			if env.Type != m.Type() || len(env.Body) != m.Size() || env.Size() != len(enc) {
				t.Fatalf("envelope type %v body %d size %d; want %v %d %d",
					env.Type, len(env.Body), env.Size(), m.Type(), m.Size(), len(enc))
			}
			got, err := pb.Unmarshal(enc)
			if err != nil {
				t.Fatal(err)
			}
			mustEqual(t, m, got)

			// AppendMarshal after a prefix keeps the prefix.
			withPrefix := pb.AppendMarshal([]byte("xy"), m)
			if string(withPrefix[:2]) != "xy" || !bytes.Equal(enc, withPrefix[2:]) {
				t.Fatalf("AppendMarshal with prefix: %x", withPrefix)
			}
		})
	}
}

func TestBlockHeader(t *testing.T) {
	c := testCid(t, "a")
	for _, data := range [][]byte{nil, []byte("x"), bytes.Repeat([]byte{7}, 1<<20)} {
		m := &pb.Block{Cid: c, Data: data}
		got := append(m.AppendMarshalHeader([]byte("p")), data...)
		if want := pb.AppendMarshal([]byte("p"), m); !bytes.Equal(got, want) {
			t.Fatalf("header+data for %d bytes differs from AppendMarshal", len(data))
		}
	}
}

func TestUnknownFieldsSkipped(t *testing.T) {
	c := testCid(t, "a")
	body := (&pb.Block{Cid: c, Data: []byte("x")}).AppendBody(nil)
	// Append unknown fields of every wire type.
	body = protowire.AppendTag(body, 14, protowire.VarintType)
	body = protowire.AppendVarint(body, 99)
	body = protowire.AppendTag(body, 15, protowire.BytesType)
	body = protowire.AppendBytes(body, []byte("future"))
	body = protowire.AppendTag(body, 16, protowire.Fixed32Type)
	body = protowire.AppendFixed32(body, 7)
	body = protowire.AppendTag(body, 17, protowire.Fixed64Type)
	body = protowire.AppendFixed64(body, 7)
	body = protowire.AppendTag(body, 18, protowire.StartGroupType)
	body = protowire.AppendTag(body, 1, protowire.VarintType)
	body = protowire.AppendVarint(body, 1)
	body = protowire.AppendTag(body, 18, protowire.EndGroupType)

	env := pb.Envelope{Type: pb.TypeBlock, Body: body}
	enc := env.AppendMarshal(nil)
	enc = protowire.AppendTag(enc, 9, protowire.BytesType)
	enc = protowire.AppendBytes(enc, []byte("envelope extension"))

	got, err := pb.Unmarshal(enc)
	if err != nil {
		t.Fatal(err)
	}
	mustEqual(t, &pb.Block{Cid: c, Data: []byte("x")}, got)
}

func TestMalformed(t *testing.T) {
	c := testCid(t, "a")
	env := func(typ pb.Type, body []byte) []byte {
		return (&pb.Envelope{Type: typ, Body: body}).AppendMarshal(nil)
	}
	tooMany := &pb.GetRequest{}
	for i := range pb.MaxWant + 1 {
		tooMany.Want = append(tooMany.Want, testCid(t, string(rune(i))))
	}
	cases := map[string][]byte{
		"empty":                      nil,
		"truncated varint":           {0x08, 0x80},
		"unknown type":               env(99, nil),
		"bytes past end":             env(pb.TypeBlock, []byte{0x0a, 0x10, 1, 2}),
		"bad cid":                    env(pb.TypeMissing, []byte{0x0a, 0x03, 1, 2, 3}),
		"wrong wire type":            env(pb.TypeDone, []byte{0x0a, 0x00}),
		"field zero":                 env(pb.TypeStoreEnd, []byte{0x00, 0x00}),
		"stray end group":            env(pb.TypeStoreAck, []byte{0x7c}),
		"empty want":                 env(pb.TypeGetRequest, []byte{0x12, 0x00}),
		"too many wants":             pb.Marshal(tooMany),
		"reason not utf8":            env(pb.TypeStoreReply, []byte{0x12, 0x02, 0xff, 0xfe}),
		"block cid as int":           env(pb.TypeBlock, protowire.AppendVarint([]byte{0x08}, 1)),
		"envelope body junk":         env(pb.TypeStoreOffer, []byte{0xff}),
		"cid trailing bytes":         env(pb.TypeMissing, protowire.AppendBytes([]byte{0x0a}, append(c.Bytes(), 0))),
		"challenge no root":          pb.Marshal(&pb.Challenge{Cid: c}),
		"challenge no cid":           pb.Marshal(&pb.Challenge{Root: c}),
		"challenge short nonce":      env(pb.TypeChallenge, challengeBody(c, make([]byte, pb.NonceSize-1))),
		"challenge long nonce":       env(pb.TypeChallenge, challengeBody(c, make([]byte, pb.NonceSize+1))),
		"challenge no nonce":         env(pb.TypeChallenge, challengeBody(c, nil)),
		"tree challenge short nonce": env(pb.TypeTreeChallenge, treeChallengeBody(c, make([]byte, pb.NonceSize-1))),
		"tree challenge long nonce":  env(pb.TypeTreeChallenge, treeChallengeBody(c, make([]byte, pb.NonceSize+1))),
		"tree challenge no nonce":    env(pb.TypeTreeChallenge, treeChallengeBody(c, nil)),
		"proof empty":                env(pb.TypeProof, nil),
		"proof short":                env(pb.TypeProof, protowire.AppendBytes([]byte{0x0a}, make([]byte, pb.ProofSize-1))),
		"proof long":                 env(pb.TypeProof, protowire.AppendBytes([]byte{0x0a}, make([]byte, pb.ProofSize+1))),
		"peer list empty record":     pb.Marshal(&pb.PeerList{Records: [][]byte{[]byte("r"), nil}}),
		"peer list record as int":    env(pb.TypePeerList, protowire.AppendVarint([]byte{0x08}, 1)),
	}
	for name, m := range signedMalformed(c) {
		cases[name] = pb.Marshal(m)
	}
	for name, b := range cases {
		t.Run(name, func(t *testing.T) {
			_, err := pb.Unmarshal(b)
			if !errors.Is(err, pb.ErrMalformed) {
				t.Fatalf("error %v does not wrap ErrMalformed", err)
			}
		})
	}
}

// signedMalformed returns owner-signed messages (Lease, Remove,
// TreeChallenge) each with one field of the wrong size or missing.
func signedMalformed(c cid.Cid) map[string]pb.Message {
	owner, sig := bytes.Repeat([]byte{3}, pb.OwnerKeySize), bytes.Repeat([]byte{4}, pb.SigSize)
	short := func(b []byte) []byte { return b[:len(b)-1] }
	long := func(b []byte) []byte { return append(bytes.Clone(b), 0) }
	ms := map[string]pb.Message{}
	for _, f := range []struct {
		name       string
		root       cid.Cid
		owner, sig []byte
	}{
		{"no root", cid.Undef, owner, sig},
		{"no owner", c, nil, sig},
		{"short owner", c, short(owner), sig},
		{"long owner", c, long(owner), sig},
		{"no sig", c, owner, nil},
		{"short sig", c, owner, short(sig)},
		{"long sig", c, owner, long(sig)},
	} {
		ms["lease "+f.name] = &pb.Lease{Root: f.root, Owner: f.owner, Expiry: 9, Sig: f.sig}
		ms["remove "+f.name] = &pb.Remove{Root: f.root, Owner: f.owner, Time: 9, Sig: f.sig}
		ms["tree challenge "+f.name] = &pb.TreeChallenge{Root: f.root, Owner: f.owner, Time: 9, Sig: f.sig}
	}
	return ms
}

// treeChallengeBody encodes a TreeChallenge of root c with the given
// nonce bytes, of any length, and a well-formed owner key and signature.
func treeChallengeBody(c cid.Cid, nonce []byte) []byte {
	b := protowire.AppendBytes([]byte{0x0a}, c.Bytes())
	if nonce != nil {
		b = protowire.AppendBytes(append(b, 0x12), nonce)
	}
	b = protowire.AppendBytes(append(b, 0x1a), bytes.Repeat([]byte{3}, pb.OwnerKeySize))
	return protowire.AppendBytes(append(b, 0x2a), bytes.Repeat([]byte{4}, pb.SigSize))
}

// challengeBody encodes a Challenge of root and cid c with the given
// nonce bytes, of any length.
func challengeBody(c cid.Cid, nonce []byte) []byte {
	b := protowire.AppendBytes([]byte{0x0a}, c.Bytes())
	b = protowire.AppendBytes(append(b, 0x12), c.Bytes())
	if nonce != nil {
		b = protowire.AppendBytes(append(b, 0x1a), nonce)
	}
	return b
}

// fuzzRoundTrip checks that decoding arbitrary input never panics and that
// whatever decodes re-encodes to something that decodes equal (guards
// against non-canonical encodings and lossy fields).
func fuzzRoundTrip[T any, PT interface {
	*T
	pb.Message
}](f *testing.F, seeds ...pb.Message) {
	for _, s := range seeds {
		f.Add(s.AppendBody(nil))
	}
	f.Add([]byte{})
	f.Add([]byte{0x0a, 0x80})
	f.Fuzz(func(t *testing.T, b []byte) {
		m := PT(new(T))
		if err := m.UnmarshalBody(b); err != nil {
			return
		}
		enc := m.AppendBody(nil)
		if len(enc) != m.Size() {
			t.Fatalf("Size %d, encoded %d bytes", m.Size(), len(enc))
		}
		m2 := PT(new(T))
		if err := m2.UnmarshalBody(enc); err != nil {
			t.Fatalf("re-decode: %v", err)
		}
		mustEqual(t, m, m2)
	})
}

func mustEqual(tb testing.TB, want, got any) {
	tb.Helper()
	if !reflect.DeepEqual(want, got) {
		tb.Fatalf("got %+v, want %+v", got, want)
	}
}

func FuzzGetRequest(f *testing.F) {
	fuzzRoundTrip[pb.GetRequest](f, sampleMessages(f)["GetRequest"])
}

func FuzzBlock(f *testing.F) { fuzzRoundTrip[pb.Block](f, sampleMessages(f)["Block"]) }

func FuzzMissing(f *testing.F) { fuzzRoundTrip[pb.Missing](f, sampleMessages(f)["Missing"]) }

func FuzzDone(f *testing.F) { fuzzRoundTrip[pb.Done](f, sampleMessages(f)["Done"]) }

func FuzzStoreOffer(f *testing.F) {
	fuzzRoundTrip[pb.StoreOffer](f, sampleMessages(f)["StoreOffer"])
}

func FuzzStoreReply(f *testing.F) {
	fuzzRoundTrip[pb.StoreReply](f, sampleMessages(f)["StoreReply"])
}

func FuzzStoreEnd(f *testing.F) { fuzzRoundTrip[pb.StoreEnd](f, sampleMessages(f)["StoreEnd"]) }

func FuzzStoreAck(f *testing.F) { fuzzRoundTrip[pb.StoreAck](f, sampleMessages(f)["StoreAck"]) }

func FuzzChallenge(f *testing.F) {
	fuzzRoundTrip[pb.Challenge](f, sampleMessages(f)["Challenge"], sampleMessages(f)["Challenge/zero nonce"])
}

func FuzzProof(f *testing.F) { fuzzRoundTrip[pb.Proof](f, sampleMessages(f)["Proof"]) }

func FuzzLease(f *testing.F) { fuzzRoundTrip[pb.Lease](f, sampleMessages(f)["Lease"]) }

func FuzzRemove(f *testing.F) { fuzzRoundTrip[pb.Remove](f, sampleMessages(f)["Remove"]) }

func FuzzPeerListMessage(f *testing.F) {
	fuzzRoundTrip[pb.PeerList](f, sampleMessages(f)["PeerList"], sampleMessages(f)["PeerList/empty"])
}

func FuzzTreeChallenge(f *testing.F) {
	fuzzRoundTrip[pb.TreeChallenge](f, sampleMessages(f)["TreeChallenge"], sampleMessages(f)["TreeChallenge/zero nonce"])
}

// FuzzUnmarshal covers the envelope and the dispatch on its type.
func FuzzUnmarshal(f *testing.F) {
	for _, m := range sampleMessages(f) {
		f.Add(pb.Marshal(m))
	}
	for _, m := range badCidMessages() {
		f.Add(pb.Marshal(m))
	}
	f.Fuzz(func(t *testing.T, b []byte) {
		var env pb.Envelope
		if err := env.Unmarshal(b); err == nil {
			var env2 pb.Envelope
			if err := env2.Unmarshal(env.AppendMarshal(nil)); err != nil {
				t.Fatalf("re-decode envelope: %v", err)
			}
			mustEqual(t, env, env2)
		}
		m, err := pb.Unmarshal(b)
		if err != nil {
			return
		}
		m2, err := pb.Unmarshal(pb.Marshal(m))
		if err != nil {
			t.Fatalf("re-decode: %v", err)
		}
		mustEqual(t, m, m2)
	})
}

// TestTypeString pins the names that error messages give message types,
// known or not.
func TestTypeString(t *testing.T) {
	cases := []struct {
		t    pb.Type
		want string
	}{
		{0, "Type(0)"},
		{pb.TypeGetRequest, "GetRequest"},
		{pb.TypeBlock, "Block"},
		{pb.TypeMissing, "Missing"},
		{pb.TypeDone, "Done"},
		{pb.TypeStoreOffer, "StoreOffer"},
		{pb.TypeStoreReply, "StoreReply"},
		{pb.TypeStoreEnd, "StoreEnd"},
		{pb.TypeStoreAck, "StoreAck"},
		{pb.TypeChallenge, "Challenge"},
		{pb.TypeProof, "Proof"},
		{pb.TypeLease, "Lease"},
		{pb.TypeRemove, "Remove"},
		{pb.TypeTreeChallenge, "TreeChallenge"},
		{pb.TypePeerList, "PeerList"},
		{pb.TypePeerList + 1, "Type(15)"},
		{1 << 40, "Type(1099511627776)"},
	}
	for _, tc := range cases {
		if got := tc.t.String(); got != tc.want {
			t.Errorf("Type(%d).String() = %q, want %q", uint64(tc.t), got, tc.want)
		}
	}
}

// TestWantLimit checks that MaxWant is inclusive: a request for exactly
// MaxWant CIDs decodes, one more does not (see TestMalformed).
func TestWantLimit(t *testing.T) {
	m := &pb.GetRequest{Root: testCid(t, "root")}
	for i := range pb.MaxWant {
		m.Want = append(m.Want, testCid(t, fmt.Sprint(i)))
	}
	got, err := pb.Unmarshal(pb.Marshal(m))
	if err != nil {
		t.Fatalf("%d wants: %v", pb.MaxWant, err)
	}
	mustEqual(t, m, got)
}
