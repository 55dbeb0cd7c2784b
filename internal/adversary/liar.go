package adversary

import (
	"context"
	"crypto/rand"
	"errors"
	"fmt"
	"io"
	"sync/atomic"
	"time"

	"github.com/ipfs/go-cid"
	"github.com/libp2p/go-libp2p/core/network"
	"github.com/libp2p/go-msgio"

	"github.com/casd/casd/protocol"
	"github.com/casd/casd/protocol/pb"
)

// Lie is what a [Peer] serving as a liar ([Peer.Lie]) says on
// /cas/get/1.0 and /cas/store/1.0. Every lie claims, to anyone who asks
// (Done{root_complete: true} to want_root_complete), to hold every root
// whole; they differ in what follows.
type Lie int

// The lies.
const (
	// ClaimAll holds nothing and claims everything: every want is
	// Missing, every store offer is accepted, its blocks read and
	// dropped, and acknowledged with StoreAck{stored: n, complete: true}.
	// It is the fake replica of point 5 of the hostile-peers issue.
	ClaimAll Lie = iota + 1
	// MissingAll claims every root, then answers every want with Missing
	// (point 6); it refuses store offers.
	MissingAll
	// WrongBytes claims every root, then answers every want with a Block
	// of the CID asked for and random data (point 12); it refuses store
	// offers.
	WrongBytes
)

// String names the lie.
func (l Lie) String() string {
	switch l {
	case ClaimAll:
		return "ClaimAll"
	case MissingAll:
		return "MissingAll"
	case WrongBytes:
		return "WrongBytes"
	}
	return fmt.Sprintf("Lie(%d)", int(l))
}

// liarIdle is how long a liar waits on a silent stream before giving up on
// it: the victims' own idle timeout.
const liarIdle = protocol.DefaultIdleTimeout

// wrongBlockSize is the size of the data a WrongBytes liar sends.
const wrongBlockSize = 4 << 10

// LiarCounts is what a [Liar] has done so far.
type LiarCounts struct {
	// Claims counts the Done{root_complete: true} sent.
	Claims int64
	// Lies counts the wants answered falsely: Missing after a claim, or a
	// Block of wrong bytes.
	Lies int64
	// Stores counts the store offers accepted and acknowledged as
	// complete without storing anything.
	Stores int64
}

// Liar is a [Peer] whose /cas/get/1.0 and /cas/store/1.0 handlers tell
// one [Lie]. It is safe for concurrent use.
type Liar struct {
	peer                 *Peer
	lie                  Lie
	claims, lies, stores atomic.Int64
}

// Lie makes p answer /cas/get/1.0 and /cas/store/1.0 with lie, replacing
// any handlers set before, and returns the liar. The handlers run on
// libp2p's stream goroutines and end with their streams, at the latest
// when p closes.
func (p *Peer) Lie(lie Lie) *Liar {
	l := &Liar{peer: p, lie: lie}
	p.Host.SetStreamHandler(protocol.GetID, l.handleGet)
	p.Host.SetStreamHandler(protocol.StoreID, l.handleStore)
	return l
}

// Peer returns the peer that tells the lie.
func (l *Liar) Peer() *Peer { return l.peer }

// Counts returns what the liar did so far.
func (l *Liar) Counts() LiarCounts {
	return LiarCounts{Claims: l.claims.Load(), Lies: l.lies.Load(), Stores: l.stores.Load()}
}

// Provide publishes a provider record for c in the DHT, so that victims
// looking for c's holders find the liar. Its peer must have been made
// with Options.DHT.
func (l *Liar) Provide(ctx context.Context, c cid.Cid) error {
	if l.peer.DHT == nil {
		return errors.New("adversary: provide: peer has no DHT")
	}
	if err := l.peer.DHT.Provide(ctx, c, true); err != nil {
		return fmt.Errorf("adversary: provide %s: %w", c, err)
	}
	return nil
}

// liarConn is one stream framed as docs/wire.md says: uvarint length
// (go-msgio), then an envelope; each message gets a fresh deadline.
type liarConn struct {
	s network.Stream
	r msgio.ReadCloser
	w msgio.WriteCloser
}

func newLiarConn(s network.Stream) *liarConn {
	return &liarConn{s: s, r: msgio.NewVarintReaderSize(s, protocol.MaxMessageSize), w: msgio.NewVarintWriter(s)}
}

func (f *liarConn) send(m pb.Message) error {
	_ = f.s.SetDeadline(time.Now().Add(liarIdle))
	if err := f.w.WriteMsg(pb.Marshal(m)); err != nil {
		return fmt.Errorf("send %v: %w", m.Type(), err)
	}
	return nil
}

// recv returns the next message, or io.EOF at a clean end of stream.
func (f *liarConn) recv() (pb.Message, error) {
	_ = f.s.SetDeadline(time.Now().Add(liarIdle))
	b, err := f.r.ReadMsg()
	if err != nil {
		if errors.Is(err, io.EOF) {
			return nil, io.EOF
		}
		return nil, fmt.Errorf("read frame: %w", err)
	}
	m, err := pb.Unmarshal(b)
	if err != nil {
		return nil, fmt.Errorf("decode frame: %w", err)
	}
	return m, nil
}

// handleGet answers GetRequests until the client closes its side.
func (l *Liar) handleGet(s network.Stream) {
	f := newLiarConn(s)
	for {
		m, err := f.recv()
		if err == io.EOF {
			_ = s.Close()
			return
		}
		req, ok := m.(*pb.GetRequest)
		if err != nil || !ok || l.answer(f, req) != nil {
			_ = s.Reset()
			return
		}
	}
}

// answer lies about every want of req, then claims its root.
func (l *Liar) answer(f *liarConn, req *pb.GetRequest) error {
	for _, w := range req.Want {
		var m pb.Message = &pb.Missing{Cid: w}
		if l.lie == WrongBytes {
			data := make([]byte, wrongBlockSize)
			_, _ = rand.Read(data)
			m = &pb.Block{Cid: w, Data: data}
		}
		if err := f.send(m); err != nil {
			return err
		}
		l.lies.Add(1)
	}
	done := &pb.Done{RootComplete: req.WantRootComplete && req.Root.Defined()}
	if err := f.send(done); err != nil {
		return err
	}
	if done.RootComplete {
		l.claims.Add(1)
	}
	return nil
}

// handleStore accepts an offer and acknowledges it as complete, storing
// nothing (ClaimAll), or refuses it (the other lies).
func (l *Liar) handleStore(s network.Stream) {
	f := newLiarConn(s)
	if err := l.store(f); err != nil {
		_ = s.Reset()
		return
	}
	_ = s.Close()
}

func (l *Liar) store(f *liarConn) error {
	m, err := f.recv()
	if err != nil {
		return err
	}
	if _, ok := m.(*pb.StoreOffer); !ok {
		return fmt.Errorf("got %v, want StoreOffer", m.Type())
	}
	if l.lie != ClaimAll {
		return f.send(&pb.StoreReply{Reason: "not accepting stores"})
	}
	if err := f.send(&pb.StoreReply{Accept: true}); err != nil {
		return err
	}
	var n uint64
	for {
		m, err := f.recv()
		if err != nil {
			return err
		}
		switch m.(type) {
		case *pb.Block:
			n++ // dropped on the floor
		case *pb.StoreEnd:
			// Counted before the ack, so that a client that has the ack
			// sees the count.
			l.stores.Add(1)
			return f.send(&pb.StoreAck{Stored: n, Complete: true})
		default:
			return fmt.Errorf("got %v, want Block or StoreEnd", m.Type())
		}
	}
}
