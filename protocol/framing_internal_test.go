package protocol

import (
	"bytes"
	"encoding/binary"
	"runtime"
	"testing"
	"time"

	"github.com/ipfs/go-cid"
	"github.com/libp2p/go-libp2p/core/network"
	mh "github.com/multiformats/go-multihash"

	"github.com/casd/casd/protocol/pb"
)

// discardStream is a stream that counts what is written to it. Only the
// methods a sending conn calls are implemented.
type discardStream struct {
	network.Stream
	n int
}

func (s *discardStream) Write(p []byte) (int, error) { s.n += len(p); return len(p), nil }
func (s *discardStream) SetDeadline(time.Time) error { return nil }

// bufferStream records what is written to it.
type bufferStream struct {
	network.Stream
	buf bytes.Buffer
}

func (s *bufferStream) Write(p []byte) (int, error) { return s.buf.Write(p) }
func (s *bufferStream) SetDeadline(time.Time) error { return nil }

func testBlock(tb testing.TB, size int) *pb.Block {
	tb.Helper()
	data := bytes.Repeat([]byte{0x5a}, size)
	h, err := mh.Sum(data, mh.SHA2_256, -1)
	if err != nil {
		tb.Fatal(err)
	}
	return &pb.Block{Cid: cid.NewCidV1(cid.Raw, h), Data: data}
}

// TestSendFrames checks that a block, whichever way send writes it, goes
// out as one varint-length-prefixed envelope, as msgio frames it.
func TestSendFrames(t *testing.T) {
	for _, size := range []int{0, 1, MaxRequestSize - 64, MaxRequestSize, MaxRequestSize + 1, 4 << 20} {
		var s bufferStream
		c := newConn(&s, time.Minute)
		b := testBlock(t, size)
		if err := c.send(b); err != nil {
			t.Fatal(err)
		}
		if err := c.send(&pb.Done{RootComplete: true}); err != nil {
			t.Fatal(err)
		}
		want := append(frame(pb.Marshal(b)), frame(pb.Marshal(&pb.Done{RootComplete: true}))...)
		if !bytes.Equal(s.buf.Bytes(), want) {
			t.Fatalf("block of %d bytes: wrote %d bytes, want %d", size, s.buf.Len(), len(want))
		}
	}
}

func frame(env []byte) []byte {
	return append(binary.AppendUvarint(nil, uint64(len(env))), env...)
}

// TestSendLargeBlockNoCopy checks the point of the large-block path: a
// block bigger than any request is written from the caller's buffer, not
// copied into a frame, and no block-sized buffer stays pinned by the conn
// between messages.
func TestSendLargeBlockNoCopy(t *testing.T) {
	s := &discardStream{}
	c := newConn(s, time.Minute)
	big := testBlock(t, 4<<20)
	const rounds = 8
	var before, after runtime.MemStats
	runtime.ReadMemStats(&before)
	for range rounds {
		if err := c.send(big); err != nil {
			t.Fatal(err)
		}
	}
	runtime.ReadMemStats(&after)
	if s.n < rounds*len(big.Data) {
		t.Fatalf("wrote %d bytes, want at least %d", s.n, rounds*len(big.Data))
	}
	if alloc := after.TotalAlloc - before.TotalAlloc; alloc > 1<<20 {
		t.Fatalf("sending %d blocks of 4 MiB allocated %d bytes", rounds, alloc)
	}

	// A block just under the large-block path goes through the frame
	// buffer, which must not stay block-sized afterwards.
	if err := c.send(testBlock(t, MaxRequestSize)); err != nil {
		t.Fatal(err)
	}
	if cap(c.buf) > MaxRequestSize {
		t.Fatalf("conn pins a %d-byte buffer after a block", cap(c.buf))
	}
}
