package protocol

import (
	"context"
	"crypto/ed25519"
	"crypto/sha256"
	"encoding/binary"
	"errors"
	"fmt"
	"iter"
	"math"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/ipfs/go-cid"
	"github.com/libp2p/go-libp2p/core/host"
	"github.com/libp2p/go-libp2p/core/network"
	"github.com/libp2p/go-libp2p/core/peer"

	"github.com/casd/casd/blockstore"
	"github.com/casd/casd/dag"
	"github.com/casd/casd/protocol/pb"
)

// StoreBackend is what /cas/store/1.0 writes into. It must be safe for
// concurrent use: each stream is served on its own goroutine.
type StoreBackend interface {
	// Reserve checks that bytes more bytes of root, offered by owner,
	// fit the quota, and sets them aside until release is called, which
	// the service does once, when the stream ends (the root is pinned by
	// then, or the transfer failed). bytes is the offer's charge: its data
	// bytes plus [BlockCharge] per block. Its error message is sent to the
	// peer as the rejection reason.
	Reserve(ctx context.Context, owner ed25519.PublicKey, root cid.Cid, bytes int64) (release func(), err error)
	// PutMany durably stores blocks, each already verified against its
	// CID: when it returns nil the blocks survive a crash. It may retain
	// the blocks' Data.
	PutMany(ctx context.Context, blocks []blockstore.Block) error
	// Complete reports whether every block of the tree under root is
	// present.
	Complete(ctx context.Context, root cid.Cid) (bool, error)
	// Pin pins root (and so its tree) as a replica held for owner until
	// lease; the holder drops it then, unless renewed.
	Pin(ctx context.Context, root cid.Cid, owner ed25519.PublicKey, lease time.Time) error
	// Renew extends owner's replica of root to lease, never shortening
	// it. An error (for a root not held, one wrapping [ErrNotHeld]) is
	// sent to the peer as the refusal reason.
	Renew(ctx context.Context, owner ed25519.PublicKey, root cid.Cid, lease time.Time) error
	// Remove drops owner's replica of root. Removing what is not held is
	// not an error.
	Remove(ctx context.Context, owner ed25519.PublicKey, root cid.Cid) error
}

// Store stream limits.
const (
	// MaxOfferLifetime is how far in the future an offer's expiry may lie.
	// A store stream ends at its offer's expiry.
	MaxOfferLifetime = time.Hour
	// offerLifetime is the expiry a client sets on its offers: the most a
	// receiver accepts, less 10 minutes for clocks that disagree.
	offerLifetime = MaxOfferLifetime - 10*time.Minute
	// MaxOfferBlocks is the most blocks an offer may announce: as many as
	// a walk of a file visits.
	MaxOfferBlocks = dag.DefaultMaxWalkBlocks
	// BlockCharge is what each offered block costs against the receiver's
	// quota on top of its bytes (a file-system block), so that blocks of
	// no bytes are not free.
	BlockCharge = 4096
	// DefaultMinStoreRate and DefaultStoreRateWindow are the default
	// minimum rate of a store stream, in bytes per second over each
	// window ([WithMinStoreRate]): 160 KiB every 10 s, a quarter of what
	// a slow 64 KiB/s link delivers.
	DefaultMinStoreRate    = 16 << 10
	DefaultStoreRateWindow = 10 * time.Second
	// lifetimeSlack is how many rate windows a store stream may last
	// beyond its offered bytes at the minimum rate.
	lifetimeSlack = 3
	// maxExpectExtra is how many CIDs the blocks of a store stream may
	// link beyond its offered count: one full manifest block, so that an
	// offer of part of a tree is received.
	maxExpectExtra = dag.MaxLinks
	// The receiver writes blocks in batches of at most this many blocks
	// or bytes.
	storeBatchBlocks = 16
	storeBatchBytes  = 16 << 20
)

// storePriority is the priority of what an accepted store stream reserves
// in its resource scope (its block frames, its expected set): low, so a
// reservation fails once a scope would be over 40% of its memory limit. A
// store yields memory to reads and to other protocols, and when short of
// it the receiver writes smaller batches ([storeRecv.run]); a peer that
// announces frames and stalls holds at most 40% of what the limits give
// it on the protocol.
const storePriority = network.ReservationPriorityLow

// ReplicaPinPrefix prefixes the pin reason of a stored root; the owner's
// public key follows in lower-case hex.
const ReplicaPinPrefix = "replica:"

// offerDomain separates offer signatures from any other use of the owner
// key.
const offerDomain = "casd/store/1.0\x00"

// offerMessage is what the owner signs:
// domain || receiver peer ID bytes || root CID bytes || be64(Bytes) || be64(Expiry),
// then || be64(Lease) only when Lease is not 0, so that an offer without a
// lease signs the bytes it signed before leases existed.
func offerMessage(receiver peer.ID, o *pb.StoreOffer) []byte {
	root := o.Root.KeyString()
	b := make([]byte, 0, len(offerDomain)+len(receiver)+len(root)+24)
	b = append(b, offerDomain...)
	b = append(b, receiver...)
	b = append(b, root...)
	b = binary.BigEndian.AppendUint64(b, o.Bytes)
	b = binary.BigEndian.AppendUint64(b, uint64(o.Expiry))
	if o.Lease != 0 {
		b = binary.BigEndian.AppendUint64(b, uint64(o.Lease))
	}
	return b
}

// SignOffer sets o.Owner to the public key of priv and o.Sig to the
// owner's signature of the offer for receiver. The other fields must be
// set first.
func SignOffer(priv ed25519.PrivateKey, receiver peer.ID, o *pb.StoreOffer) {
	o.Owner = priv.Public().(ed25519.PublicKey)
	o.Sig = ed25519.Sign(priv, offerMessage(receiver, o))
}

// VerifyOffer checks that o is addressed to receiver, signed by its owner,
// and that its expiry lies between now and now+[MaxOfferLifetime]. A bad
// key, root or signature wraps [ErrBadSignature]; a bad expiry wraps
// [ErrOfferExpired].
func VerifyOffer(receiver peer.ID, o *pb.StoreOffer, now time.Time) error {
	switch {
	case len(o.Owner) != ed25519.PublicKeySize:
		return fmt.Errorf("%w: owner key of %d bytes", ErrBadSignature, len(o.Owner))
	case len(o.Sig) != ed25519.SignatureSize:
		return fmt.Errorf("%w: signature of %d bytes", ErrBadSignature, len(o.Sig))
	case !o.Root.Defined():
		return fmt.Errorf("%w: no root", ErrBadSignature)
	case !ed25519.Verify(o.Owner, offerMessage(receiver, o), o.Sig):
		return ErrBadSignature
	case o.Expiry < now.Unix():
		return fmt.Errorf("%w: at %s", ErrOfferExpired, time.Unix(o.Expiry, 0).UTC().Format(time.RFC3339))
	case o.Expiry > now.Add(MaxOfferLifetime).Unix():
		return fmt.Errorf("%w: expiry %s too far ahead", ErrOfferExpired,
			time.Unix(o.Expiry, 0).UTC().Format(time.RFC3339))
	}
	return nil
}

func (s *Service) handleStore(str network.Stream) {
	ctx, end, ok := s.begin(str)
	if !ok {
		return
	}
	defer end()
	c := newConn(str, s.cfg.idle)
	if err := s.serveStore(ctx, str, c); err != nil {
		s.fail(str, "store", err)
		return
	}
	_ = str.Close()
}

// maxReasonLen bounds the rejection reason sent to a peer.
const maxReasonLen = 1024

// reject answers an offer with a refusal. The reason is made valid UTF-8
// (the wire requires it) and truncated to maxReasonLen bytes.
func reject(c *conn, reason string) error {
	if len(reason) > maxReasonLen {
		reason = reason[:maxReasonLen]
	}
	return c.send(&pb.StoreReply{Reason: strings.ToValidUTF8(reason, "?")})
}

// serveStore dispatches on the stream's first message: an offer (a
// transfer follows), a lease renewal or a removal (answered at once).
func (s *Service) serveStore(ctx context.Context, str network.Stream, c *conn) error {
	m, err := c.recv(MaxRequestSize)
	if err != nil {
		return fmt.Errorf("read offer: %w", eofUnexpected(err))
	}
	switch m := m.(type) {
	case *pb.StoreOffer:
		return s.serveOffer(ctx, str, c, m)
	case *pb.Lease:
		return s.serveLease(ctx, str.Conn().RemotePeer(), c, m)
	case *pb.Remove:
		return s.serveRemove(ctx, str.Conn().RemotePeer(), c, m)
	default:
		return unexpected(m, "StoreOffer, Lease or Remove")
	}
}

// serveOffer answers an offer and, if accepted, receives its blocks.
func (s *Service) serveOffer(ctx context.Context, str network.Stream, c *conn, offer *pb.StoreOffer) error {
	p := str.Conn().RemotePeer()
	log.Debugw("store offer", "peer", p, "root", offer.Root, "blocks", offer.Blocks, "bytes", offer.Bytes)
	charge, err := s.checkOffer(p, offer)
	if err != nil {
		return reject(c, err.Error())
	}
	lease, err := leaseFor(offer.Lease, time.Now())
	if err != nil {
		return reject(c, "bad offer: "+err.Error())
	}
	owner := ed25519.PublicKey(offer.Owner)
	release, err := s.cfg.store.Reserve(ctx, owner, offer.Root, charge)
	if err != nil {
		log.Debugw("store rejected", "peer", p, "root", offer.Root, "err", err)
		return reject(c, err.Error())
	}
	defer release()
	deadline := s.cfg.rate.withDefaults().lifetime(offer, time.Now())
	ctx, cancel := context.WithDeadline(ctx, deadline)
	defer cancel()
	c.limit, c.prio = deadline, storePriority
	if err := c.send(&pb.StoreReply{Accept: true}); err != nil {
		return err
	}
	r := newStoreRecv(s, c, offer, deadline)
	r.lease = lease
	defer r.drop()
	return r.run(ctx)
}

// checkOffer verifies an offer and returns what it costs against the
// quota: its bytes plus [BlockCharge] per block. A forged offer is a
// strike; a stale one, or one too large to charge, is only refused.
func (s *Service) checkOffer(p peer.ID, offer *pb.StoreOffer) (charge int64, err error) {
	if err := VerifyOffer(s.h.ID(), offer, time.Now()); err != nil {
		s.strikeForged(p, "store", err)
		return 0, err
	}
	if offer.Blocks > MaxOfferBlocks {
		return 0, fmt.Errorf("offer too large: %d blocks, at most %d", offer.Blocks, MaxOfferBlocks)
	}
	perBlocks := int64(offer.Blocks) * BlockCharge // at most 2^34
	if offer.Bytes > uint64(math.MaxInt64-perBlocks) {
		return 0, fmt.Errorf("offer too large: %d bytes and %d blocks", offer.Bytes, offer.Blocks)
	}
	return int64(offer.Bytes) + perBlocks, nil
}

// storeRecv is the receiving side of one accepted store stream.
type storeRecv struct {
	s        *Service
	c        *conn
	offer    *pb.StoreOffer
	deadline time.Time // the stream's lifetime ends
	lease    time.Time // granted to the replica, passed to Pin
	want     *expectSet
	floor    *rateFloor

	batch      []blockstore.Block // verified, not yet written
	batchBytes int
	held       int    // frame bytes reserved for batch
	blocks     uint64 // received
	bytes      uint64 // received
	stored     uint64 // returned by PutMany
}

func newStoreRecv(s *Service, c *conn, offer *pb.StoreOffer, deadline time.Time) *storeRecv {
	max := int(offer.Blocks) + maxExpectExtra
	return &storeRecv{
		s: s, c: c, offer: offer, deadline: deadline,
		want:  newExpectSet(max, c.s.Scope()),
		floor: newRateFloor(s.cfg.rate.withDefaults(), offer.Bytes, &c.read, time.Now()),
	}
}

// drop releases what an unfinished transfer holds: the unwritten batch
// (discarded) and the expected set.
func (r *storeRecv) drop() {
	r.c.free(r.held)
	r.batch, r.held = nil, 0
	r.want.free()
}

// run reads blocks until StoreEnd, then acknowledges. The rate floor
// watches the stream meanwhile. When the resource manager refuses memory
// for the next frame, the batch is written early, which releases its
// memory, and the reservation tried once more.
func (r *storeRecv) run(ctx context.Context) error {
	if err := r.want.expect(r.offer.Root, dag.KindRoot); err != nil {
		return err
	}
	stop := r.floor.watch(ctx, r.c.s)
	defer stop()
	relieve := func() error { return r.flush(ctx) }
	for {
		m, n, err := r.c.recvHeld(MaxMessageSize, relieve)
		if err != nil {
			return r.readError(err)
		}
		switch m := m.(type) {
		case *pb.Block:
			r.held += n
			if err := r.block(ctx, m); err != nil {
				return err
			}
		case *pb.StoreEnd:
			r.c.free(n)
			stop()
			if r.floor.tripped() { // the stream is reset
				return r.floor.err()
			}
			return r.end(ctx)
		default:
			r.c.free(n)
			return unexpected(m, "Block or StoreEnd")
		}
	}
}

// readError explains a failed read: too slow, out of time, or the
// stream's own error.
func (r *storeRecv) readError(err error) error {
	switch {
	case r.floor.tripped():
		return fmt.Errorf("read block: %w", r.floor.err())
	case !time.Now().Before(r.deadline):
		return fmt.Errorf("read block: store stream lifetime ended at %s: %w",
			r.deadline.UTC().Format(time.RFC3339), err)
	}
	return fmt.Errorf("read block: %w", eofUnexpected(err))
}

// block checks a received block and adds it to the batch, which it writes
// once full.
func (r *storeRecv) block(ctx context.Context, m *pb.Block) error {
	r.blocks++
	r.bytes += uint64(len(m.Data))
	if r.blocks > r.offer.Blocks || r.bytes > r.offer.Bytes {
		return fmt.Errorf("%w: more than the %d blocks, %d bytes offered",
			ErrProtocol, r.offer.Blocks, r.offer.Bytes)
	}
	if len(m.Data) > blockstore.MaxBlockSize {
		return fmt.Errorf("%w: %s has %d bytes", ErrBadBlock, m.Cid, len(m.Data))
	}
	if !m.Cid.Defined() {
		return fmt.Errorf("%w: no CID", ErrBadBlock)
	}
	if err := blockstore.VerifyBlock(m.Cid, m.Data); err != nil {
		return fmt.Errorf("%w: %w", ErrBadBlock, err)
	}
	if err := r.want.take(m.Cid, m.Data); err != nil {
		return err
	}
	r.batch = append(r.batch, blockstore.Block{Cid: m.Cid, Data: m.Data})
	r.batchBytes += len(m.Data)
	if len(r.batch) >= storeBatchBlocks || r.batchBytes >= storeBatchBytes {
		return r.flush(ctx)
	}
	return nil
}

// flush writes the batch durably. The rate floor pauses meanwhile: the
// sender cannot be blamed for the receiver's disk. The batch's memory is
// released once PutMany returns.
func (r *storeRecv) flush(ctx context.Context) error {
	if len(r.batch) == 0 {
		return nil
	}
	r.floor.pause(time.Now())
	err := r.s.cfg.store.PutMany(ctx, r.batch)
	r.floor.resume(time.Now())
	n := len(r.batch)
	r.c.free(r.held)
	r.batch, r.batchBytes, r.held = nil, 0, 0
	if err != nil {
		if ctx.Err() == nil {
			log.Warnw("store: backend error", "root", r.offer.Root, "err", err)
		}
		return fmt.Errorf("put %d blocks: %w", n, err)
	}
	r.stored += uint64(n)
	return nil
}

// end writes the last batch, pins the root if its tree is complete, while
// the stream's lifetime lasts, and acknowledges.
func (r *storeRecv) end(ctx context.Context) error {
	if err := r.flush(ctx); err != nil {
		return err
	}
	root := r.offer.Root
	complete, err := r.s.cfg.store.Complete(ctx, root)
	if err != nil {
		return fmt.Errorf("check root %s: %w", root, err)
	}
	if complete {
		if !time.Now().Before(r.deadline) {
			return fmt.Errorf("pin %s: %w: the store stream's lifetime ended at %s", root,
				ErrOfferExpired, r.deadline.UTC().Format(time.RFC3339))
		}
		if err := r.s.cfg.store.Pin(ctx, root, ed25519.PublicKey(r.offer.Owner), r.lease); err != nil {
			return fmt.Errorf("pin %s: %w", root, err)
		}
	}
	log.Debugw("stored", "peer", r.c.s.Conn().RemotePeer(), "root", root, "blocks", r.stored, "complete", complete)
	return r.c.send(&pb.StoreAck{Stored: r.stored, Complete: complete})
}

// StoreResult is the receiver's acknowledgement of a store.
type StoreResult struct {
	// Stored counts the blocks the receiver durably stored from this
	// stream.
	Stored uint64
	// Complete reports that the receiver holds the whole tree of the
	// root and pinned it.
	Complete bool
}

// Store pushes blocks of root to p on behalf of owner, whose key signs the
// offer. totalBlocks and totalBytes announce what blocks yields; the
// receiver reserves quota for totalBytes plus [BlockCharge] per block and
// refuses anything beyond. blocks must yield the root first and every
// other block after the manifest block that links it, each once (the
// order of dag.Walk): the receiver takes no other block. A refusal is a
// [*RemoteError] wrapping [ErrRejected]. An error from blocks aborts the
// store and is returned wrapped. Cancelling ctx resets the stream; every
// message must also make progress within [DefaultIdleTimeout], and the
// receiver resets a stream that outlives the offer's expiry (50 minutes
// ahead) or falls below its minimum rate ([WithMinStoreRate]). The offer
// states the lease of [WithLease], or none (the receiver grants
// [DefaultLease]).
func Store(ctx context.Context, h host.Host, p peer.ID, owner ed25519.PrivateKey, root cid.Cid,
	blocks iter.Seq2[blockstore.Block, error], totalBlocks, totalBytes uint64, opts ...StoreOption) (res StoreResult, err error) {
	var so storeOptions
	for _, o := range opts {
		o(&so)
	}
	if len(owner) != ed25519.PrivateKeySize {
		return res, fmt.Errorf("store: owner key of %d bytes", len(owner))
	}
	if err := blockstore.CheckCid(root); err != nil {
		return res, fmt.Errorf("store: root: %w", err)
	}
	offer := &pb.StoreOffer{
		Root:   root,
		Blocks: totalBlocks,
		Bytes:  totalBytes,
		Expiry: time.Now().Add(offerLifetime).Unix(),
	}
	if !so.lease.IsZero() {
		offer.Lease = so.lease.Unix()
	}
	SignOffer(owner, p, offer)

	str, err := h.NewStream(ctx, p, StoreID)
	if err != nil {
		return res, fmt.Errorf("open store stream to %s: %w", p, err)
	}
	c := newConn(str, DefaultIdleTimeout)
	c.limit, _ = ctx.Deadline()
	stop := context.AfterFunc(ctx, func() { _ = str.Reset() })
	res, err = storeOn(c, offer, blocks)
	if !stop() && err == nil {
		err = ctx.Err()
	}
	if err != nil {
		err = withCtxErr(ctx, err)
		_ = str.Reset()
		var rerr *RemoteError
		if errors.As(err, &rerr) {
			return res, err
		}
		return res, fmt.Errorf("store %s to %s: %w", root, p, err)
	}
	return res, nil
}

// StoreOption configures one [Store].
type StoreOption func(*storeOptions)

type storeOptions struct {
	lease time.Time // zero: none stated
}

// WithLease states in the offer the lease expiry the owner grants the
// replica (signed with the offer). The receiver clamps it to
// [MaxLease] from its clock, and refuses one already past. Without it the
// receiver grants [DefaultLease].
func WithLease(expiry time.Time) StoreOption {
	return func(o *storeOptions) { o.lease = expiry }
}

func storeOn(c *conn, offer *pb.StoreOffer, blocks iter.Seq2[blockstore.Block, error]) (StoreResult, error) {
	log.Debugw("store", "peer", c.s.Conn().RemotePeer(), "root", offer.Root,
		"blocks", offer.Blocks, "bytes", offer.Bytes)
	if err := c.send(offer); err != nil {
		return StoreResult{}, err
	}
	m, err := c.recv(MaxRequestSize)
	if err != nil {
		return StoreResult{}, fmt.Errorf("read reply: %w", eofUnexpected(err))
	}
	reply, ok := m.(*pb.StoreReply)
	if !ok {
		return StoreResult{}, unexpected(m, "StoreReply")
	}
	if !reply.Accept {
		return StoreResult{}, &RemoteError{Reason: reply.Reason}
	}
	var sent, sentBytes uint64
	for b, err := range blocks {
		if err != nil {
			return StoreResult{}, fmt.Errorf("next block: %w", err)
		}
		sent++
		sentBytes += uint64(len(b.Data))
		if sent > offer.Blocks || sentBytes > offer.Bytes {
			return StoreResult{}, fmt.Errorf("more than the %d blocks, %d bytes announced",
				offer.Blocks, offer.Bytes)
		}
		if len(b.Data) > blockstore.MaxBlockSize {
			return StoreResult{}, fmt.Errorf("block %s of %d bytes exceeds %d", b.Cid, len(b.Data), blockstore.MaxBlockSize)
		}
		if err := c.send(&pb.Block{Cid: b.Cid, Data: b.Data}); err != nil {
			return StoreResult{}, err
		}
	}
	if err := c.send(&pb.StoreEnd{}); err != nil {
		return StoreResult{}, err
	}
	if err := c.s.CloseWrite(); err != nil {
		return StoreResult{}, fmt.Errorf("close write: %w", err)
	}
	m, err = c.recv(MaxRequestSize)
	if err != nil {
		return StoreResult{}, fmt.Errorf("read ack: %w", eofUnexpected(err))
	}
	ack, ok := m.(*pb.StoreAck)
	if !ok {
		return StoreResult{}, unexpected(m, "StoreAck")
	}
	if ack.Stored > sent {
		return StoreResult{}, fmt.Errorf("%w: ack of %d blocks, %d sent", ErrProtocol, ack.Stored, sent)
	}
	_ = c.s.Close()
	return StoreResult{Stored: ack.Stored, Complete: ack.Complete}, nil
}

// rateConfig is the minimum rate of store streams.
type rateConfig struct {
	rate   int64 // bytes per second
	window time.Duration
}

// WithMinStoreRate sets the minimum rate of a store stream: over each
// window, a stream must deliver bytesPerSecond × window bytes, or all the
// offered bytes it has not delivered yet if that is less, or it is reset
// (defaults [DefaultMinStoreRate] over [DefaultStoreRateWindow]). The rate
// also bounds the stream's lifetime: the offered bytes at that rate plus
// three windows, and never past the offer's expiry. A value that is not
// positive keeps its default.
func WithMinStoreRate(bytesPerSecond int64, window time.Duration) Option {
	return func(c *config) { c.rate = rateConfig{rate: bytesPerSecond, window: window} }
}

func (rc rateConfig) withDefaults() rateConfig {
	if rc.rate <= 0 {
		rc.rate = DefaultMinStoreRate
	}
	if rc.window <= 0 {
		rc.window = DefaultStoreRateWindow
	}
	return rc
}

// perWindow is what a stream must deliver in one window.
func (rc rateConfig) perWindow() int64 {
	return max(int64(float64(rc.rate)*rc.window.Seconds()), 1)
}

// lifetime returns when a store stream of offer, accepted at now, ends:
// at the offer's expiry, or once the offered bytes at the minimum rate
// plus lifetimeSlack windows have passed, whichever comes first.
func (rc rateConfig) lifetime(offer *pb.StoreOffer, now time.Time) time.Time {
	d := MaxOfferLifetime
	if secs := float64(offer.Bytes) / float64(rc.rate); secs < MaxOfferLifetime.Seconds() {
		d = time.Duration(secs*float64(time.Second)) + lifetimeSlack*rc.window
	}
	end := now.Add(d)
	if exp := time.Unix(offer.Expiry, 0); exp.Before(end) {
		return exp
	}
	return end
}

// errTooSlow is why a store stream below its minimum rate is reset. It is
// not a strike: a slow or congested link is not malice, and the reset
// already bounds what such a stream costs.
var errTooSlow = errors.New("protocol: store stream below its minimum rate")

// rateFloor resets a store stream that delivers too little: at the end of
// each window (the time the receiver spends writing excluded) the stream
// must have delivered, in that window, the window's bytes or all the
// offered bytes it had not delivered yet, whichever is less. Bytes are
// counted as read from the stream, framing included, as they arrive, so a
// block larger than a window's bytes counts in every window it spans.
type rateFloor struct {
	cfg     rateConfig
	offered int64         // data bytes offered
	read    *atomic.Int64 // bytes read from the stream
	first   int64         // read when the floor started

	mu       sync.Mutex // guards the fields below
	start    time.Time  // of the current window
	base     int64      // read at start
	pausedAt time.Time  // non-zero while the receiver writes
	slow     bool       // tripped, after got of need bytes
	got      int64
	need     int64
}

func newRateFloor(cfg rateConfig, offered uint64, read *atomic.Int64, now time.Time) *rateFloor {
	n := read.Load()
	return &rateFloor{
		cfg: cfg, offered: int64(min(offered, math.MaxInt64)), read: read, first: n,
		start: now, base: n,
	}
}

// check ends the current window if it is over, and reports false if the
// stream delivered too little in it.
func (f *rateFloor) check(now time.Time) bool {
	f.mu.Lock()
	defer f.mu.Unlock()
	if f.slow {
		return false
	}
	if !f.pausedAt.IsZero() || now.Sub(f.start) < f.cfg.window {
		return true
	}
	read := f.read.Load()
	need := min(f.cfg.perWindow(), max(f.offered-(f.base-f.first), 0))
	if read-f.base < need {
		f.slow, f.got, f.need = true, read-f.base, need
		return false
	}
	f.start, f.base = now, read
	return true
}

// pause stops the clock while the receiver writes; resume restarts it.
func (f *rateFloor) pause(now time.Time) {
	f.mu.Lock()
	defer f.mu.Unlock()
	f.pausedAt = now
}

func (f *rateFloor) resume(now time.Time) {
	f.mu.Lock()
	defer f.mu.Unlock()
	f.start = f.start.Add(now.Sub(f.pausedAt))
	f.pausedAt = time.Time{}
}

// tripped reports whether the stream fell below the floor.
func (f *rateFloor) tripped() bool {
	f.mu.Lock()
	defer f.mu.Unlock()
	return f.slow
}

// err describes the window the stream failed; call it once tripped.
func (f *rateFloor) err() error {
	f.mu.Lock()
	defer f.mu.Unlock()
	return fmt.Errorf("%w: %d bytes in %s, %d required", errTooSlow, f.got, f.cfg.window, f.need)
}

// watch checks the floor every eighth of a window, on its own goroutine,
// and resets str once it trips. The returned stop ends the watch and
// waits for it; it may be called more than once.
func (f *rateFloor) watch(ctx context.Context, str network.Stream) (stop func()) {
	ctx, cancel := context.WithCancel(ctx)
	var wg sync.WaitGroup
	wg.Go(func() {
		t := time.NewTicker(max(f.cfg.window/8, time.Millisecond))
		defer t.Stop()
		for {
			select {
			case <-ctx.Done():
				return
			case now := <-t.C:
				if !f.check(now) {
					_ = str.Reset()
					return
				}
			}
		}
	})
	return func() {
		cancel()
		wg.Wait()
	}
}

// expectSet holds the blocks a store stream may still deliver: its root,
// then the links of every manifest block it delivered, each with the kind
// its parent gives it (inner nodes, or chunks under a manifest block of
// height 0). Blocks already delivered stay in it, marked, so that each is
// taken once. It holds at most max CIDs, and reserves its memory in the
// stream's resource scope as it grows.
type expectSet struct {
	kinds map[[sha256.Size]byte]byte // by sha2-256 digest: the kind the block must have, or taken
	max   int
	scope network.ResourceScope
	held  int // bytes reserved
}

const (
	// taken marks a delivered block in an expectSet; it is no block kind.
	taken byte = 0
	// setEntryCost over-estimates what one entry of an expectSet costs (a
	// 32-byte key and a byte in a Go map, just after the map grew).
	setEntryCost = 80
	// setGrowth is how many entries an expectSet reserves memory for at a
	// time.
	setGrowth = 256
)

func newExpectSet(max int, scope network.ResourceScope) *expectSet {
	return &expectSet{kinds: make(map[[sha256.Size]byte]byte), max: max, scope: scope}
}

// digest is the sha2-256 digest that a CID of the one form casd accepts
// (CIDv1 raw sha2-256: checked by the decoder and by dag.Links) names.
func digest(c cid.Cid) (d [sha256.Size]byte, ok bool) {
	k := c.KeyString()
	if len(k) != 4+sha256.Size {
		return d, false
	}
	copy(d[:], k[4:])
	return d, true
}

// expect adds c, which must have the given kind, unless it is already in
// the set.
func (e *expectSet) expect(c cid.Cid, kind byte) error {
	d, ok := digest(c)
	if !ok {
		return fmt.Errorf("%w: link %s is not a sha2-256 CID", ErrBadBlock, c)
	}
	if _, ok := e.kinds[d]; ok {
		return nil
	}
	if len(e.kinds) >= e.max {
		return fmt.Errorf("%w: the blocks delivered link more than %d blocks", ErrBadBlock, e.max)
	}
	if (len(e.kinds)+1)*setEntryCost > e.held {
		if err := e.scope.ReserveMemory(setGrowth*setEntryCost, storePriority); err != nil {
			return fmt.Errorf("reserve memory for the expected blocks: %w", err)
		}
		e.held += setGrowth * setEntryCost
	}
	e.kinds[d] = kind
	return nil
}

// take checks that the block c with data is expected, with the kind its
// parent gave it, and not taken before; it then marks it taken and
// expects its links.
func (e *expectSet) take(c cid.Cid, data []byte) error {
	d, ok := digest(c)
	want, expected := e.kinds[d]
	switch {
	case !ok || !expected:
		return fmt.Errorf("%w: %s is not linked from the offered root by a block sent before it", ErrBadBlock, c)
	case want == taken:
		return fmt.Errorf("%w: %s sent twice", ErrBadBlock, c)
	}
	kind, err := dag.BlockKind(data)
	if err != nil {
		return fmt.Errorf("%w: %s: %w", ErrBadBlock, c, err)
	}
	if kind != want {
		return fmt.Errorf("%w: %s is of kind %d where its parent links kind %d", ErrBadBlock, c, kind, want)
	}
	e.kinds[d] = taken
	if kind == dag.KindChunk {
		return nil
	}
	links, err := dag.Links(c, data)
	if err != nil {
		return fmt.Errorf("%w: %s: %w", ErrBadBlock, c, err)
	}
	child := dag.KindNode
	if dag.LinksAreLeaves(c, data) {
		child = dag.KindChunk
	}
	for _, l := range links {
		if err := e.expect(l, child); err != nil {
			return err
		}
	}
	return nil
}

// free releases the set's memory.
func (e *expectSet) free() {
	e.scope.ReleaseMemory(e.held)
	e.held = 0
	e.kinds = nil
}
