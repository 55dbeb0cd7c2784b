package pb_test

import (
	"bytes"
	"fmt"
	"testing"

	"github.com/ipfs/go-cid"
	"google.golang.org/protobuf/encoding/protowire"
	"google.golang.org/protobuf/proto"

	"github.com/casd/casd/protocol/pb"
	"github.com/casd/casd/protocol/pb/internal/wire"
)

// The Block benchmarks compare package pb's hand-written Block path with
// the code generated from cas.proto, on the frames a peer sends and
// receives (docs/wire.md, "Fast path"). Per size:
//
//   - Marshal/header: what protocol's sender builds for a large block, the
//     frame minus the data ([pb.Block.AppendMarshalHeader]); the data is
//     written to the stream from the caller's buffer.
//   - Marshal/append: the whole frame into a reused buffer ([pb.AppendMarshal]).
//   - Marshal/generated: the whole frame with proto.Marshal, the block into
//     an Envelope.
//   - Marshal/generated-append: the envelope header by hand, then
//     proto.MarshalOptions.MarshalAppend of the block into a reused buffer:
//     the best the generated code does.
//   - Unmarshal/fast: [pb.Unmarshal] (the data aliases the frame).
//   - Unmarshal/generated: proto.Unmarshal of the envelope, then of the
//     block (each copies its bytes), then the CID check.
var benchSizes = []int{1 << 20, 4 << 20}

func benchBlock(b *testing.B, size int) *pb.Block {
	b.Helper()
	return &pb.Block{Cid: testCid(b, "bench"), Data: bytes.Repeat([]byte{0xa5}, size)}
}

func BenchmarkMarshalBlock(b *testing.B) {
	for _, size := range benchSizes {
		m := benchBlock(b, size)
		b.Run(fmt.Sprintf("%dMiB/header", size>>20), func(b *testing.B) {
			buf := make([]byte, 0, 128)
			b.SetBytes(int64(size))
			b.ReportAllocs()
			for b.Loop() {
				buf = m.AppendMarshalHeader(buf[:0])
			}
		})
		b.Run(fmt.Sprintf("%dMiB/append", size>>20), func(b *testing.B) {
			var buf []byte
			b.SetBytes(int64(size))
			b.ReportAllocs()
			for b.Loop() {
				buf = pb.AppendMarshal(buf[:0], m)
			}
		})
		b.Run(fmt.Sprintf("%dMiB/generated", size>>20), func(b *testing.B) {
			b.SetBytes(int64(size))
			b.ReportAllocs()
			for b.Loop() {
				if _, err := marshalGenerated(m); err != nil {
					b.Fatal(err)
				}
			}
		})
		b.Run(fmt.Sprintf("%dMiB/generated-append", size>>20), func(b *testing.B) {
			var buf []byte
			b.SetBytes(int64(size))
			b.ReportAllocs()
			for b.Loop() {
				var err error
				if buf, err = appendMarshalGenerated(buf[:0], m); err != nil {
					b.Fatal(err)
				}
			}
		})
	}
}

func BenchmarkUnmarshalBlock(b *testing.B) {
	for _, size := range benchSizes {
		frame := pb.Marshal(benchBlock(b, size))
		b.Run(fmt.Sprintf("%dMiB/fast", size>>20), func(b *testing.B) {
			b.SetBytes(int64(size))
			b.ReportAllocs()
			for b.Loop() {
				if _, err := pb.Unmarshal(frame); err != nil {
					b.Fatal(err)
				}
			}
		})
		b.Run(fmt.Sprintf("%dMiB/generated", size>>20), func(b *testing.B) {
			b.SetBytes(int64(size))
			b.ReportAllocs()
			for b.Loop() {
				if _, err := unmarshalGenerated(frame); err != nil {
					b.Fatal(err)
				}
			}
		})
	}
}

// marshalGenerated encodes the frame of m with the generated code only.
func marshalGenerated(m *pb.Block) ([]byte, error) {
	body, err := proto.Marshal(&wire.Block{Cid: m.Cid.Bytes(), Data: m.Data})
	if err != nil {
		return nil, err
	}
	typ := uint64(pb.TypeBlock)
	return proto.Marshal(&wire.Envelope{Type: &typ, Body: body})
}

// appendMarshalGenerated appends the frame of m to b, the envelope header
// written by hand and the body by the generated code.
func appendMarshalGenerated(b []byte, m *pb.Block) ([]byte, error) {
	w := &wire.Block{Cid: m.Cid.Bytes(), Data: m.Data}
	size := proto.Size(w)
	b = protowire.AppendTag(b, 1, protowire.VarintType)
	b = protowire.AppendVarint(b, uint64(pb.TypeBlock))
	b = protowire.AppendTag(b, 2, protowire.BytesType)
	b = protowire.AppendVarint(b, uint64(size))
	return proto.MarshalOptions{UseCachedSize: true}.MarshalAppend(b, w)
}

// unmarshalGenerated decodes a Block frame with the generated code only.
func unmarshalGenerated(frame []byte) (*pb.Block, error) {
	var env wire.Envelope
	if err := proto.Unmarshal(frame, &env); err != nil {
		return nil, err
	}
	var w wire.Block
	if err := proto.Unmarshal(env.Body, &w); err != nil {
		return nil, err
	}
	c, err := cid.Cast(w.Cid)
	if err != nil {
		return nil, err
	}
	return &pb.Block{Cid: c, Data: w.Data}, nil
}
