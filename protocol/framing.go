package protocol

import (
	"encoding/binary"
	"errors"
	"fmt"
	"io"
	"time"

	"github.com/libp2p/go-libp2p/core/network"
	"github.com/libp2p/go-msgio"

	"github.com/casd/casd/protocol/pb"
)

// conn frames pb messages on one stream. It is not safe for concurrent use.
type conn struct {
	s    network.Stream
	r    msgio.ReadCloser
	w    msgio.WriteCloser
	idle time.Duration
	// limit, when non-zero, caps every deadline (the caller's context
	// deadline on the client side).
	limit time.Time
	// buf is reused to marshal outgoing messages.
	buf []byte
}

func newConn(s network.Stream, idle time.Duration) *conn {
	return &conn{
		s:    s,
		r:    msgio.NewVarintReaderSize(s, MaxMessageSize),
		w:    msgio.NewVarintWriter(s),
		idle: idle,
	}
}

// refresh sets the stream deadline for the next message: the idle timeout,
// or the limit if that is earlier.
func (c *conn) refresh() {
	d := time.Now().Add(c.idle)
	if !c.limit.IsZero() && c.limit.Before(d) {
		d = c.limit
	}
	_ = c.s.SetDeadline(d)
}

// send writes m as one frame.
func (c *conn) send(m pb.Message) error {
	if b, ok := m.(*pb.Block); ok && len(b.Data) > MaxRequestSize {
		return c.sendBlock(b)
	}
	c.refresh()
	c.buf = pb.AppendMarshal(c.buf[:0], m)
	err := c.w.WriteMsg(c.buf)
	if cap(c.buf) > MaxRequestSize {
		c.buf = nil // do not pin a block-sized buffer between messages
	}
	if err != nil {
		return fmt.Errorf("send %v: %w", m.Type(), err)
	}
	return nil
}

// sendBlock writes a large block as one frame without copying its data:
// the frame is the varint length, the envelope header from
// [pb.Block.AppendMarshalHeader], then the data, exactly what the msgio
// varint writer would produce from a marshalled message, minus two copies
// of the block.
func (c *conn) sendBlock(b *pb.Block) error {
	c.refresh()
	var hbuf, fbuf [128]byte
	h := b.AppendMarshalHeader(hbuf[:0])
	frame := binary.AppendUvarint(fbuf[:0], uint64(len(h)+len(b.Data)))
	frame = append(frame, h...)
	if _, err := c.s.Write(frame); err != nil {
		return fmt.Errorf("send %v: %w", b.Type(), err)
	}
	if _, err := c.s.Write(b.Data); err != nil {
		return fmt.Errorf("send %v: %w", b.Type(), err)
	}
	return nil
}

// recv reads one frame of at most max bytes and decodes it. A clean end of
// stream before a frame is io.EOF, unwrapped. The message owns its memory.
func (c *conn) recv(max int) (pb.Message, error) {
	c.refresh()
	n, err := c.r.NextMsgLen()
	if err != nil {
		if errors.Is(err, io.EOF) {
			return nil, io.EOF
		}
		return nil, fmt.Errorf("read frame length: %w", err)
	}
	if n < 0 || n > max {
		return nil, fmt.Errorf("%w: frame of %d bytes, limit %d", ErrMessageTooLarge, n, max)
	}
	buf := make([]byte, n)
	if _, err := c.r.Read(buf); err != nil {
		return nil, fmt.Errorf("read frame: %w", err)
	}
	m, err := pb.Unmarshal(buf)
	if err != nil {
		return nil, fmt.Errorf("%w: %w", ErrProtocol, err)
	}
	return m, nil
}

// unexpected reports a message that is out of sequence.
func unexpected(m pb.Message, want string) error {
	return fmt.Errorf("%w: got %v, want %s", ErrProtocol, m.Type(), want)
}
