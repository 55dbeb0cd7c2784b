package p2p

import (
	"context"
	"errors"
	"fmt"
	"io"
	"sync"
	"time"

	"github.com/libp2p/go-libp2p/core/host"
	"github.com/libp2p/go-libp2p/core/network"
	"github.com/libp2p/go-libp2p/core/peer"
	"github.com/libp2p/go-libp2p/p2p/discovery/mdns"
)

// mdnsServiceTag is the mDNS service name casd nodes announce and browse.
const mdnsServiceTag = "casd"

// Bounds of mDNS discovery.
const (
	mdnsConnectTimeout = 10 * time.Second
	mdnsWorkers        = 4
	mdnsQueue          = 64
)

// mdnsDiscovery connects to the peers mDNS finds on the local network. It
// implements mdns.Notifee.
type mdnsDiscovery struct {
	h         host.Host
	onPeer    func(peer.ID) // nil: nobody is told
	svc       mdns.Service
	ctx       context.Context
	cancel    context.CancelFunc
	found     chan peer.AddrInfo
	wg        sync.WaitGroup
	closeOnce sync.Once
	closeErr  error

	mu      sync.Mutex // guards pending
	pending map[peer.ID]struct{}
}

var _ mdns.Notifee = (*mdnsDiscovery)(nil)

// StartMDNS announces h on the local network under serviceTag (mdnsServiceTag
// when empty) and connects to every peer announcing the same tag, each dial
// bounded by mdnsConnectTimeout. onPeer, if not nil, is called with each
// peer found (other than h), connected or not, from mdns's goroutines: it
// must return quickly. Close stops the announcements and waits for every
// goroutine it started.
func StartMDNS(h host.Host, serviceTag string, onPeer func(peer.ID)) (io.Closer, error) {
	if serviceTag == "" {
		serviceTag = mdnsServiceTag
	}
	d := newMDNSDiscovery(h, onPeer)
	d.svc = mdns.NewMdnsService(h, serviceTag, d)
	if err := d.svc.Start(); err != nil {
		return nil, errors.Join(fmt.Errorf("start mdns: %w", err), d.Close())
	}
	return d, nil
}

// newMDNSDiscovery starts the connecting workers; the caller sets d.svc before
// starting it.
func newMDNSDiscovery(h host.Host, onPeer func(peer.ID)) *mdnsDiscovery {
	ctx, cancel := context.WithCancel(context.Background())
	d := &mdnsDiscovery{
		h:       h,
		onPeer:  onPeer,
		ctx:     ctx,
		cancel:  cancel,
		found:   make(chan peer.AddrInfo, mdnsQueue),
		pending: make(map[peer.ID]struct{}),
	}
	for range mdnsWorkers {
		d.wg.Go(d.connectLoop)
	}
	return d
}

// HandlePeerFound reports ai to onPeer and queues it for a connection,
// unless it is h itself or d is closed; a peer already connected or
// already queued is not queued again. It never blocks: mdns calls it from
// goroutines of its own, possibly after Close, and a full queue drops the
// peer until mDNS reports it again.
func (d *mdnsDiscovery) HandlePeerFound(ai peer.AddrInfo) {
	if ai.ID == d.h.ID() || d.ctx.Err() != nil {
		return
	}
	if d.onPeer != nil {
		d.onPeer(ai.ID)
	}
	if d.h.Network().Connectedness(ai.ID) == network.Connected {
		return
	}
	d.mu.Lock()
	if _, dup := d.pending[ai.ID]; dup {
		d.mu.Unlock()
		return
	}
	d.pending[ai.ID] = struct{}{}
	d.mu.Unlock()

	select {
	case d.found <- ai:
	default:
		d.done(ai.ID)
		log.Debugw("mdns queue full, dropping peer", "peer", ai.ID)
	}
}

func (d *mdnsDiscovery) connectLoop() {
	for {
		select {
		case <-d.ctx.Done():
			return
		case ai := <-d.found:
			ctx, cancel := context.WithTimeout(d.ctx, mdnsConnectTimeout)
			err := d.h.Connect(ctx, ai)
			cancel()
			d.done(ai.ID)
			if err != nil {
				log.Debugw("connect mdns peer", "peer", ai.ID, "err", err)
				continue
			}
			log.Debugw("connected mdns peer", "peer", ai.ID)
		}
	}
}

func (d *mdnsDiscovery) done(p peer.ID) {
	d.mu.Lock()
	delete(d.pending, p)
	d.mu.Unlock()
}

// Close stops mDNS and waits for the connecting workers. It is safe to call
// more than once.
func (d *mdnsDiscovery) Close() error {
	d.closeOnce.Do(func() {
		d.cancel() // aborts dials in flight
		if d.svc != nil {
			if err := d.svc.Close(); err != nil {
				d.closeErr = fmt.Errorf("close mdns: %w", err)
			}
		}
		d.wg.Wait()
	})
	return d.closeErr
}
