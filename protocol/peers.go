package protocol

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"time"

	cryptopb "github.com/libp2p/go-libp2p/core/crypto/pb"
	"github.com/libp2p/go-libp2p/core/host"
	"github.com/libp2p/go-libp2p/core/network"
	"github.com/libp2p/go-libp2p/core/peer"
	p2pprotocol "github.com/libp2p/go-libp2p/core/protocol"
	"github.com/libp2p/go-libp2p/core/record"
	"google.golang.org/protobuf/encoding/protowire"

	"github.com/casd/casd/protocol/pb"
)

// The peer exchange of /cas/peers/1.0 (docs/wire.md, "/cas/peers/1.0"):
// on one stream the client sends a PeerList of signed peer records and
// closes its side; the server checks every record, hands them to its
// backend, answers with its own PeerList and closes.

// PeersID is the protocol ID of the peer exchange.
const PeersID p2pprotocol.ID = "/cas/peers/1.0"

// Peer exchange limits.
const (
	// MaxPeerRecords is the most records one PeerList may carry.
	MaxPeerRecords = 64
	// MaxRecordAddrs is the most addresses one peer record may carry.
	MaxRecordAddrs = 32
	// MaxRecordSize caps one marshalled record envelope, in bytes.
	MaxRecordSize = 4 << 10
	// PeersTimeout bounds a whole exchange, on both sides.
	PeersTimeout = 10 * time.Second
	// maxPeerExchanges is the most exchanges a server runs at once; a
	// stream beyond them is reset (not a strike).
	maxPeerExchanges = 16
	// peerListOverhead is what the envelope of a PeerList adds to its
	// records, at most: type (2 bytes), body tag and length (1+3).
	peerListOverhead = 8
)

// ErrFlood means a peer opened peer exchanges faster than the backend
// allows ([PeersBackend.Allow]): a peer fault, struck.
var ErrFlood = errors.New("protocol: too many peer exchanges")

// PeerRecord is a signed peer record that passed every check of
// [DecodePeerRecords].
type PeerRecord struct {
	// Envelope is the record as received: what the certified address
	// book consumes.
	Envelope *record.Envelope
	// Record is its payload; Record.PeerID signed Envelope.
	Record *peer.PeerRecord
}

// PeersBackend serves /cas/peers/1.0. It must be safe for concurrent use:
// each stream is served on its own goroutine.
type PeersBackend interface {
	// Allow reports whether from may run an exchange now; false means it
	// floods: the handler strikes it ([ErrFlood]) and resets the stream
	// before reading.
	Allow(from peer.ID) bool
	// Merge takes the records that from sent, all verified (it is never
	// called with a bad one, nor after a bad list). It is called once per
	// exchange, before the answer is sent, with none if from sent none.
	Merge(from peer.ID, recs []PeerRecord)
	// Sample returns the records to send to to; the handler sends at most
	// [MaxPeerRecords] of them, as many as fit in a frame.
	Sample(to peer.ID) []*record.Envelope
}

// WithPeersBackend serves /cas/peers/1.0 with b.
func WithPeersBackend(b PeersBackend) Option { return func(c *config) { c.peers = b } }

func (s *Service) handlePeers(str network.Stream) {
	_, end, ok := s.begin(str)
	if !ok {
		return
	}
	defer end()
	p := str.Conn().RemotePeer()
	if !s.cfg.peers.Allow(p) {
		s.fail(str, "peers", ErrFlood)
		return
	}
	select {
	case s.peerSlots <- struct{}{}:
		defer func() { <-s.peerSlots }()
	default:
		log.Debugw("peers: too many exchanges, stream reset", "peer", p)
		_ = str.Reset()
		return
	}
	if err := s.servePeers(str, p); err != nil {
		s.fail(str, "peers", err)
		return
	}
	_ = str.Close()
}

// servePeers runs the server side of one exchange with p: read and check
// the client's list and its end of stream, merge, answer.
func (s *Service) servePeers(str network.Stream, p peer.ID) error {
	c := newConn(str, s.cfg.peersTimeout)
	c.limit = time.Now().Add(s.cfg.peersTimeout)
	recs, err := recvPeerList(c, s.h.ID())
	if err != nil {
		return fmt.Errorf("read peer list: %w", err)
	}
	log.Debugw("peers: records received", "peer", p, "records", len(recs))
	s.cfg.peers.Merge(p, recs)
	if err := c.send(&pb.PeerList{Records: encodePeerRecords(s.cfg.peers.Sample(p), p)}); err != nil {
		return err
	}
	return nil
}

// ExchangePeers opens /cas/peers/1.0 to p, sends out (at most
// [MaxPeerRecords], as many as fit in a frame, skipping any that breaks a
// rule of [DecodePeerRecords]) and returns p's verified reply. The whole
// exchange is bounded by [PeersTimeout] and ctx. A reply that breaks any
// rule is an error wrapping a peer fault ([IsPeerFault]).
func ExchangePeers(ctx context.Context, h host.Host, p peer.ID, out []*record.Envelope) ([]PeerRecord, error) {
	ctx, cancel := context.WithTimeout(ctx, PeersTimeout)
	defer cancel()
	str, err := h.NewStream(ctx, p, PeersID)
	if err != nil {
		return nil, fmt.Errorf("exchange peers with %s: open stream: %w", p, err)
	}
	c := newConn(str, PeersTimeout)
	c.limit, _ = ctx.Deadline()
	stop := context.AfterFunc(ctx, func() { _ = str.Reset() })
	recs, err := exchangeOn(c, h.ID(), encodePeerRecords(out, p))
	stop()
	if err != nil {
		_ = str.Reset()
		return nil, fmt.Errorf("exchange peers with %s: %w", p, withCtxErr(ctx, err))
	}
	_ = str.Close()
	return recs, nil
}

// exchangeOn runs the client side of an exchange on c.
func exchangeOn(c *conn, self peer.ID, out [][]byte) ([]PeerRecord, error) {
	if err := c.send(&pb.PeerList{Records: out}); err != nil {
		return nil, err
	}
	if err := c.s.CloseWrite(); err != nil {
		return nil, fmt.Errorf("close write: %w", err)
	}
	recs, err := recvPeerList(c, self)
	if err != nil {
		return nil, fmt.Errorf("read peer list: %w", err)
	}
	return recs, nil
}

// recvPeerList reads one PeerList frame, then the end of the stream, and
// checks the list's records.
func recvPeerList(c *conn, self peer.ID) ([]PeerRecord, error) {
	m, err := c.recv(MaxRequestSize)
	if err != nil {
		return nil, eofUnexpected(err)
	}
	list, ok := m.(*pb.PeerList)
	if !ok {
		return nil, unexpected(m, "PeerList")
	}
	if err := expectEOF(c); err != nil {
		return nil, err
	}
	return DecodePeerRecords(list.Records, self)
}

// expectEOF reads the end of the stream: any further frame is out of
// sequence.
func expectEOF(c *conn) error {
	m, err := c.recv(MaxRequestSize)
	switch {
	case err == io.EOF:
		return nil
	case err != nil:
		return fmt.Errorf("read end of stream: %w", err)
	default:
		return unexpected(m, "end of stream")
	}
}

// DecodePeerRecords checks raw marshalled envelopes: at most
// [MaxPeerRecords], each at most [MaxRecordSize] bytes, with a valid
// signature in the peer record domain (peer.PeerRecordEnvelopeDomain), a
// payload that is a peer record (peer.PeerRecord) whose PeerID is derived
// from the signing key, with at most [MaxRecordAddrs] addresses, and no
// peer twice. self's own record is dropped (not an error). Any bad record
// fails the whole list, with an error wrapping [ErrMessageTooLarge],
// [ErrProtocol] or [ErrBadSignature].
func DecodePeerRecords(raw [][]byte, self peer.ID) ([]PeerRecord, error) {
	if len(raw) > MaxPeerRecords {
		return nil, fmt.Errorf("%w: %d peer records, limit %d", ErrMessageTooLarge, len(raw), MaxPeerRecords)
	}
	out := make([]PeerRecord, 0, len(raw))
	seen := make(map[peer.ID]struct{}, len(raw))
	for i, b := range raw {
		r, err := decodePeerRecord(b)
		if err != nil {
			return nil, fmt.Errorf("peer record %d: %w", i, err)
		}
		id := r.Record.PeerID
		if _, dup := seen[id]; dup {
			return nil, fmt.Errorf("%w: peer record %d: peer %s twice", ErrProtocol, i, id)
		}
		seen[id] = struct{}{}
		if id != self {
			out = append(out, r)
		}
	}
	return out, nil
}

// decodePeerRecord checks one marshalled envelope (see DecodePeerRecords).
func decodePeerRecord(b []byte) (PeerRecord, error) {
	if len(b) > MaxRecordSize {
		return PeerRecord{}, fmt.Errorf("%w: record of %d bytes, limit %d", ErrMessageTooLarge, len(b), MaxRecordSize)
	}
	if err := checkRecordKey(b); err != nil {
		return PeerRecord{}, err
	}
	rec := &peer.PeerRecord{}
	env, err := record.ConsumeTypedEnvelope(b, rec)
	switch {
	case errors.Is(err, record.ErrInvalidSignature):
		return PeerRecord{}, fmt.Errorf("%w: %w", ErrBadSignature, err)
	case err != nil:
		return PeerRecord{}, fmt.Errorf("%w: %w", ErrProtocol, err)
	case !bytes.Equal(env.PayloadType, peer.PeerRecordEnvelopePayloadType):
		return PeerRecord{}, fmt.Errorf("%w: payload type %x, not a peer record", ErrProtocol, env.PayloadType)
	}
	signer, err := peer.IDFromPublicKey(env.PublicKey)
	if err != nil {
		return PeerRecord{}, fmt.Errorf("%w: signing key: %w", ErrBadSignature, err)
	}
	if signer != rec.PeerID {
		return PeerRecord{}, fmt.Errorf("%w: record of %s signed by %s", ErrBadSignature, rec.PeerID, signer)
	}
	if len(rec.Addrs) > MaxRecordAddrs {
		return PeerRecord{}, fmt.Errorf("%w: record of %s with %d addresses, limit %d",
			ErrMessageTooLarge, rec.PeerID, len(rec.Addrs), MaxRecordAddrs)
	}
	return PeerRecord{Envelope: env, Record: rec}, nil
}

// checkRecordKey refuses, before any signature is checked, a record
// signed with a key other than Ed25519: every casd peer's identity is an
// Ed25519 key (p2p.NewHost refuses any other), and an RSA signature of
// up to 8192 bits (libp2p's cap) costs a verifier milliseconds, which a
// list of MaxPeerRecords of them would multiply. A record that does not
// even parse is left to the full check, which names its fault.
func checkRecordKey(b []byte) error {
	env, err := record.UnmarshalEnvelope(b)
	if err != nil {
		return nil
	}
	if t := env.PublicKey.Type(); t != cryptopb.KeyType_Ed25519 {
		return fmt.Errorf("%w: record signed with a %s key, not Ed25519", ErrProtocol, t)
	}
	return nil
}

// encodePeerRecords marshals the envelopes to send to `to`: at most
// [MaxPeerRecords], as many as fit in one frame of [MaxRequestSize]. It
// skips (and logs at debug) what the receiver would refuse, which would
// fail the whole list and strike the sender: a record that does not
// marshal, is not a peer record, is over [MaxRecordSize] or
// [MaxRecordAddrs], or names a peer already sent; and to's own record,
// which the receiver drops. The envelopes' signatures are not checked.
func encodePeerRecords(envs []*record.Envelope, to peer.ID) [][]byte {
	out := make([][]byte, 0, min(len(envs), MaxPeerRecords))
	seen := make(map[peer.ID]struct{}, cap(out))
	size := peerListOverhead
	for _, env := range envs {
		if len(out) == MaxPeerRecords {
			break
		}
		b, id, err := EncodePeerRecord(env)
		if err != nil {
			log.Debugw("peers: record not sent", "to", to, "err", err)
			continue
		}
		if _, dup := seen[id]; dup || id == to {
			continue
		}
		n := protowire.SizeTag(1) + protowire.SizeBytes(len(b))
		if size+n > MaxRequestSize {
			break
		}
		seen[id] = struct{}{}
		size += n
		out = append(out, b)
	}
	return out
}

// EncodePeerRecord marshals env and returns the peer it describes, or an
// error if a receiver would refuse it (see [DecodePeerRecords]): not a
// peer record, over [MaxRecordAddrs] addresses or [MaxRecordSize] bytes,
// or not signed with an Ed25519 key. Its signature is not checked.
func EncodePeerRecord(env *record.Envelope) ([]byte, peer.ID, error) {
	if env == nil {
		return nil, "", errors.New("nil envelope")
	}
	r, err := env.Record()
	if err != nil {
		return nil, "", fmt.Errorf("payload: %w", err)
	}
	rec, ok := r.(*peer.PeerRecord)
	if !ok {
		return nil, "", fmt.Errorf("payload %T, not a peer record", r)
	}
	if len(rec.Addrs) > MaxRecordAddrs {
		return nil, "", fmt.Errorf("record of %s with %d addresses, limit %d", rec.PeerID, len(rec.Addrs), MaxRecordAddrs)
	}
	if env.PublicKey == nil || env.PublicKey.Type() != cryptopb.KeyType_Ed25519 {
		return nil, "", fmt.Errorf("record of %s not signed with an Ed25519 key", rec.PeerID)
	}
	b, err := env.Marshal()
	if err != nil {
		return nil, "", fmt.Errorf("marshal record of %s: %w", rec.PeerID, err)
	}
	if len(b) > MaxRecordSize {
		return nil, "", fmt.Errorf("record of %s of %d bytes, limit %d", rec.PeerID, len(b), MaxRecordSize)
	}
	return b, rec.PeerID, nil
}
