package adversary

import (
	"context"
	"encoding/binary"
	"errors"
	"fmt"
	"io"
	"sync"
	"time"

	"github.com/ipfs/go-cid"
	"github.com/libp2p/go-libp2p/core/network"
	"github.com/libp2p/go-libp2p/core/peer"
	p2pprotocol "github.com/libp2p/go-libp2p/core/protocol"
	"github.com/libp2p/go-msgio"
	mh "github.com/multiformats/go-multihash"

	"github.com/casd/casd/protocol"
	"github.com/casd/casd/protocol/pb"
)

// Frames are written as docs/wire.md specifies (uvarint length, then the
// envelope), or not, when the lie is in the framing itself.

// ErrReset is returned when the victim reset the stream.
var ErrReset = errors.New("adversary: the victim reset the stream")

// ErrNotReset is returned when an attack expected the victim to reset its
// stream and the victim answered or closed it instead.
var ErrNotReset = errors.New("adversary: the victim did not reset the stream")

// Frame encodes m as one frame: uvarint(length) || envelope.
func Frame(m pb.Message) []byte {
	env := pb.Marshal(m)
	return append(binary.AppendUvarint(nil, uint64(len(env))), env...)
}

// PrefixLie is a lie in a frame's length prefix.
type PrefixLie int

// The length-prefix lies.
const (
	// NonMinimalPrefix encodes the true length in one byte more than
	// needed (a trailing 0x00 continuation), which go-msgio refuses.
	NonMinimalPrefix PrefixLie = iota + 1
	// OverlongPrefix is a 10-byte varint, past what any frame length can
	// need (and past uint63).
	OverlongPrefix
)

// String names the lie.
func (l PrefixLie) String() string {
	switch l {
	case NonMinimalPrefix:
		return "non-minimal prefix"
	case OverlongPrefix:
		return "overlong prefix"
	}
	return fmt.Sprintf("PrefixLie(%d)", int(l))
}

// BadPrefix returns the prefix that the lie puts in front of a body of n
// bytes.
func BadPrefix(l PrefixLie, n int) []byte {
	switch l {
	case NonMinimalPrefix:
		b := binary.AppendUvarint(nil, uint64(n))
		b[len(b)-1] |= 0x80
		return append(b, 0x00)
	case OverlongPrefix:
		return []byte{0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0x01}
	}
	panic(fmt.Sprintf("adversary: unknown prefix lie %d", int(l)))
}

// SendBadPrefix opens a /cas/get/1.0 stream to victim and sends a valid
// GetRequest behind the lie's length prefix. It returns nil if the victim
// reset the stream, [ErrNotReset] if it answered or closed it.
func (p *Peer) SendBadPrefix(ctx context.Context, victim peer.ID, l PrefixLie) error {
	body := pb.Marshal(&pb.GetRequest{Want: []cid.Cid{CID([]byte("adversary"))}})
	return p.SendRaw(ctx, victim, protocol.GetID, append(BadPrefix(l, len(body)), body...))
}

// SendRaw opens a stream of proto to victim, writes raw (framed or not)
// and waits, bounded by ctx, for the victim to end the stream. It returns
// nil if the victim reset it, [ErrNotReset] if it answered or closed it.
func (p *Peer) SendRaw(ctx context.Context, victim peer.ID, proto p2pprotocol.ID, raw []byte) error {
	s, err := p.open(ctx, victim, proto)
	if err != nil {
		return err
	}
	defer s.Reset()
	if _, err := s.Write(raw); err != nil {
		return fmt.Errorf("adversary: write to %s: %w", victim, resetOr(err))
	}
	return awaitReset(s)
}

// open opens a stream of proto to victim; it lives until the caller
// closes or resets it, and its deadline is ctx's.
func (p *Peer) open(ctx context.Context, victim peer.ID, proto p2pprotocol.ID) (network.Stream, error) {
	s, err := p.Host.NewStream(ctx, victim, proto)
	if err != nil {
		return nil, fmt.Errorf("adversary: open %s to %s: %w", proto, victim, err)
	}
	if d, ok := ctx.Deadline(); ok {
		_ = s.SetDeadline(d)
	}
	return s, nil
}

// awaitReset reads s until it ends: nil if the victim reset it,
// ErrNotReset if it sent anything or closed it cleanly. s's deadline
// bounds the wait.
func awaitReset(s network.Stream) error {
	var b [1]byte
	n, err := s.Read(b[:])
	switch {
	case n > 0:
		return fmt.Errorf("%w: it answered", ErrNotReset)
	case errors.Is(err, network.ErrReset):
		return nil
	case errors.Is(err, io.EOF):
		return fmt.Errorf("%w: it closed the stream", ErrNotReset)
	}
	return fmt.Errorf("adversary: wait for a reset: %w", err)
}

// readMsg reads one frame of at most max bytes and decodes it. A reset is
// reported as [ErrReset].
func readMsg(r msgio.Reader, max int) (pb.Message, error) {
	n, err := r.NextMsgLen()
	if err == nil && n > max {
		err = fmt.Errorf("frame of %d bytes over %d", n, max)
	}
	if err != nil {
		return nil, resetOr(err)
	}
	buf := make([]byte, n)
	if _, err := io.ReadFull(r, buf); err != nil {
		return nil, resetOr(err)
	}
	return pb.Unmarshal(buf)
}

func resetOr(err error) error {
	if errors.Is(err, network.ErrReset) {
		return fmt.Errorf("%w: %w", ErrReset, err)
	}
	return err
}

// BadCID is a CID that casd must refuse everywhere.
type BadCID int

// The bad CIDs.
const (
	IdentityCID  BadCID = iota + 1 // CIDv1 raw identity: "verifies" whatever it carries
	SHA1CID                        // CIDv1 raw sha1
	TruncatedCID                   // CIDv1 raw sha2-256 cut to 31 bytes
)

// String names the CID.
func (b BadCID) String() string {
	switch b {
	case IdentityCID:
		return "identity"
	case SHA1CID:
		return "sha1"
	case TruncatedCID:
		return "truncated sha2-256"
	}
	return fmt.Sprintf("BadCID(%d)", int(b))
}

// Of names data by the bad CID kind b.
func (b BadCID) Of(data []byte) cid.Cid {
	code, length := map[BadCID]uint64{IdentityCID: mh.IDENTITY, SHA1CID: mh.SHA1, TruncatedCID: mh.SHA2_256}[b], -1
	if b == TruncatedCID {
		length = 31
	}
	h, err := mh.Sum(data, code, length)
	if err != nil {
		panic(fmt.Sprintf("adversary: %v CID: %v", b, err))
	}
	return cid.NewCidV1(cid.Raw, h)
}

// Stall is a flood of stalled streams: each was given a frame (or all of
// a frame but its last byte), then nothing, and nothing is read from it.
type Stall struct {
	// Streams counts the streams the victim let open (for a store, on
	// which it accepted an offer).
	Streams int
	// Filled counts the streams whose frame was written (for a store,
	// all of it but the last byte: the victim read that into its
	// buffers).
	Filled  int
	streams []network.Stream
}

// Stop resets every stream of the stall.
func (st *Stall) Stop() {
	for _, s := range st.streams {
		_ = s.Reset()
	}
}

// StallFrames opens n /cas/store/1.0 streams to victim, each with an
// offer of one block of size bytes that the victim accepts, then sends
// that Block frame's length prefix and all of the frame but its last byte,
// and stalls. A victim that allocates a frame's buffer when its prefix
// arrives holds about n*size bytes until its idle timeout. Offers the
// victim refuses and writes it does not read within ctx's deadline are
// not counted (a victim may defend itself so). Call Stop on the result to
// reset the streams.
func (p *Peer) StallFrames(ctx context.Context, victim peer.ID, n, size int) *Stall {
	data := make([]byte, size)
	frame := Frame(&pb.Block{Cid: CID(data), Data: data}) // shared, read-only
	st := &Stall{}
	var (
		mu sync.Mutex // guards st
		wg sync.WaitGroup
	)
	for range n {
		wg.Go(func() {
			s, filled := p.stallOne(ctx, victim, frame, size)
			mu.Lock()
			defer mu.Unlock()
			if s != nil {
				st.Streams++
				st.streams = append(st.streams, s)
			}
			if filled {
				st.Filled++
			}
		})
	}
	wg.Wait()
	return st
}

// stallOne opens one stalled stream; it returns nil if the victim refused.
func (p *Peer) stallOne(ctx context.Context, victim peer.ID, frame []byte, size int) (network.Stream, bool) {
	ss, err := p.Offer(ctx, victim, CID(frame), 1, uint64(size))
	if err != nil {
		return nil, false
	}
	_ = ss.s.SetWriteDeadline(deadline(ctx, 15*time.Second))
	_, err = ss.s.Write(frame[:len(frame)-1])
	_ = ss.s.SetDeadline(time.Time{})
	return ss.s, err == nil
}

// deadline is ctx's deadline or d from now, whichever is earlier.
func deadline(ctx context.Context, d time.Duration) time.Time {
	t := time.Now().Add(d)
	if dl, ok := ctx.Deadline(); ok && dl.Before(t) {
		return dl
	}
	return t
}

// StallGets opens n /cas/get/1.0 streams to victim, sends on each one
// GetRequest for want, and reads nothing: a victim that reads each wanted
// block into memory before writing it holds a block per stream (plus what
// its muxer buffers) until its write deadline. Streams the victim does not
// let open within ctx are not counted. Call Stop on the result to reset
// the streams.
func (p *Peer) StallGets(ctx context.Context, victim peer.ID, n int, want []cid.Cid) *Stall {
	frame := Frame(&pb.GetRequest{Want: want})
	st := &Stall{}
	var (
		mu sync.Mutex // guards st
		wg sync.WaitGroup
	)
	for range n {
		wg.Go(func() {
			s, err := p.open(ctx, victim, protocol.GetID)
			if err != nil {
				return
			}
			_, err = s.Write(frame)
			_ = s.SetDeadline(time.Time{})
			mu.Lock()
			defer mu.Unlock()
			st.Streams++
			st.streams = append(st.streams, s)
			if err == nil {
				st.Filled++
			}
		})
	}
	wg.Wait()
	return st
}
