package adversary

import (
	"context"
	"crypto/rand"
	"errors"
	"fmt"
	"io"
	"sync"
	"sync/atomic"

	"github.com/ipfs/go-cid"
	"github.com/libp2p/go-libp2p/core/network"

	"github.com/casd/casd/blockstore"
	"github.com/casd/casd/dag"
	"github.com/casd/casd/protocol"
	"github.com/casd/casd/protocol/pb"
)

// ProofLie is what a [Hoarder] answers to storage challenges. A hoarder
// stores what it is offered and serves it honestly; only its proofs lie,
// so that a victim can catch it by its audits alone.
type ProofLie int

// The proof lies.
const (
	// HonestProofs answers every challenge truly: a hoarder starts so to
	// be counted, and turns liar later ([Hoarder.SetLie]).
	HonestProofs ProofLie = iota
	// GarbageProofs answers every Challenge and every TreeChallenge with
	// a random proof.
	GarbageProofs
	// GarbageTreeProofs answers a Challenge with the honest proof of the
	// block it holds, and every TreeChallenge with a random proof: only
	// the full audit can catch it.
	GarbageTreeProofs
	// GarbageBlockProofs answers every Challenge with a random proof and
	// every TreeChallenge truly: only the light check can catch it.
	GarbageBlockProofs
)

// String names the lie.
func (l ProofLie) String() string {
	switch l {
	case HonestProofs:
		return "HonestProofs"
	case GarbageProofs:
		return "GarbageProofs"
	case GarbageTreeProofs:
		return "GarbageTreeProofs"
	case GarbageBlockProofs:
		return "GarbageBlockProofs"
	}
	return fmt.Sprintf("ProofLie(%d)", int(l))
}

// HoarderCounts is what a [Hoarder] has done so far.
type HoarderCounts struct {
	// Stores counts the roots received whole and acknowledged complete.
	Stores int64
	// Served counts the blocks sent on /cas/get/1.0.
	Served int64
	// Garbage counts the random proofs sent, HonestProofs the true ones.
	Garbage, HonestProofs int64
	// TreeChallenges counts the tree challenges received.
	TreeChallenges int64
	// Leases and Removes count the renewals and removals accepted.
	Leases, Removes int64
}

// Hoarder is a [Peer] that stores every root it is offered (up to its
// capacity), serves the blocks it holds, and answers storage challenges
// as its [ProofLie] says. It is safe for concurrent use.
type Hoarder struct {
	peer     *Peer
	lie      atomic.Int64 // a ProofLie
	capacity int64

	mu     sync.Mutex // guards the fields below
	blocks map[cid.Cid][]byte
	roots  map[cid.Cid]bool // roots held whole
	used   int64            // bytes of blocks, plus bytes reserved by streams in flight

	stores, served, garbage, honest, trees, leases, removes atomic.Int64
}

// Hoard makes p store what it is offered, up to capacity bytes in memory,
// and lie in its proofs as lie says, replacing any handlers set before.
// The handlers run on libp2p's stream goroutines and end with their
// streams, at the latest when p closes.
func (p *Peer) Hoard(lie ProofLie, capacity int64) *Hoarder {
	h := &Hoarder{peer: p, capacity: capacity, blocks: map[cid.Cid][]byte{}, roots: map[cid.Cid]bool{}}
	h.SetLie(lie)
	p.Host.SetStreamHandler(protocol.GetID, h.handleGet)
	p.Host.SetStreamHandler(protocol.StoreID, h.handleStore)
	return h
}

// SetLie changes how the hoarder answers challenges from now on.
func (h *Hoarder) SetLie(lie ProofLie) { h.lie.Store(int64(lie)) }

func (h *Hoarder) proofLie() ProofLie { return ProofLie(h.lie.Load()) }

// Peer returns the hoarding peer.
func (h *Hoarder) Peer() *Peer { return h.peer }

// Counts returns what the hoarder did so far.
func (h *Hoarder) Counts() HoarderCounts {
	return HoarderCounts{Stores: h.stores.Load(), Served: h.served.Load(),
		Garbage: h.garbage.Load(), HonestProofs: h.honest.Load(), TreeChallenges: h.trees.Load(),
		Leases: h.leases.Load(), Removes: h.removes.Load()}
}

// Holds reports whether the hoarder holds root's whole tree.
func (h *Hoarder) Holds(root cid.Cid) bool {
	h.mu.Lock()
	defer h.mu.Unlock()
	return h.roots[root]
}

// Get implements dag.BlockGetter over the blocks held.
func (h *Hoarder) Get(_ context.Context, c cid.Cid) ([]byte, error) {
	h.mu.Lock()
	defer h.mu.Unlock()
	data, ok := h.blocks[c]
	if !ok {
		return nil, fmt.Errorf("adversary: %s: %w", c, blockstore.ErrNotFound)
	}
	return data, nil
}

// handleGet answers GetRequests honestly and challenges with lies, until
// the client closes its side.
func (h *Hoarder) handleGet(s network.Stream) {
	f := newLiarConn(s)
	for {
		m, err := f.recv()
		if err == io.EOF {
			_ = s.Close()
			return
		}
		if err == nil {
			err = h.serve(f, m)
		}
		if err != nil {
			_ = s.Reset()
			return
		}
	}
}

// serve answers one message of a /cas/get/1.0 stream.
func (h *Hoarder) serve(f *liarConn, m pb.Message) error {
	switch req := m.(type) {
	case *pb.GetRequest:
		return h.answerGet(f, req)
	case *pb.Challenge:
		return h.answerChallenge(f, req)
	case *pb.TreeChallenge:
		return h.answerTree(f, req)
	default:
		return fmt.Errorf("got %v, want GetRequest, Challenge or TreeChallenge", m.Type())
	}
}

// answerGet sends each wanted block held, Missing for the others, then
// whether the root is held whole.
func (h *Hoarder) answerGet(f *liarConn, req *pb.GetRequest) error {
	for _, w := range req.Want {
		var m pb.Message = &pb.Missing{Cid: w}
		if data, err := h.Get(context.Background(), w); err == nil {
			m = &pb.Block{Cid: w, Data: data}
			h.served.Add(1)
		}
		if err := f.send(m); err != nil {
			return err
		}
	}
	held := req.WantRootComplete && req.Root.Defined() && h.Holds(req.Root)
	return f.send(&pb.Done{RootComplete: held})
}

// answerChallenge says Missing for a block not held, and otherwise sends a
// random proof, or the true one if only tree proofs lie.
func (h *Hoarder) answerChallenge(f *liarConn, ch *pb.Challenge) error {
	data, err := h.Get(context.Background(), ch.Cid)
	switch {
	case err != nil || !h.Holds(ch.Root):
		return f.send(&pb.Missing{Cid: ch.Cid})
	case h.proofLie() == GarbageProofs || h.proofLie() == GarbageBlockProofs:
		return h.sendGarbage(f)
	default:
		h.honest.Add(1)
		return f.send(&pb.Proof{Proof: protocol.ProofOf(h.peer.ID(), ch.Nonce, ch.Cid, data)})
	}
}

// answerTree says Missing for a root not held whole, and otherwise sends a
// random proof, or the true one (computed as a holder does) if only block
// proofs lie or none do.
func (h *Hoarder) answerTree(f *liarConn, tc *pb.TreeChallenge) error {
	h.trees.Add(1)
	if !h.Holds(tc.Root) {
		return f.send(&pb.Missing{Cid: tc.Root})
	}
	if l := h.proofLie(); l == GarbageProofs || l == GarbageTreeProofs {
		return h.sendGarbage(f)
	}
	proofs, err := protocol.TreeProofs(context.Background(), h, tc.Root,
		[]protocol.TreeProver{{Peer: h.peer.ID(), Nonce: tc.Nonce}})
	if err != nil {
		return fmt.Errorf("tree proof of %s: %w", tc.Root, err)
	}
	h.honest.Add(1)
	return f.send(&pb.Proof{Proof: proofs[0]})
}

func (h *Hoarder) sendGarbage(f *liarConn) error {
	var p pb.Proof
	_, _ = rand.Read(p.Proof[:])
	h.garbage.Add(1)
	return f.send(&p)
}

// handleStore serves one /cas/store/1.0 stream: an offer, a lease renewal
// or a removal.
func (h *Hoarder) handleStore(s network.Stream) {
	f := newLiarConn(s)
	if err := h.store(f); err != nil {
		_ = s.Reset()
		return
	}
	_ = s.Close()
}

func (h *Hoarder) store(f *liarConn) error {
	m, err := f.recv()
	if err != nil {
		return err
	}
	switch req := m.(type) {
	case *pb.StoreOffer:
		return h.receive(f, req)
	case *pb.Lease:
		h.leases.Add(1)
		return f.send(&pb.StoreReply{Accept: true})
	case *pb.Remove:
		h.removes.Add(1)
		h.drop(req.Root)
		return f.send(&pb.StoreReply{Accept: true})
	default:
		return fmt.Errorf("got %v, want StoreOffer, Lease or Remove", m.Type())
	}
}

// receive accepts an offer that fits the capacity, keeps every block whose
// data matches its CID, and acknowledges the root complete once its whole
// tree is held.
func (h *Hoarder) receive(f *liarConn, o *pb.StoreOffer) error {
	if !h.reserve(int64(o.Bytes)) {
		return f.send(&pb.StoreReply{Reason: "over quota: hoarder full"})
	}
	if err := f.send(&pb.StoreReply{Accept: true}); err != nil {
		h.release(int64(o.Bytes))
		return err
	}
	stored, err := h.receiveBlocks(f, o)
	if err != nil {
		return err
	}
	complete := h.complete(o.Root)
	if complete {
		h.stores.Add(1)
	}
	return f.send(&pb.StoreAck{Stored: stored, Complete: complete})
}

// receiveBlocks reads Block frames until StoreEnd, keeping at most the
// offered bytes; the reservation is turned into held bytes as blocks come.
func (h *Hoarder) receiveBlocks(f *liarConn, o *pb.StoreOffer) (uint64, error) {
	left := int64(o.Bytes)
	defer func() { h.release(left) }()
	var stored uint64
	for {
		m, err := f.recv()
		if err != nil {
			return stored, err
		}
		switch b := m.(type) {
		case *pb.Block:
			if stored >= o.Blocks {
				return stored, errors.New("more blocks than offered")
			}
			if int64(len(b.Data)) > left {
				return stored, errors.New("more bytes than offered")
			}
			if err := blockstore.VerifyBlock(b.Cid, b.Data); err != nil {
				return stored, err
			}
			if h.keep(b.Cid, b.Data) {
				left -= int64(len(b.Data))
			}
			stored++
		case *pb.StoreEnd:
			return stored, nil
		default:
			return stored, fmt.Errorf("got %v, want Block or StoreEnd", m.Type())
		}
	}
}

// reserve sets n bytes aside if they fit.
func (h *Hoarder) reserve(n int64) bool {
	h.mu.Lock()
	defer h.mu.Unlock()
	if n < 0 || h.used+n > h.capacity {
		return false
	}
	h.used += n
	return true
}

func (h *Hoarder) release(n int64) {
	h.mu.Lock()
	defer h.mu.Unlock()
	h.used -= n
}

// keep stores a block, reporting whether it was new (its bytes, reserved
// already, are now held).
func (h *Hoarder) keep(c cid.Cid, data []byte) bool {
	h.mu.Lock()
	defer h.mu.Unlock()
	if _, ok := h.blocks[c]; ok {
		return false
	}
	h.blocks[c] = data
	return true
}

// complete reports, and records, whether every block of root's tree is
// held.
func (h *Hoarder) complete(root cid.Cid) bool {
	var missing bool
	err := dag.Walk(context.Background(), h, root, func(c cid.Cid, _ byte) error {
		if _, err := h.Get(context.Background(), c); err != nil {
			missing = true
			return err
		}
		return nil
	})
	if err != nil || missing {
		return false
	}
	h.mu.Lock()
	defer h.mu.Unlock()
	h.roots[root] = true
	return true
}

// drop forgets root; its blocks stay (a hoarder does not collect), which
// is what a holder may do with a removed root until its next GC.
func (h *Hoarder) drop(root cid.Cid) {
	h.mu.Lock()
	defer h.mu.Unlock()
	delete(h.roots, root)
}
