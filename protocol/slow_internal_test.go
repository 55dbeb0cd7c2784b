package protocol

import (
	"bytes"
	"testing"
	"time"

	"github.com/libp2p/go-libp2p/core/network"

	"github.com/casd/casd/protocol/pb"
)

// deadlineStream serves reads from r and records the deadlines set.
type deadlineStream struct {
	network.Stream
	r         *bytes.Reader
	deadlines []time.Time
}

func (s *deadlineStream) Read(p []byte) (int, error) { return s.r.Read(p) }
func (s *deadlineStream) SetDeadline(t time.Time) error {
	s.deadlines = append(s.deadlines, t)
	return nil
}
func (s *deadlineStream) Scope() network.StreamScope        { return &network.NullScope{} }
func (s *deadlineStream) Write(p []byte) (n int, err error) { return len(p), nil }

// TestRecvSlowDeadline: the wait for a tree proof is bounded by the
// caller's limit alone (none without one), not by the idle timeout, which
// would cut a proof of a large tree; the idle timeout applies again after.
func TestRecvSlowDeadline(t *testing.T) {
	two := append(frame(pb.Marshal(&pb.Done{})), frame(pb.Marshal(&pb.Done{}))...)
	for _, limit := range []time.Time{{}, time.Now().Add(time.Hour)} {
		s := &deadlineStream{r: bytes.NewReader(two)}
		c := newConn(s, time.Second)
		c.limit = limit
		before := time.Now()
		if _, err := c.recvSlow(MaxRequestSize); err != nil {
			t.Fatal(err)
		}
		if _, err := c.recv(MaxRequestSize); err != nil {
			t.Fatal(err)
		}
		if len(s.deadlines) != 2 || !s.deadlines[0].Equal(limit) {
			t.Fatalf("limit %v: deadlines %v, want the limit first", limit, s.deadlines)
		}
		if d := s.deadlines[1]; d.Before(before) || d.After(time.Now().Add(time.Second)) {
			t.Fatalf("limit %v: deadline after recvSlow %v, want the idle timeout", limit, d)
		}
	}
}
