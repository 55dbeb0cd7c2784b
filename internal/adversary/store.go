package adversary

import (
	"context"
	crand "crypto/rand"
	"encoding/binary"
	"errors"
	"fmt"
	"math/rand/v2"
	"sync"
	"time"

	"github.com/ipfs/go-cid"
	"github.com/libp2p/go-libp2p/core/network"
	"github.com/libp2p/go-libp2p/core/peer"
	"github.com/libp2p/go-msgio"

	"github.com/casd/casd/dag"
	"github.com/casd/casd/protocol"
	"github.com/casd/casd/protocol/pb"
)

// Client-side lies on /cas/store/1.0: what a stranger may offer and send.
// Every offer is signed with the peer's own owner key, which is free.

// offerLifetime is the expiry set on this peer's offers.
const offerLifetime = 10 * time.Minute

// RejectedError is a victim's refusal of an offer.
type RejectedError struct {
	Reason string // as the victim sent it
}

func (e *RejectedError) Error() string { return "adversary: offer rejected: " + e.Reason }

// StoreStream is a /cas/store/1.0 stream on which the victim accepted an
// offer. Send and End must not run concurrently with each other; AwaitReset
// (which only reads) and Reset may run beside them.
type StoreStream struct {
	s network.Stream
	w msgio.Writer
	r msgio.Reader
}

// Offer opens a store stream to victim and offers root, announcing blocks
// blocks of bytes bytes in all, signed by p.Owner. A refusal is a
// [*RejectedError]; a reset wraps [ErrReset]. ctx bounds the exchange
// only: the stream stays open until it is reset or ended.
func (p *Peer) Offer(ctx context.Context, victim peer.ID, root cid.Cid, blocks, bytes uint64) (*StoreStream, error) {
	o := &pb.StoreOffer{Root: root, Blocks: blocks, Bytes: bytes, Expiry: time.Now().Add(offerLifetime).Unix()}
	protocol.SignOffer(p.Owner, victim, o)
	s, err := p.open(ctx, victim, protocol.StoreID)
	if err != nil {
		return nil, err
	}
	ss := &StoreStream{s: s, w: msgio.NewVarintWriter(s), r: msgio.NewVarintReaderSize(s, protocol.MaxRequestSize)}
	stop := ss.bound(ctx)
	reply, err := ss.offer(o)
	stop()
	if err != nil {
		_ = s.Reset()
		return nil, fmt.Errorf("adversary: offer %s to %s: %w", root, victim, err)
	}
	if !reply.Accept {
		_ = s.Reset()
		return nil, &RejectedError{Reason: reply.Reason}
	}
	return ss, nil
}

func (ss *StoreStream) offer(o *pb.StoreOffer) (*pb.StoreReply, error) {
	if err := ss.w.WriteMsg(pb.Marshal(o)); err != nil {
		return nil, resetOr(err)
	}
	m, err := readMsg(ss.r, protocol.MaxRequestSize)
	if err != nil {
		return nil, fmt.Errorf("read reply: %w", err)
	}
	reply, ok := m.(*pb.StoreReply)
	if !ok {
		return nil, fmt.Errorf("got %v, want StoreReply", m.Type())
	}
	return reply, nil
}

// bound applies ctx to the stream until the returned stop is called: its
// deadline becomes the stream's, its end resets the stream.
func (ss *StoreStream) bound(ctx context.Context) (stop func()) {
	if d, ok := ctx.Deadline(); ok {
		_ = ss.s.SetDeadline(d)
	}
	unreg := context.AfterFunc(ctx, func() { _ = ss.s.Reset() })
	return func() {
		unreg()
		_ = ss.s.SetDeadline(time.Time{})
	}
}

// Send writes one Block frame. A reset wraps [ErrReset].
func (ss *StoreStream) Send(ctx context.Context, b pb.Block) error {
	defer ss.bound(ctx)()
	if err := ss.w.WriteMsg(pb.Marshal(&b)); err != nil {
		return fmt.Errorf("adversary: send %s: %w", b.Cid, resetOr(err))
	}
	return nil
}

// End sends StoreEnd, closes the write side and reads the victim's
// StoreAck. A reset wraps [ErrReset].
func (ss *StoreStream) End(ctx context.Context) (*pb.StoreAck, error) {
	defer ss.bound(ctx)()
	defer ss.s.Reset() // after the ack, nothing more is read
	if err := ss.w.WriteMsg(pb.Marshal(&pb.StoreEnd{})); err != nil {
		return nil, fmt.Errorf("adversary: send StoreEnd: %w", resetOr(err))
	}
	if err := ss.s.CloseWrite(); err != nil {
		return nil, fmt.Errorf("adversary: close write: %w", resetOr(err))
	}
	m, err := readMsg(ss.r, protocol.MaxRequestSize)
	if err != nil {
		return nil, fmt.Errorf("adversary: read ack: %w", err)
	}
	ack, ok := m.(*pb.StoreAck)
	if !ok {
		return nil, fmt.Errorf("adversary: got %v, want StoreAck", m.Type())
	}
	return ack, nil
}

// AwaitReset waits until the stream ends: nil if the victim reset it,
// [ErrNotReset] if it answered or closed it, ctx's error if ctx ended
// first (the stream is then reset here, which is no reset by the victim).
func (ss *StoreStream) AwaitReset(ctx context.Context) error {
	defer ss.bound(ctx)()
	err := awaitReset(ss.s)
	if ctx.Err() != nil {
		return fmt.Errorf("adversary: wait for a reset: %w", ctx.Err())
	}
	return err
}

// Reset resets the stream.
func (ss *StoreStream) Reset() { _ = ss.s.Reset() }

// Store offers root with exactly the count and bytes of blocks, sends them
// in order, ends the stream and returns the victim's ack.
func (p *Peer) Store(ctx context.Context, victim peer.ID, root cid.Cid, blocks []pb.Block) (*pb.StoreAck, error) {
	var bytes uint64
	for _, b := range blocks {
		bytes += uint64(len(b.Data))
	}
	ss, err := p.Offer(ctx, victim, root, uint64(len(blocks)), bytes)
	if err != nil {
		return nil, err
	}
	for _, b := range blocks {
		if err := ss.Send(ctx, b); err != nil {
			ss.Reset()
			return nil, err
		}
	}
	return ss.End(ctx)
}

// StoreForgedRoot stores on victim a root of height 0 whose "chunks" are
// links: given inner manifest nodes of someone else's file, it calls them
// leaves (hostile peers, point 1). The victim holds the links already, so
// the tree looks complete and it is pinned. It returns the forged root.
func (p *Peer) StoreForgedRoot(ctx context.Context, victim peer.ID, links []cid.Cid) (cid.Cid, *pb.StoreAck, error) {
	r := Root(0, links)
	ack, err := p.Store(ctx, victim, r.Cid, []pb.Block{r})
	return r.Cid, ack, err
}

// StoreBomb stores on victim the DAG bomb [Bomb](height, fanout), root
// first (hostile peers, point 2).
func (p *Peer) StoreBomb(ctx context.Context, victim peer.ID, height, fanout int) (cid.Cid, *pb.StoreAck, error) {
	bs := Bomb(height, fanout)
	ack, err := p.Store(ctx, victim, bs[0].Cid, bs)
	return bs[0].Cid, ack, err
}

// Junk is a file of random chunks generated on demand from a seed, so that
// many concurrent stores of tens of MiB do not sit in the attacker's
// memory. Its root (height 0) links to every chunk; the chunks parse but
// no key opens them.
type Junk struct {
	seed   [32]byte
	sizes  []int
	chunks []cid.Cid
	root   pb.Block
}

// NewJunk makes a junk file of bytes bytes of chunk data (headers
// included) cut in chunks of at most chunkSize bytes.
func NewJunk(bytes int64, chunkSize int) *Junk {
	j := &Junk{}
	_, _ = crand.Read(j.seed[:])
	for rest := bytes; rest > 0; rest -= int64(chunkSize) {
		j.sizes = append(j.sizes, int(min(rest, int64(chunkSize))))
	}
	for i := range j.sizes {
		j.chunks = append(j.chunks, CID(j.chunk(i)))
	}
	j.root = Root(0, j.chunks)
	return j
}

// Root is the junk file's root.
func (j *Junk) Root() cid.Cid { return j.root.Cid }

// Blocks is the number of blocks, root included.
func (j *Junk) Blocks() uint64 { return uint64(len(j.sizes) + 1) }

// Bytes is the total size of the blocks, root included.
func (j *Junk) Bytes() uint64 {
	n := uint64(len(j.root.Data))
	for _, s := range j.sizes {
		n += uint64(s)
	}
	return n
}

// chunk returns the bytes of chunk i: a chunk header, then bytes drawn from
// the seed and i.
func (j *Junk) chunk(i int) []byte {
	var seed [32]byte
	copy(seed[:], j.seed[:])
	binary.LittleEndian.PutUint64(seed[24:], uint64(i))
	data := make([]byte, j.sizes[i])
	_, _ = rand.NewChaCha8(seed).Read(data)
	data[0], data[1] = dag.FormatVersion, dag.KindChunk
	return data
}

// StoreJunk stores the junk file j on victim: an honest-looking offer of
// its exact size, root first, then every chunk.
func (p *Peer) StoreJunk(ctx context.Context, victim peer.ID, j *Junk) (*pb.StoreAck, error) {
	ss, err := p.Offer(ctx, victim, j.Root(), j.Blocks(), j.Bytes())
	if err != nil {
		return nil, err
	}
	if err := ss.Send(ctx, j.root); err != nil {
		ss.Reset()
		return nil, err
	}
	for i := range j.sizes {
		if err := ss.Send(ctx, pb.Block{Cid: j.chunks[i], Data: j.chunk(i)}); err != nil {
			ss.Reset()
			return nil, err
		}
	}
	return ss.End(ctx)
}

// Trickle is a store stream fed one tiny block at a time (hostile peers,
// point 3): it is never idle long enough for an idle timeout, and never
// ends on its own.
type Trickle struct {
	// Root is the offered root; Accepted is when the victim accepted it.
	Root     cid.Cid
	Accepted time.Time

	ss     *StoreStream
	cancel context.CancelFunc
	wg     sync.WaitGroup
	ended  chan struct{} // closed when the stream ended

	mu       sync.Mutex // guards the fields below
	sent     int
	endedAt  time.Time
	endErr   error
	stopping bool // Stop was called
	byOwner  bool // the stream ended after Stop was called
}

// TrickleStore offers victim a root announced as bytes bytes, sends the
// root block, then one 64-byte chunk of it every interval until the
// stream ends or Stop is called. It returns once the offer is accepted.
func (p *Peer) TrickleStore(ctx context.Context, victim peer.ID, bytes uint64, every time.Duration) (*Trickle, error) {
	chunks := make([]pb.Block, 1024)
	links := make([]cid.Cid, len(chunks))
	for i := range chunks {
		chunks[i] = Chunk(62)
		links[i] = chunks[i].Cid
	}
	root := Root(0, links)
	ss, err := p.Offer(ctx, victim, root.Cid, uint64(len(chunks)+1), bytes)
	if err != nil {
		return nil, err
	}
	lctx, cancel := context.WithCancel(context.Background())
	t := &Trickle{Root: root.Cid, Accepted: time.Now(), ss: ss, cancel: cancel, ended: make(chan struct{})}
	t.wg.Go(t.watch)
	t.wg.Go(func() { t.feed(lctx, append([]pb.Block{root}, chunks...), every) })
	return t, nil
}

// watch reads the stream until it ends, which only the victim (or Stop)
// makes happen: the victim sends nothing before its ack.
func (t *Trickle) watch() {
	err := t.ss.AwaitReset(context.Background())
	t.mu.Lock()
	t.endedAt, t.endErr, t.byOwner = time.Now(), err, t.stopping
	t.mu.Unlock()
	close(t.ended)
}

// feed sends one block now, then one every interval.
func (t *Trickle) feed(ctx context.Context, blocks []pb.Block, every time.Duration) {
	tick := time.NewTicker(every)
	defer tick.Stop()
	for _, b := range blocks {
		if err := t.ss.Send(ctx, b); err != nil {
			return
		}
		t.mu.Lock()
		t.sent++
		t.mu.Unlock()
		select {
		case <-ctx.Done():
			return
		case <-t.ended:
			return
		case <-tick.C:
		}
	}
}

// Ended is closed when the stream has ended.
func (t *Trickle) Ended() <-chan struct{} { return t.ended }

// Result reports when the stream ended and how: nil if the victim reset
// it, an error wrapping [ErrNotReset] if it closed it, or anything else
// (after Stop, the local reset). Call it after Ended is closed.
func (t *Trickle) Result() (time.Time, int, error) {
	t.mu.Lock()
	defer t.mu.Unlock()
	if t.byOwner {
		return t.endedAt, t.sent, errors.New("adversary: trickle stopped by its owner")
	}
	return t.endedAt, t.sent, t.endErr
}

// Stop resets the stream (if the victim has not) and waits for the
// trickle's goroutines.
func (t *Trickle) Stop() {
	t.mu.Lock()
	t.stopping = true
	t.mu.Unlock()
	t.cancel()
	t.ss.Reset()
	t.wg.Wait()
}
