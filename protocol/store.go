package protocol

import (
	"context"
	"crypto/ed25519"
	"encoding/binary"
	"encoding/hex"
	"errors"
	"fmt"
	"iter"
	"math"
	"strings"
	"time"

	"github.com/ipfs/go-cid"
	"github.com/libp2p/go-libp2p/core/host"
	"github.com/libp2p/go-libp2p/core/network"
	"github.com/libp2p/go-libp2p/core/peer"

	"github.com/casd/casd/blockstore"
	"github.com/casd/casd/protocol/pb"
)

// StoreBackend is what /cas/store/1.0 writes into. It must be safe for
// concurrent use: each stream is served on its own goroutine.
type StoreBackend interface {
	// Reserve checks that bytes more bytes of root, offered by owner,
	// fit the quota, and sets them aside until release is called, which
	// the service does once, when the stream ends (the root is pinned by
	// then, or the transfer failed). Its error message is sent to the peer
	// as the rejection reason.
	Reserve(ctx context.Context, owner ed25519.PublicKey, root cid.Cid, bytes int64) (release func(), err error)
	// PutMany durably stores blocks, each already verified against its
	// CID: when it returns nil the blocks survive a crash. It may retain
	// the blocks' Data.
	PutMany(ctx context.Context, blocks []blockstore.Block) error
	// Complete reports whether every block of the tree under root is
	// present.
	Complete(ctx context.Context, root cid.Cid) (bool, error)
	// Pin pins root (and so its tree) under reason.
	Pin(ctx context.Context, root cid.Cid, reason string) error
}

// Store stream limits.
const (
	// MaxOfferLifetime is how far in the future an offer's expiry may lie.
	MaxOfferLifetime = time.Hour
	// offerLifetime is the expiry a client sets on its offers.
	offerLifetime = 10 * time.Minute
	// The receiver writes blocks in batches of at most this many blocks
	// or bytes.
	storeBatchBlocks = 16
	storeBatchBytes  = 16 << 20
)

// ReplicaPinPrefix prefixes the pin reason of a stored root; the owner's
// public key follows in lower-case hex.
const ReplicaPinPrefix = "replica:"

// offerDomain separates offer signatures from any other use of the owner
// key.
const offerDomain = "casd/store/1.0\x00"

// offerMessage is what the owner signs:
// domain || receiver peer ID bytes || root CID bytes || be64(Bytes) || be64(Expiry).
func offerMessage(receiver peer.ID, o *pb.StoreOffer) []byte {
	root := o.Root.KeyString()
	b := make([]byte, 0, len(offerDomain)+len(receiver)+len(root)+16)
	b = append(b, offerDomain...)
	b = append(b, receiver...)
	b = append(b, root...)
	b = binary.BigEndian.AppendUint64(b, o.Bytes)
	return binary.BigEndian.AppendUint64(b, uint64(o.Expiry))
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

func (s *Service) serveStore(ctx context.Context, str network.Stream, c *conn) error {
	p := str.Conn().RemotePeer()
	m, err := c.recv(MaxRequestSize)
	if err != nil {
		return fmt.Errorf("read offer: %w", eofUnexpected(err))
	}
	offer, ok := m.(*pb.StoreOffer)
	if !ok {
		return unexpected(m, "StoreOffer")
	}
	log.Debugw("store offer", "peer", p, "root", offer.Root, "blocks", offer.Blocks, "bytes", offer.Bytes)
	if err := VerifyOffer(s.h.ID(), offer, time.Now()); err != nil {
		if errors.Is(err, ErrBadSignature) && s.cfg.strike != nil {
			s.cfg.strike(p, "store: "+err.Error())
		}
		return reject(c, err.Error())
	}
	if offer.Bytes > math.MaxInt64 {
		return reject(c, "offer too large")
	}
	owner := ed25519.PublicKey(offer.Owner)
	release, err := s.cfg.store.Reserve(ctx, owner, offer.Root, int64(offer.Bytes))
	if err != nil {
		log.Debugw("store rejected", "peer", p, "root", offer.Root, "err", err)
		return reject(c, err.Error())
	}
	defer release()
	if err := c.send(&pb.StoreReply{Accept: true}); err != nil {
		return err
	}

	var (
		batch      []blockstore.Block
		batchBytes int
		blocks     uint64 // received
		bytes      uint64 // received
		stored     uint64 // returned by PutMany
	)
	flush := func() error {
		if len(batch) == 0 {
			return nil
		}
		if err := s.cfg.store.PutMany(ctx, batch); err != nil {
			if ctx.Err() == nil {
				log.Warnw("store: backend error", "root", offer.Root, "err", err)
			}
			return fmt.Errorf("put %d blocks: %w", len(batch), err)
		}
		stored += uint64(len(batch))
		batch, batchBytes = nil, 0
		return nil
	}
	for {
		m, err := c.recv(MaxMessageSize)
		if err != nil {
			return fmt.Errorf("read block: %w", eofUnexpected(err))
		}
		switch m := m.(type) {
		case *pb.Block:
			blocks++
			bytes += uint64(len(m.Data))
			if blocks > offer.Blocks || bytes > offer.Bytes {
				return fmt.Errorf("%w: more than the %d blocks, %d bytes offered",
					ErrProtocol, offer.Blocks, offer.Bytes)
			}
			if len(m.Data) > blockstore.MaxBlockSize {
				return fmt.Errorf("%w: %s has %d bytes", ErrBadBlock, m.Cid, len(m.Data))
			}
			b := blockstore.Block{Cid: m.Cid, Data: m.Data}
			if !m.Cid.Defined() {
				return fmt.Errorf("%w: no CID", ErrBadBlock)
			}
			if err := blockstore.VerifyBlock(b.Cid, b.Data); err != nil {
				return fmt.Errorf("%w: %w", ErrBadBlock, err)
			}
			batch = append(batch, b)
			batchBytes += len(b.Data)
			if len(batch) >= storeBatchBlocks || batchBytes >= storeBatchBytes {
				if err := flush(); err != nil {
					return err
				}
			}
		case *pb.StoreEnd:
			if err := flush(); err != nil {
				return err
			}
			complete, err := s.cfg.store.Complete(ctx, offer.Root)
			if err != nil {
				return fmt.Errorf("check root %s: %w", offer.Root, err)
			}
			if complete {
				reason := ReplicaPinPrefix + hex.EncodeToString(owner)
				if err := s.cfg.store.Pin(ctx, offer.Root, reason); err != nil {
					return fmt.Errorf("pin %s: %w", offer.Root, err)
				}
			}
			log.Debugw("stored", "peer", p, "root", offer.Root, "blocks", stored, "complete", complete)
			return c.send(&pb.StoreAck{Stored: stored, Complete: complete})
		default:
			return unexpected(m, "Block or StoreEnd")
		}
	}
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
// receiver reserves quota for totalBytes and refuses anything beyond. A
// refusal is a [*RemoteError] wrapping [ErrRejected]. An error from blocks
// aborts the store and is returned wrapped. Cancelling ctx resets the
// stream; every message must also make progress within
// [DefaultIdleTimeout].
func Store(ctx context.Context, h host.Host, p peer.ID, owner ed25519.PrivateKey, root cid.Cid,
	blocks iter.Seq2[blockstore.Block, error], totalBlocks, totalBytes uint64) (res StoreResult, err error) {
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
	SignOffer(owner, p, offer)

	str, err := h.NewStream(ctx, p, StoreID)
	if err != nil {
		return res, fmt.Errorf("open store stream to %s: %w", p, err)
	}
	c := newConn(str, DefaultIdleTimeout)
	c.limit, _ = ctx.Deadline()
	stop := context.AfterFunc(ctx, func() { _ = str.Reset() })
	res, err = storeOn(c, offer, blocks)
	if !stop() {
		err = errors.Join(ctx.Err(), err)
	}
	if err != nil {
		_ = str.Reset()
		var rerr *RemoteError
		if errors.As(err, &rerr) {
			return res, err
		}
		return res, fmt.Errorf("store %s to %s: %w", root, p, err)
	}
	return res, nil
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
