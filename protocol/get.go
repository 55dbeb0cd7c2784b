package protocol

import (
	"context"
	"errors"
	"fmt"
	"io"
	"sync"

	"github.com/ipfs/go-cid"
	"github.com/libp2p/go-libp2p/core/host"
	"github.com/libp2p/go-libp2p/core/network"
	"github.com/libp2p/go-libp2p/core/peer"

	"github.com/casd/casd/blockstore"
	"github.com/casd/casd/protocol/pb"
)

// GetBackend is what /cas/get/1.0 serves from. It must be safe for
// concurrent use: each stream is served on its own goroutine.
type GetBackend interface {
	// Get returns the bytes of the block c. The returned slice is only
	// read, and not retained after the block is sent. A missing block is
	// an error wrapping blockstore.ErrNotFound (answered with Missing);
	// any other error resets the stream. Get should return only verified
	// data: a client that receives a block not matching its CID drops the
	// peer.
	Get(ctx context.Context, c cid.Cid) ([]byte, error)
	// Complete reports whether every block of the tree under root is
	// present.
	Complete(ctx context.Context, root cid.Cid) (bool, error)
}

func (s *Service) handleGet(str network.Stream) {
	ctx, end, ok := s.begin(str)
	if !ok {
		return
	}
	defer end()
	p := str.Conn().RemotePeer()
	c := newConn(str, s.cfg.idle)
	for {
		m, err := c.recv(MaxRequestSize)
		if err == io.EOF {
			_ = str.Close()
			return
		}
		if err != nil {
			s.fail(str, "get: read request", err)
			return
		}
		switch req := m.(type) {
		case *pb.GetRequest:
			log.Debugw("get request", "peer", p, "root", req.Root, "want", len(req.Want),
				"wantRootComplete", req.WantRootComplete)
			err = s.serveGet(ctx, c, req)
		case *pb.Challenge:
			log.Debugw("challenge", "peer", p, "root", req.Root, "cid", req.Cid)
			err = s.serveChallenge(ctx, c, req)
		case *pb.TreeChallenge:
			log.Debugw("tree challenge", "peer", p, "root", req.Root)
			err = s.serveTreeChallenge(ctx, c, req)
		default:
			s.fail(str, "get: read request", unexpected(m, "GetRequest, Challenge or TreeChallenge"))
			return
		}
		if err != nil {
			s.fail(str, "get: serve", err)
			return
		}
	}
}

// BlockSizer is implemented by a [GetBackend] that can tell a block's size
// without reading it. The server then reserves, in the stream's resource
// scope, exactly what it is about to send; otherwise it reserves
// [blockstore.MaxBlockSize] per block.
type BlockSizer interface {
	// GetSize returns the size of the block c, or an error wrapping
	// blockstore.ErrNotFound.
	GetSize(ctx context.Context, c cid.Cid) (int, error)
}

// sendPriority is the priority at which a server reserves a block it
// sends: low, like a store's frames, so that a reader who asks and then
// never reads (the block then sits in the server's memory, its write
// stalled by flow control) holds at most 40% of what the limits give it.
const sendPriority = network.ReservationPriorityLow

func (s *Service) serveGet(ctx context.Context, c *conn, req *pb.GetRequest) error {
	for _, w := range req.Want {
		if err := s.serveWant(ctx, c, w); err != nil {
			return err
		}
	}
	var done pb.Done
	if req.WantRootComplete && req.Root.Defined() {
		ok, err := s.cfg.get.Complete(ctx, req.Root)
		if err != nil {
			if ctx.Err() == nil {
				log.Warnw("get: backend error", "root", req.Root, "err", err)
			}
			return fmt.Errorf("check root %s: %w", req.Root, err)
		}
		done.RootComplete = ok
	}
	return c.send(&done)
}

// serveWant sends the block w, or Missing, with the block's memory
// reserved in the stream's scope from before it is read until it is sent.
// A refused reservation resets the stream (not a strike: the peer may
// just be busy with other reads).
func (s *Service) serveWant(ctx context.Context, c *conn, w cid.Cid) error {
	n := blockstore.MaxBlockSize
	if sz, ok := s.cfg.get.(BlockSizer); ok {
		size, err := sz.GetSize(ctx, w)
		switch {
		case errors.Is(err, blockstore.ErrNotFound):
			return c.send(&pb.Missing{Cid: w})
		case err != nil:
			return fmt.Errorf("size of %s: %w", w, err)
		}
		n = size
	}
	if err := c.s.Scope().ReserveMemory(n, sendPriority); err != nil {
		return fmt.Errorf("reserve %d bytes to send %s: %w", n, w, err)
	}
	defer c.free(n)
	data, err := s.cfg.get.Get(ctx, w)
	switch {
	case err == nil:
		return c.send(&pb.Block{Cid: w, Data: data})
	case errors.Is(err, blockstore.ErrNotFound):
		return c.send(&pb.Missing{Cid: w})
	default:
		if ctx.Err() == nil {
			log.Warnw("get: backend error", "cid", w, "err", err)
		}
		return fmt.Errorf("get %s: %w", w, err)
	}
}

// GetSession is a client of /cas/get/1.0 that keeps one stream to a peer
// open for several requests, saving a stream negotiation per request.
// Requests on a session are serialized; it is safe for concurrent use.
// After a request fails, the stream is gone and every later request
// returns an error wrapping [ErrSessionBroken]; open a new session. A
// session is meant for a burst of requests: a server resets a stream that
// stays idle longer than its idle timeout (30 s by default).
type GetSession struct {
	p peer.ID

	// mu serializes requests and guards c and err.
	mu  sync.Mutex
	c   *conn
	err error
}

// NewGetSession opens a /cas/get/1.0 stream to p. ctx bounds the opening
// only.
func NewGetSession(ctx context.Context, h host.Host, p peer.ID) (*GetSession, error) {
	str, err := h.NewStream(ctx, p, GetID)
	if err != nil {
		return nil, fmt.Errorf("open get stream to %s: %w", p, err)
	}
	return &GetSession{p: p, c: newConn(str, DefaultIdleTimeout)}, nil
}

var errSessionClosed = errors.New("session closed")

// Close ends the session, closing the stream.
func (s *GetSession) Close() error {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.err != nil {
		return nil // already reset
	}
	s.err = errSessionClosed
	return s.c.s.Close()
}

// Fetch asks the peer for the blocks in want (any number: they are sent in
// requests of at most [pb.MaxWant]) and calls onBlock for each block the
// peer has, in the order of want, after checking that the block is the one
// asked for and hashes to its CID. It returns the CIDs the peer lacks, in
// order. root, if defined, tells the peer which tree the blocks belong to.
//
// onBlock runs on the calling goroutine and may retain the block; if it
// returns an error, Fetch stops and returns that error (wrapped). A wrong
// block returns an error wrapping [ErrBadBlock], another breach of the
// protocol one wrapping [ErrProtocol] or [ErrMessageTooLarge]: all three
// mean the peer misbehaved. Any error breaks the session, except one
// wrapping [blockstore.ErrBadCid]: a root or want that is not CIDv1 raw
// sha2-256 is refused before anything is sent. Cancelling ctx resets the
// stream.
func (s *GetSession) Fetch(ctx context.Context, root cid.Cid, want []cid.Cid,
	onBlock func(blockstore.Block) error) (missing []cid.Cid, err error) {
	if len(want) == 0 {
		return nil, nil
	}
	// A peer resets the stream, and strikes us, for a CID of another form:
	// refuse it before sending anything, leaving the session usable.
	if root.Defined() {
		if err := blockstore.CheckCid(root); err != nil {
			return nil, fmt.Errorf("fetch: root: %w", err)
		}
	}
	for _, w := range want {
		if err := blockstore.CheckCid(w); err != nil {
			return nil, fmt.Errorf("fetch: want: %w", err)
		}
	}
	err = s.do(ctx, func(c *conn) error {
		for start := 0; start < len(want); start += pb.MaxWant {
			batch := want[start:min(start+pb.MaxWant, len(want))]
			log.Debugw("get", "peer", s.p, "root", root, "want", len(batch))
			if err := c.send(&pb.GetRequest{Root: root, Want: batch}); err != nil {
				return err
			}
			for _, w := range batch {
				lacks, err := readAnswer(c, w, onBlock)
				if err != nil {
					return err
				}
				if lacks {
					missing = append(missing, w)
				}
			}
			if _, err := recvDone(c); err != nil {
				return err
			}
		}
		return nil
	})
	if err != nil {
		return nil, err
	}
	return missing, nil
}

// readAnswer reads the answer for w: a block, checked and passed to
// onBlock, or a Missing (lacks true). The frame's memory stays reserved in
// the stream's scope until onBlock returns.
func readAnswer(c *conn, w cid.Cid, onBlock func(blockstore.Block) error) (lacks bool, err error) {
	m, n, err := c.recvHeld(MaxMessageSize, nil)
	if err != nil {
		return false, fmt.Errorf("read answer for %s: %w", w, eofUnexpected(err))
	}
	defer c.free(n)
	switch m := m.(type) {
	case *pb.Block:
		if !m.Cid.Equals(w) {
			return false, fmt.Errorf("%w: got %s, asked for %s", ErrBadBlock, m.Cid, w)
		}
		b := blockstore.Block{Cid: w, Data: m.Data}
		if err := blockstore.VerifyBlock(b.Cid, b.Data); err != nil {
			return false, fmt.Errorf("%w: %w", ErrBadBlock, err)
		}
		if err := onBlock(b); err != nil {
			return false, fmt.Errorf("handle block %s: %w", w, err)
		}
		return false, nil
	case *pb.Missing:
		if !m.Cid.Equals(w) {
			return false, fmt.Errorf("%w: missing %s, asked for %s", ErrProtocol, m.Cid, w)
		}
		return true, nil
	default:
		return false, unexpected(m, "Block or Missing")
	}
}

// HasRoot asks the peer whether it holds every block of the tree under
// root.
func (s *GetSession) HasRoot(ctx context.Context, root cid.Cid) (bool, error) {
	if err := blockstore.CheckCid(root); err != nil {
		return false, fmt.Errorf("has root: %w", err)
	}
	var complete bool
	err := s.do(ctx, func(c *conn) error {
		log.Debugw("get root complete", "peer", s.p, "root", root)
		if err := c.send(&pb.GetRequest{Root: root, WantRootComplete: true}); err != nil {
			return err
		}
		var err error
		complete, err = recvDone(c)
		return err
	})
	return complete, err
}

// do runs one exchange under ctx: deadlines capped by ctx's, the stream
// reset on cancellation or on any error.
func (s *GetSession) do(ctx context.Context, f func(*conn) error) error {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.err != nil {
		return fmt.Errorf("%w: %w", ErrSessionBroken, s.err)
	}
	c := s.c
	c.limit, _ = ctx.Deadline()
	stop := context.AfterFunc(ctx, func() { _ = c.s.Reset() })
	err := f(c)
	if !stop() && err == nil {
		err = ctx.Err() // the stream was reset under a finished exchange
	}
	if err != nil {
		// ctx may have ended and reset the stream under us.
		err = withCtxErr(ctx, err)
		_ = c.s.Reset()
		s.err = err
		return fmt.Errorf("get from %s: %w", s.p, err)
	}
	return nil
}

func recvDone(c *conn) (bool, error) {
	m, err := c.recv(MaxRequestSize)
	if err != nil {
		return false, fmt.Errorf("read done: %w", eofUnexpected(err))
	}
	d, ok := m.(*pb.Done)
	if !ok {
		return false, unexpected(m, "Done")
	}
	return d.RootComplete, nil
}

// eofUnexpected turns a clean end of stream in the middle of an exchange
// into io.ErrUnexpectedEOF.
func eofUnexpected(err error) error {
	if err == io.EOF {
		return io.ErrUnexpectedEOF
	}
	return err
}

// Fetch opens a stream to p, fetches want and closes it; see
// [GetSession.Fetch].
func Fetch(ctx context.Context, h host.Host, p peer.ID, root cid.Cid, want []cid.Cid,
	onBlock func(blockstore.Block) error) (missing []cid.Cid, err error) {
	if len(want) == 0 {
		return nil, nil
	}
	s, err := NewGetSession(ctx, h, p)
	if err != nil {
		return nil, err
	}
	defer s.Close()
	return s.Fetch(ctx, root, want, onBlock)
}

// HasRoot asks p whether it holds every block of the tree under root.
func HasRoot(ctx context.Context, h host.Host, p peer.ID, root cid.Cid) (bool, error) {
	s, err := NewGetSession(ctx, h, p)
	if err != nil {
		return false, err
	}
	defer s.Close()
	return s.HasRoot(ctx, root)
}
