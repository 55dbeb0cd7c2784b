package p2p

import (
	"errors"
	"fmt"
	"io"
	"slices"
	"time"

	corecm "github.com/libp2p/go-libp2p/core/connmgr"

	"github.com/libp2p/go-libp2p"
	"github.com/libp2p/go-libp2p/core/crypto"
	cryptopb "github.com/libp2p/go-libp2p/core/crypto/pb"
	"github.com/libp2p/go-libp2p/core/host"
	"github.com/libp2p/go-libp2p/core/network"
	"github.com/libp2p/go-libp2p/core/protocol"
	"github.com/libp2p/go-libp2p/p2p/host/peerstore/pstoremem"
	rcmgr "github.com/libp2p/go-libp2p/p2p/host/resource-manager"
	"github.com/libp2p/go-libp2p/p2p/muxer/yamux"
	"github.com/libp2p/go-libp2p/p2p/net/connmgr"
	"github.com/libp2p/go-libp2p/p2p/security/noise"
	libp2ptls "github.com/libp2p/go-libp2p/p2p/security/tls"
	libp2pquic "github.com/libp2p/go-libp2p/p2p/transport/quic"
	"github.com/libp2p/go-libp2p/p2p/transport/tcp"
	"github.com/libp2p/go-libp2p/p2p/transport/websocket"
	ma "github.com/multiformats/go-multiaddr"
)

// HostOptions configures the libp2p host built by [NewHost]. The zero value of
// ConnLow, ConnHigh and ConnGrace selects a default; Identity is required.
type HostOptions struct {
	// Identity is the node's Ed25519 private key; its peer ID is the node's ID.
	Identity crypto.PrivKey

	// AgentVersion is what identify tells peers the node is ("casd/0.2.0").
	AgentVersion string

	// Gater, if set, decides which connections the host makes and accepts
	// (casd's: refuse banned peers).
	Gater corecm.ConnectionGater

	// ListenAddrs are multiaddrs to listen on, for example
	// /ip4/0.0.0.0/tcp/4001, /ip4/0.0.0.0/udp/4001/quic-v1 and
	// /ip4/0.0.0.0/tcp/4002/ws. Every one of them must come up, or NewHost
	// fails. None makes a host that only dials out.
	ListenAddrs []string

	// AnnounceAddrs, when set, replace the addresses the host advertises
	// (h.Addrs, hence identify and the DHT); relay circuit addresses are
	// kept. mDNS always announces the interface listen addresses.
	AnnounceAddrs []string

	// ConnLow and ConnHigh are the connection manager's watermarks: above
	// ConnHigh connections it trims down to ConnLow, sparing connections
	// younger than ConnGrace.
	ConnLow, ConnHigh int
	ConnGrace         time.Duration

	// RelayService runs a circuit relay v2 service for other peers (it only
	// starts while AutoNAT finds the node publicly reachable). NATPortMap
	// asks the gateway for a port mapping (UPnP, NAT-PMP). HolePunching
	// enables DCUtR.
	RelayService, NATPortMap, HolePunching bool

	// ProtocolLimits are our own protocols (/cas/store/1.0, /cas/get/1.0,
	// /cas/peers/1.0); each gets the explicit resource-manager limits of
	// [protocolLimit] and [protocolPeerLimit] instead of libp2p's defaults.
	ProtocolLimits []protocol.ID
}

// Defaults for the connection manager, as in kubo.
const (
	defaultConnLow   = 32
	defaultConnHigh  = 96
	defaultConnGrace = 20 * time.Second
)

// Sizes the resource manager must make room for. A message carries at most
// one block (4 MiB at most) plus framing, and a retrieval keeps up to
// streamWindow messages in flight with one peer.
const (
	maxMessageSize = 4<<20 + 64<<10
	streamWindow   = 32
	windowMemory   = streamWindow * maxMessageSize
)

// Explicit resource-manager limits for each protocol in
// HostOptions.ProtocolLimits. The increase applies per GiB of the memory
// libp2p may use (1/8 of the machine's memory, see rcmgr's AutoScale); the
// system scope caps everything in the end.
var (
	protocolLimit = rcmgr.BaseLimit{
		StreamsInbound:  1024,
		StreamsOutbound: 1024,
		Streams:         2048,
		Memory:          2 * windowMemory,
	}
	protocolLimitIncrease = rcmgr.BaseLimitIncrease{
		StreamsInbound:  512,
		StreamsOutbound: 512,
		Streams:         1024,
		Memory:          256 << 20,
	}
	// protocolPeerLimit bounds one peer on one protocol: a full window of
	// maximal messages, in one stream or spread over many.
	protocolPeerLimit = rcmgr.BaseLimit{
		StreamsInbound:  64,
		StreamsOutbound: 64,
		Streams:         128,
		Memory:          windowMemory,
	}
)

// ConnWatermarks returns the connection manager's low and high water
// marks for HostOptions' ConnLow and ConnHigh, as [NewHost] sets them: a
// zero high mark is the default (at least low), a zero low mark the
// default (at most high). Gossip dials learned peers while the host has
// fewer connections than the low mark.
func ConnWatermarks(low, high int) (int, int) {
	if high == 0 {
		high = max(defaultConnHigh, low)
	}
	if low == 0 {
		low = min(defaultConnLow, high)
	}
	return low, high
}

var (
	errNoIdentity     = errors.New("p2p: host options: no identity key")
	errNotEd25519     = errors.New("p2p: host options: identity key is not Ed25519")
	errConnWatermarks = errors.New("p2p: host options: ConnLow exceeds ConnHigh")
)

// NewHost builds and starts the node's libp2p host: TCP, QUIC v1 and WebSocket
// transports, Noise then TLS, yamux, a connection manager with opts'
// watermarks, a resource manager scaled to the machine with explicit limits
// for opts.ProtocolLimits, the circuit relay v2 client, the AutoNAT service,
// and optionally the relay service, port mapping and hole punching.
//
// It listens on every address in opts.ListenAddrs and fails if any of them
// cannot be listened on. On error nothing it started is left running.
func NewHost(opts HostOptions) (_ host.Host, err error) {
	if opts.Identity == nil {
		return nil, errNoIdentity
	}
	if t := opts.Identity.Type(); t != cryptopb.KeyType_Ed25519 {
		return nil, fmt.Errorf("%w: %s", errNotEd25519, t)
	}
	listen, err := parseAddrs(opts.ListenAddrs)
	if err != nil {
		return nil, fmt.Errorf("parse listen addresses: %w", err)
	}
	announce, err := parseAddrs(opts.AnnounceAddrs)
	if err != nil {
		return nil, fmt.Errorf("parse announce addresses: %w", err)
	}
	low, high := ConnWatermarks(opts.ConnLow, opts.ConnHigh)
	grace := opts.ConnGrace
	if grace == 0 {
		grace = defaultConnGrace
	}
	if low < 0 || high < 0 || grace < 0 {
		return nil, fmt.Errorf("p2p: host options: negative connection manager setting (low %d, high %d, grace %s)", low, high, grace)
	}
	if low > high {
		return nil, fmt.Errorf("%w (%d > %d)", errConnWatermarks, low, high)
	}

	// libp2p.New only closes what it created itself when construction fails
	// part-way, so the parts with background goroutines are made here and
	// closed here on failure (closing twice is harmless for all three).
	var closers []io.Closer
	defer func() {
		if err != nil {
			for _, c := range slices.Backward(closers) {
				err = errors.Join(err, c.Close())
			}
		}
	}()
	ps, err := pstoremem.NewPeerstore()
	if err != nil {
		return nil, fmt.Errorf("new peerstore: %w", err)
	}
	closers = append(closers, ps)
	rm, err := newResourceManager(opts.ProtocolLimits)
	if err != nil {
		return nil, err
	}
	closers = append(closers, rm)
	cm, err := connmgr.NewConnManager(low, high, connmgr.WithGracePeriod(grace))
	if err != nil {
		return nil, fmt.Errorf("new connection manager: %w", err)
	}
	closers = append(closers, cm)

	p2pOpts := []libp2p.Option{
		libp2p.Identity(opts.Identity),
		libp2p.UserAgent(opts.AgentVersion), // what identify tells peers
		libp2p.Peerstore(ps),
		// No ListenAddrs option: each address is listened on below, so
		// that a failure names its address instead of being only logged.
		libp2p.Transport(tcp.NewTCPTransport),
		libp2p.Transport(libp2pquic.NewTransport),
		libp2p.Transport(websocket.New),
		libp2p.Security(noise.ID, noise.New),
		libp2p.Security(libp2ptls.ID, libp2ptls.New),
		libp2p.Muxer(yamux.ID, yamux.DefaultTransport),
		libp2p.ResourceManager(rm),
		libp2p.ConnectionManager(cm),
		libp2p.EnableRelay(),
		libp2p.EnableNATService(),
	}
	if len(announce) > 0 {
		p2pOpts = append(p2pOpts, libp2p.AddrsFactory(announceFactory(announce)))
	}
	if opts.Gater != nil {
		p2pOpts = append(p2pOpts, libp2p.ConnectionGater(opts.Gater))
	}
	if opts.RelayService {
		p2pOpts = append(p2pOpts, libp2p.EnableRelayService())
	}
	if opts.NATPortMap {
		p2pOpts = append(p2pOpts, libp2p.NATPortMap())
	}
	if opts.HolePunching {
		p2pOpts = append(p2pOpts, libp2p.EnableHolePunching())
	}
	h, err := libp2p.New(p2pOpts...)
	if err != nil {
		return nil, fmt.Errorf("new libp2p host: %w", err)
	}
	closers = append(closers, h)

	var errs []error
	for _, a := range listen {
		if err := h.Network().Listen(a); err != nil {
			errs = append(errs, fmt.Errorf("listen on %s: %w", a, err))
		}
	}
	if err := errors.Join(errs...); err != nil {
		return nil, err
	}
	log.Debugw("host started", "peer", h.ID(), "listen", h.Network().ListenAddresses())
	return h, nil
}

// newResourceManager builds a resource manager from libp2p's default limits
// scaled to this machine, with explicit limits for our protocols. Per stream
// and per peer it leaves room for a full window of maximal messages, which
// libp2p's defaults (16 MiB per stream) would not.
func newResourceManager(protos []protocol.ID) (network.ResourceManager, error) {
	limits := rcmgr.DefaultLimits // copy; the maps it sets are still nil
	libp2p.SetDefaultServiceLimits(&limits)
	limits.StreamBaseLimit.Memory = max(limits.StreamBaseLimit.Memory, windowMemory)
	limits.PeerBaseLimit.Memory = max(limits.PeerBaseLimit.Memory, windowMemory+64<<20)
	for _, p := range protos {
		limits.AddProtocolLimit(p, protocolLimit, protocolLimitIncrease)
		limits.AddProtocolPeerLimit(p, protocolPeerLimit, rcmgr.BaseLimitIncrease{})
	}
	rm, err := rcmgr.NewResourceManager(rcmgr.NewFixedLimiter(limits.AutoScale()))
	if err != nil {
		return nil, fmt.Errorf("new resource manager: %w", err)
	}
	return rm, nil
}

// announceFactory makes the host advertise announce instead of its listen
// addresses, keeping any relay circuit address libp2p adds.
func announceFactory(announce []ma.Multiaddr) func([]ma.Multiaddr) []ma.Multiaddr {
	return func(addrs []ma.Multiaddr) []ma.Multiaddr {
		out := slices.Clone(announce)
		for _, a := range addrs {
			if isRelayAddr(a) {
				out = append(out, a)
			}
		}
		return out
	}
}

func isRelayAddr(a ma.Multiaddr) bool {
	_, err := a.ValueForProtocol(ma.P_CIRCUIT)
	return err == nil
}

func parseAddrs(ss []string) ([]ma.Multiaddr, error) {
	addrs := make([]ma.Multiaddr, 0, len(ss))
	for _, s := range ss {
		a, err := ma.NewMultiaddr(s)
		if err != nil {
			return nil, fmt.Errorf("multiaddr %q: %w", s, err)
		}
		addrs = append(addrs, a)
	}
	return addrs, nil
}
