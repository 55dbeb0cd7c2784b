package protocol

import (
	"encoding/binary"
	"errors"
	"fmt"
	"io"
	"sync/atomic"
	"time"

	"github.com/libp2p/go-libp2p/core/network"
	"github.com/libp2p/go-msgio"
	"github.com/multiformats/go-varint"

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
	// read counts the bytes read from s, frames and prefixes included;
	// another goroutine may load it (the store's rate floor).
	read atomic.Int64
	// prio is the priority at which frame buffers are reserved:
	// framePriority unless the protocol lowers it.
	prio uint8
}

func newConn(s network.Stream, idle time.Duration) *conn {
	c := &conn{s: s, w: msgio.NewVarintWriter(s), idle: idle, prio: framePriority}
	c.r = msgio.NewVarintReaderSize(countingReader{s, &c.read}, MaxMessageSize)
	return c
}

// countingReader adds what it reads to n.
type countingReader struct {
	r io.Reader
	n *atomic.Int64
}

func (r countingReader) Read(p []byte) (int, error) {
	k, err := r.r.Read(p)
	r.n.Add(int64(k))
	return k, err
}

// framePriority is the priority at which a receiver reserves the buffer of
// a frame it reads in its stream's resource scope, unless the protocol
// lowers it: the reservation fails once a scope (stream, peer, protocol,
// the peer on the protocol, or the whole system) would be over 80% of its
// memory limit, which leaves the rest to the muxer and to other protocols.
const framePriority = network.ReservationPriorityHigh

// refresh sets the stream deadline for the next message: the idle timeout,
// or the limit if that is earlier.
func (c *conn) refresh() {
	if c.idle <= 0 { // recvSlow: the limit alone, or no deadline
		_ = c.s.SetDeadline(c.limit)
		return
	}
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
// stream before a frame is io.EOF, unwrapped. The frame's buffer is
// reserved in the stream's resource scope while it is read and decoded;
// the message owns its memory, but recv releases the reservation before it
// returns, so use it for small frames and [conn.recvHeld] for blocks.
func (c *conn) recv(max int) (pb.Message, error) {
	m, n, err := c.recvHeld(max, nil)
	c.free(n)
	return m, err
}

// recvSlow is recv for an answer that the peer may take long to compute
// while it sends nothing (a tree proof): its deadline is the limit alone
// (the caller's context deadline; none if zero), not the idle timeout.
func (c *conn) recvSlow(max int) (pb.Message, error) {
	idle := c.idle
	c.idle = 0
	defer func() { c.idle = idle }()
	return c.recv(max)
}

// recvHeld is recv for a frame whose memory the caller keeps: the n bytes
// of its buffer stay reserved in the stream's scope until the caller
// passes n to [conn.free] (n is 0 on error; nothing is held then). The
// buffer is reserved before it is allocated; if the scope refuses,
// relieve, unless nil, is called to release what the caller holds, and
// the reservation is tried once more. A refused reservation is an error
// wrapping [network.ErrResourceLimitExceeded]: the peer is not at fault.
func (c *conn) recvHeld(max int, relieve func() error) (m pb.Message, n int, err error) {
	c.refresh()
	n, err = c.nextLen(max)
	if err != nil {
		return nil, 0, err
	}
	if err := c.reserve(n, relieve); err != nil {
		return nil, 0, err
	}
	buf := make([]byte, n)
	if _, err := c.r.Read(buf); err != nil {
		c.free(n)
		return nil, 0, fmt.Errorf("read frame: %w", err)
	}
	m, err = pb.Unmarshal(buf)
	if err != nil {
		c.free(n)
		return nil, 0, fmt.Errorf("%w: %w", ErrProtocol, err)
	}
	return m, n, nil
}

// reserve reserves n bytes in the stream's scope, calling relieve and
// trying again once if refused (see recvHeld).
func (c *conn) reserve(n int, relieve func() error) error {
	err := c.s.Scope().ReserveMemory(n, c.prio)
	if err != nil && relieve != nil {
		if rerr := relieve(); rerr != nil {
			return rerr
		}
		c.refresh() // relieve may have taken a while
		err = c.s.Scope().ReserveMemory(n, c.prio)
	}
	if err != nil {
		return fmt.Errorf("reserve %d bytes for a frame: %w", n, err)
	}
	return nil
}

// nextLen reads a frame's length prefix and checks it against max. The
// prefix must be a minimal unsigned varint of at most 9 bytes (as go-msgio
// reads it); a longer or non-minimal one, like a frame over max, is the
// peer's fault.
func (c *conn) nextLen(max int) (int, error) {
	n, err := c.r.NextMsgLen()
	switch {
	case errors.Is(err, io.EOF):
		return 0, io.EOF
	case errors.Is(err, varint.ErrNotMinimal), errors.Is(err, varint.ErrOverflow):
		return 0, fmt.Errorf("%w: frame length: %w", ErrProtocol, err)
	case err != nil:
		return 0, fmt.Errorf("read frame length: %w", err)
	case n < 0 || n > max:
		return 0, fmt.Errorf("%w: frame of %d bytes, limit %d", ErrMessageTooLarge, n, max)
	}
	return n, nil
}

// free releases n bytes reserved by [conn.recvHeld].
func (c *conn) free(n int) {
	if n > 0 {
		c.s.Scope().ReleaseMemory(n)
	}
}

// unexpected reports a message that is out of sequence.
func unexpected(m pb.Message, want string) error {
	return fmt.Errorf("%w: got %v, want %s", ErrProtocol, m.Type(), want)
}
