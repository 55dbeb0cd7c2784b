package pb_test

import (
	"errors"
	"testing"

	"google.golang.org/protobuf/encoding/protowire"

	"github.com/casd/casd/protocol/pb"
)

// TestDecodingRules pins the rules of the package doc that the generated
// code brought (before cas.proto, the hand-written decoders differed): a
// field number above 2^29-1 is malformed, and of a singular field given
// twice only the last value counts and is checked. Each case runs on the
// fast path (Block) and on generated code (Missing, Done).
func TestDecodingRules(t *testing.T) {
	c := testCid(t, "a")
	bigField := protowire.AppendVarint(protowire.AppendTag(nil, protowire.MaxValidNumber+1, protowire.VarintType), 1)
	maxField := protowire.AppendVarint(protowire.AppendTag(nil, protowire.MaxValidNumber, protowire.VarintType), 1)
	badThenGood := protowire.AppendBytes([]byte{0x0a, 0x01, 0xff, 0x0a}, c.Bytes())
	goodThenBad := append(protowire.AppendBytes([]byte{0x0a}, c.Bytes()), 0x0a, 0x01, 0xff)
	cases := []struct {
		name string
		typ  pb.Type
		body []byte
		want pb.Message // nil: malformed
	}{
		{"Block field 2^29", pb.TypeBlock, bigField, nil},
		{"Missing field 2^29", pb.TypeMissing, bigField, nil},
		{"Block field 2^29-1", pb.TypeBlock, maxField, &pb.Block{}},
		{"Done field 2^29-1", pb.TypeDone, maxField, &pb.Done{}},
		{"Block bad then good cid", pb.TypeBlock, badThenGood, &pb.Block{Cid: c}},
		{"Missing bad then good cid", pb.TypeMissing, badThenGood, &pb.Missing{Cid: c}},
		{"Block good then bad cid", pb.TypeBlock, goodThenBad, nil},
		{"Missing good then bad cid", pb.TypeMissing, goodThenBad, nil},
		{"Done true then false", pb.TypeDone, []byte{0x08, 0x01, 0x08, 0x00}, &pb.Done{}},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			got, err := pb.Unmarshal((&pb.Envelope{Type: tc.typ, Body: tc.body}).AppendMarshal(nil))
			if tc.want == nil {
				if !errors.Is(err, pb.ErrMalformed) {
					t.Fatalf("got %+v, %v; want ErrMalformed", got, err)
				}
				return
			}
			if err != nil {
				t.Fatal(err)
			}
			mustEqual(t, tc.want, got)
		})
	}
}
