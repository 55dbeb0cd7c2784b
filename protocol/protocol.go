package protocol

import (
	"context"
	"errors"
	"sync"
	"sync/atomic"
	"time"

	logging "github.com/ipfs/go-log/v2"
	"github.com/libp2p/go-libp2p/core/host"
	"github.com/libp2p/go-libp2p/core/network"
	"github.com/libp2p/go-libp2p/core/peer"
	p2pprotocol "github.com/libp2p/go-libp2p/core/protocol"

	"github.com/casd/casd/blockstore"
)

var log = logging.Logger("casd/protocol")

// Protocol IDs.
const (
	StoreID p2pprotocol.ID = "/cas/store/1.0"
	GetID   p2pprotocol.ID = "/cas/get/1.0"
)

// Size limits.
const (
	// MaxMessageSize caps a frame that carries a block: the largest block
	// the protocols carry, [blockstore.MaxBlockSize], plus room for the
	// frame's other fields.
	MaxMessageSize = blockstore.MaxBlockSize + 4<<10
	// MaxRequestSize caps every other frame.
	MaxRequestSize = 64 << 10
)

// DefaultIdleTimeout is the default time a stream may stay silent between
// two messages.
const DefaultIdleTimeout = 30 * time.Second

// Errors callers branch on.
var (
	// ErrBadBlock means the peer sent a block that does not hash to its
	// CID or that was not asked for, or not in order. Drop the peer.
	ErrBadBlock = errors.New("protocol: bad block")
	// ErrProtocol means the peer broke the message sequence or sent a
	// malformed message.
	ErrProtocol = errors.New("protocol: protocol violation")
	// ErrMessageTooLarge means a frame exceeded its size limit.
	ErrMessageTooLarge = errors.New("protocol: message too large")
	// ErrRejected is wrapped by the [*RemoteError] of a rejected store.
	ErrRejected = errors.New("protocol: rejected")
	// ErrBadSignature means a store offer, a lease renewal, a removal or
	// a tree challenge is not signed by the owner it names for this
	// receiver.
	ErrBadSignature = errors.New("protocol: bad signature")
	// ErrOfferExpired means a store offer's expiry has passed or lies
	// more than [MaxOfferLifetime] in the future.
	ErrOfferExpired = errors.New("protocol: offer expired")
	// ErrSessionBroken is returned by a [GetSession] after an earlier
	// request on it failed.
	ErrSessionBroken = errors.New("protocol: session broken")
)

// RemoteError is a rejection reported by the remote peer.
type RemoteError struct {
	// Reason is the peer's explanation, as sent; it is untrusted text.
	Reason string
}

// Error implements error.
func (e *RemoteError) Error() string { return "protocol: rejected by peer: " + e.Reason }

// Is reports whether target is [ErrRejected].
func (e *RemoteError) Is(target error) bool { return target == ErrRejected }

// Unwrap returns [ErrRejected].
func (e *RemoteError) Unwrap() error { return ErrRejected }

// Option configures a [Service].
type Option func(*config)

type config struct {
	get    GetBackend
	store  StoreBackend
	peers  PeersBackend
	strike func(peer.ID, string)
	idle   time.Duration
	rate   rateConfig // of store streams, defaults applied where used
	tree   treeBound  // of tree proofs
	// peersTimeout bounds a served peer exchange: PeersTimeout, but for
	// tests.
	peersTimeout time.Duration
}

// WithGetBackend serves /cas/get/1.0 from b.
func WithGetBackend(b GetBackend) Option { return func(c *config) { c.get = b } }

// WithStoreBackend serves /cas/store/1.0 into b.
func WithStoreBackend(b StoreBackend) Option { return func(c *config) { c.store = b } }

// WithStrikeFunc sets the function told about a peer that misbehaved (a bad
// block, a malformed or oversize message, a forged offer). It is called from
// handler goroutines, possibly concurrently, and must not block for long.
func WithStrikeFunc(f func(p peer.ID, reason string)) Option {
	return func(c *config) { c.strike = f }
}

// WithIdleTimeout sets how long a served stream may stay silent between
// two messages (default [DefaultIdleTimeout]).
func WithIdleTimeout(d time.Duration) Option {
	return func(c *config) {
		if d > 0 {
			c.idle = d
		}
	}
}

// Service serves /cas/get/1.0, /cas/store/1.0 and /cas/peers/1.0 on a
// host. Only the protocols with a backend are served.
type Service struct {
	h      host.Host
	cfg    config
	ctx    context.Context // cancelled by Close; handlers run under it
	cancel context.CancelFunc

	// mu guards closed and the Add side of wg, so that no handler starts
	// after Close began waiting.
	mu     sync.Mutex
	closed bool
	wg     sync.WaitGroup

	// treeSlots holds a token per tree proof running (at most
	// maxTreeProofs); treeWaiting counts the challenges waiting for one.
	treeSlots   chan struct{}
	treeWaiting atomic.Int32
	// peerSlots holds a token per peer exchange served (at most
	// maxPeerExchanges).
	peerSlots chan struct{}
}

// New returns a Service for h; call [Service.Start] to serve.
func New(h host.Host, opts ...Option) *Service {
	cfg := config{idle: DefaultIdleTimeout, tree: treeBound{grace: treeProofGrace, rate: treeProofFloorRate},
		peersTimeout: PeersTimeout}
	for _, o := range opts {
		o(&cfg)
	}
	ctx, cancel := context.WithCancel(context.Background())
	return &Service{h: h, cfg: cfg, ctx: ctx, cancel: cancel,
		treeSlots: make(chan struct{}, maxTreeProofs), peerSlots: make(chan struct{}, maxPeerExchanges)}
}

// Start registers the stream handlers.
func (s *Service) Start() {
	if s.cfg.get != nil {
		s.h.SetStreamHandler(GetID, s.handleGet)
	}
	if s.cfg.store != nil {
		s.h.SetStreamHandler(StoreID, s.handleStore)
	}
	if s.cfg.peers != nil {
		s.h.SetStreamHandler(PeersID, s.handlePeers)
	}
	log.Infow("protocol service started", "get", s.cfg.get != nil, "store", s.cfg.store != nil,
		"peers", s.cfg.peers != nil)
}

// Close removes the handlers, cancels the context of in-flight handlers
// (their streams are reset) and waits for them to return.
func (s *Service) Close() error {
	if s.cfg.get != nil {
		s.h.RemoveStreamHandler(GetID)
	}
	if s.cfg.store != nil {
		s.h.RemoveStreamHandler(StoreID)
	}
	if s.cfg.peers != nil {
		s.h.RemoveStreamHandler(PeersID)
	}
	s.mu.Lock()
	s.closed = true
	s.mu.Unlock()
	s.cancel()
	s.wg.Wait()
	return nil
}

// begin registers a handler run. It returns the handler's context and a
// function to call when the handler is done, or ok false (stream reset)
// if the service is closed. The stream is reset when the service closes.
func (s *Service) begin(str network.Stream) (ctx context.Context, end func(), ok bool) {
	s.mu.Lock()
	if s.closed {
		s.mu.Unlock()
		_ = str.Reset()
		return nil, nil, false
	}
	s.wg.Add(1)
	s.mu.Unlock()
	stop := context.AfterFunc(s.ctx, func() { _ = str.Reset() })
	return s.ctx, func() {
		stop()
		s.wg.Done()
	}, true
}

// fail resets str after a failed exchange. Bad input from the peer counts
// as a strike; I/O errors and timeouts do not. The strike is recorded
// before the reset, so a peer that sees its stream reset has been counted.
func (s *Service) fail(str network.Stream, op string, err error) {
	p := str.Conn().RemotePeer()
	if IsPeerFault(err) && s.cfg.strike != nil {
		s.cfg.strike(p, op+": "+err.Error())
	}
	_ = str.Reset()
	if s.ctx.Err() == nil {
		log.Debugw("stream failed", "protocol", str.Protocol(), "peer", p, "op", op, "err", err)
	}
}

// IsPeerFault reports whether err is the peer's fault: a bad block
// ([ErrBadBlock]), a protocol violation or malformed message
// ([ErrProtocol]), an oversized message ([ErrMessageTooLarge]), a bad
// signature ([ErrBadSignature]) or a flood ([ErrFlood]). Callers strike
// the peer on it; other errors (I/O, timeouts, a busy resource manager)
// are no one's fault.
func IsPeerFault(err error) bool {
	return errors.Is(err, ErrBadBlock) || errors.Is(err, ErrProtocol) ||
		errors.Is(err, ErrMessageTooLarge) || errors.Is(err, ErrBadSignature) ||
		errors.Is(err, ErrFlood)
}
