package gossip

import (
	"context"
	"errors"
	"fmt"
	"math/rand/v2"
	"slices"
	"sync"
	"sync/atomic"
	"time"

	logging "github.com/ipfs/go-log/v2"
	"github.com/libp2p/go-libp2p/core/host"
	"github.com/libp2p/go-libp2p/core/network"
	"github.com/libp2p/go-libp2p/core/peer"
	"github.com/libp2p/go-libp2p/core/peerstore"

	"github.com/casd/casd/node/internal/peers"
	"github.com/casd/casd/protocol"
)

var log = logging.Logger("casd/gossip")

// Defaults of [Config]: a zero field takes them.
const (
	DefaultInterval   = 30 * time.Second
	DefaultSampleSize = 16
	DefaultFanout     = 3
)

// GossipAddrTTL is how long the addresses a gossiped or remembered record
// names stay in the peerstore unless refreshed.
const GossipAddrTTL = time.Hour

// jitter is the fraction by which each wait between rounds varies around
// the Interval, either way.
const jitter = 0.2

// Config is what a [Gossip] is built with.
type Config struct {
	// Host is the node's libp2p host; its peerstore must be a certified
	// address book (libp2p's default).
	Host host.Host
	// Interval is the mean round period; each wait is jittered ±20%.
	// Zero means DefaultInterval.
	Interval time.Duration
	// SampleSize bounds the records of one message, self's own included.
	// Zero means DefaultSampleSize; at most protocol.MaxPeerRecords.
	SampleSize int
	// Fanout is how many connected peers a round exchanges with. Zero
	// means DefaultFanout.
	Fanout int
	// LowWater: learned peers are dialled while the host has fewer
	// connected peers than this. Zero dials none.
	LowWater int
	// Sources, if not nil, is told SourceGossip for the peer of each
	// accepted record and SourceRemembered for each loaded peer.
	Sources *peers.Sources
	// Strike, if not nil, is called for a peer whose reply broke the
	// protocol.
	Strike func(peer.ID, string)
	// RememberPath is the repo's peers file; "" remembers nothing.
	RememberPath string
}

// Gossip runs the /cas/peers/1.0 exchanges of one node. It implements
// [protocol.PeersBackend]. Build it with [New], then Start and Close it.
type Gossip struct {
	cfg    Config
	h      host.Host
	cab    peerstore.CertifiedAddrBook
	ctx    context.Context // cancelled by Close
	cancel context.CancelFunc
	wg     sync.WaitGroup // every goroutine Start launched

	life    sync.Mutex // guards started and closed against Start racing Close
	started bool
	closed  bool

	closeOnce sync.Once
	closeErr  error

	allow   *allowance
	dials   *dialer
	mem     *memory
	notifee *network.NotifyBundle

	remembering atomic.Bool // a dial of the remembered peers is running
}

var _ protocol.PeersBackend = (*Gossip)(nil)

// New builds a Gossip over cfg.Host and loads the remembered peers from
// cfg.RememberPath (a missing file is an empty list; a corrupt file or
// entry is logged and skipped). It starts nothing.
func New(cfg Config) (*Gossip, error) {
	if cfg.Host == nil {
		return nil, errors.New("gossip: no host")
	}
	cab, ok := peerstore.GetCertifiedAddrBook(cfg.Host.Peerstore())
	if !ok {
		return nil, errors.New("gossip: the host's peerstore is not a certified address book")
	}
	if err := normalize(&cfg); err != nil {
		return nil, err
	}
	ctx, cancel := context.WithCancel(context.Background())
	g := &Gossip{
		cfg:    cfg,
		h:      cfg.Host,
		cab:    cab,
		ctx:    ctx,
		cancel: cancel,
		allow:  newAllowance(refillEvery(cfg.Interval)),
		mem:    newMemory(),
	}
	g.dials = newDialer(ctx, cfg.Host, cfg.LowWater)
	g.notifee = &network.NotifyBundle{ConnectedF: func(_ network.Network, c network.Conn) {
		g.mem.connected(c.RemotePeer(), time.Now(), c.Stat().Direction == network.DirOutbound)
	}}
	g.load()
	return g, nil
}

// normalize gives zero fields their defaults and refuses negative ones.
func normalize(cfg *Config) error {
	if cfg.Interval < 0 || cfg.SampleSize < 0 || cfg.Fanout < 0 || cfg.LowWater < 0 {
		return fmt.Errorf("gossip: negative setting: interval %s, sample size %d, fanout %d, low water %d",
			cfg.Interval, cfg.SampleSize, cfg.Fanout, cfg.LowWater)
	}
	if cfg.Interval == 0 {
		cfg.Interval = DefaultInterval
	}
	if cfg.SampleSize == 0 {
		cfg.SampleSize = DefaultSampleSize
	}
	cfg.SampleSize = min(cfg.SampleSize, protocol.MaxPeerRecords)
	if cfg.Fanout == 0 {
		cfg.Fanout = DefaultFanout
	}
	return nil
}

// Start registers the connection notifee (and counts the connections
// already open as connected now), subscribes to identify's records,
// launches the dial workers and the round loop, and, if the host has no
// connection, dials the remembered peers. It does nothing after Close or
// a second time.
func (g *Gossip) Start() {
	g.life.Lock()
	defer g.life.Unlock()
	if g.started || g.closed {
		return
	}
	g.started = true
	g.h.Network().Notify(g.notifee)
	// Connections made before Start (the bootstrap peers', dialled while
	// the node's stack was built) are remembered too.
	now := time.Now()
	for _, c := range g.h.Network().Conns() {
		g.mem.connected(c.RemotePeer(), now, c.Stat().Direction == network.DirOutbound)
	}
	if sub := g.subscribeIdentify(); sub != nil {
		g.wg.Go(func() { g.watchIdentify(sub) })
	}
	g.dials.start(&g.wg)
	g.wg.Go(func() {
		if g.alone() {
			g.dialRemembered(g.ctx)
		}
	})
	g.wg.Go(g.loop)
}

// Close stops the loops, waits for every goroutine Start launched (dials
// in flight are cancelled) and saves the remembered peers. It is safe to
// call more than once.
func (g *Gossip) Close() error {
	g.closeOnce.Do(func() {
		g.life.Lock()
		g.closed = true
		started := g.started
		g.life.Unlock()

		g.cancel()
		if started {
			g.h.Network().StopNotify(g.notifee)
		}
		g.wg.Wait()
		if started || g.mem.changed() {
			g.closeErr = g.save()
		}
	})
	return g.closeErr
}

// loop runs a round after each jittered wait until Close.
func (g *Gossip) loop() {
	t := time.NewTimer(g.nextWait())
	defer t.Stop()
	for {
		select {
		case <-g.ctx.Done():
			return
		case <-t.C:
		}
		g.round(g.ctx)
		t.Reset(g.nextWait())
	}
}

// nextWait is the Interval jittered by ±20%.
func (g *Gossip) nextWait() time.Duration {
	span := int64(float64(g.cfg.Interval) * jitter)
	if span <= 0 {
		return g.cfg.Interval
	}
	return g.cfg.Interval + time.Duration(rand.Int64N(2*span+1)-span)
}

// round dials the remembered peers if the host is alone, exchanges records
// with up to Fanout connected peers at once, and saves the remembered
// peers if they changed. It returns when every exchange it began has.
func (g *Gossip) round(ctx context.Context) {
	if g.alone() {
		g.dialRemembered(ctx)
	}
	var wg sync.WaitGroup
	for _, p := range g.targets() {
		wg.Go(func() { g.exchange(ctx, p) })
	}
	wg.Wait()
	if g.mem.changed() {
		if err := g.save(); err != nil {
			log.Warnw("save remembered peers", "err", err)
		}
	}
}

// targets picks up to Fanout random connected peers that may speak
// /cas/peers/1.0: those that do, and those whose protocols are not known
// yet (a peer that does not speak it fails fast).
func (g *Gossip) targets() []peer.ID {
	conns := g.h.Network().Peers()
	rand.Shuffle(len(conns), func(i, j int) { conns[i], conns[j] = conns[j], conns[i] })
	out := make([]peer.ID, 0, g.cfg.Fanout)
	for _, p := range conns {
		if len(out) == g.cfg.Fanout {
			break
		}
		if g.mayServe(p) {
			out = append(out, p)
		}
	}
	return out
}

// mayServe reports whether p speaks /cas/peers/1.0 or might.
func (g *Gossip) mayServe(p peer.ID) bool {
	protos, err := g.h.Peerstore().GetProtocols(p)
	if err != nil || len(protos) == 0 {
		return true
	}
	return slices.Contains(protos, protocol.PeersID)
}

// exchange sends p a sample and merges its verified reply; a reply that
// breaks the protocol strikes p.
func (g *Gossip) exchange(ctx context.Context, p peer.ID) {
	ctx, cancel := context.WithTimeout(ctx, protocol.PeersTimeout)
	defer cancel()
	recs, err := protocol.ExchangePeers(ctx, g.h, p, g.Sample(p))
	if err != nil {
		if protocol.IsPeerFault(err) && g.cfg.Strike != nil {
			g.cfg.Strike(p, fmt.Sprintf("peer exchange: %v", err))
		}
		log.Debugw("peer exchange", "peer", p, "err", err)
		return
	}
	g.Merge(p, recs)
}

// alone reports whether the host has no connected peer.
func (g *Gossip) alone() bool { return len(g.h.Network().Peers()) == 0 }
