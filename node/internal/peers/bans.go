package peers

import (
	"sync"
	"time"

	lru "github.com/hashicorp/golang-lru/v2"
	"github.com/libp2p/go-libp2p/core/connmgr"
	"github.com/libp2p/go-libp2p/core/control"
	"github.com/libp2p/go-libp2p/core/network"
	"github.com/libp2p/go-libp2p/core/peer"
	ma "github.com/multiformats/go-multiaddr"
)

// Bounds of [Bans].
const (
	// FirstBan is how long a peer is refused the first time it reaches
	// MaxStrikes; each later ban doubles it, up to MaxBan.
	FirstBan = time.Minute
	MaxBan   = 24 * time.Hour
	// maxBannedPeers bounds the table; the least recently banned are
	// forgotten first (a flood of fresh IDs costs each of them a
	// handshake, not our memory).
	maxBannedPeers = 4096
)

// ban is one peer's record: until when it is refused, and how many times
// it was banned (which sets the next ban's length).
type ban struct {
	until time.Time
	count int
}

// Bans refuses connections from and to peers that misbehaved, for a time
// that grows with each ban. It is a libp2p connection gater, safe for
// concurrent use.
type Bans struct {
	now   func() time.Time
	mu    sync.Mutex // serialises read-modify-write of records
	peers *lru.Cache[peer.ID, ban]
}

var _ connmgr.ConnectionGater = (*Bans)(nil)

// NewBans returns an empty ban table that reads time from now (time.Now
// when nil).
func NewBans(now func() time.Time) *Bans {
	if now == nil {
		now = time.Now
	}
	c, err := lru.New[peer.ID, ban](maxBannedPeers)
	if err != nil {
		panic(err) // only for a size <= 0
	}
	return &Bans{now: now, peers: c}
}

// Ban refuses p from now on for a time that doubles with each ban, and
// returns that time.
func (b *Bans) Ban(p peer.ID) time.Duration {
	b.mu.Lock()
	defer b.mu.Unlock()
	rec, _ := b.peers.Get(p)
	d := FirstBan
	for range min(rec.count, 20) {
		d *= 2
		if d >= MaxBan {
			d = MaxBan
			break
		}
	}
	rec.count++
	rec.until = b.now().Add(d)
	b.peers.Add(p, rec)
	log.Warnw("banning misbehaving peer", "peer", p, "for", d, "bans", rec.count)
	return d
}

// Banned reports whether p is refused now.
func (b *Bans) Banned(p peer.ID) bool {
	rec, ok := b.peers.Peek(p)
	return ok && b.now().Before(rec.until)
}

// InterceptPeerDial refuses to dial a banned peer.
func (b *Bans) InterceptPeerDial(p peer.ID) bool { return !b.Banned(p) }

// InterceptAddrDial refuses to dial a banned peer at any address.
func (b *Bans) InterceptAddrDial(p peer.ID, _ ma.Multiaddr) bool { return !b.Banned(p) }

// InterceptAccept lets every inbound connection reach the handshake: the
// peer is only known after it.
func (b *Bans) InterceptAccept(network.ConnMultiaddrs) bool { return true }

// InterceptSecured refuses a banned peer once its identity is known.
func (b *Bans) InterceptSecured(_ network.Direction, p peer.ID, _ network.ConnMultiaddrs) bool {
	return !b.Banned(p)
}

// InterceptUpgraded lets every connection that passed InterceptSecured on.
func (b *Bans) InterceptUpgraded(network.Conn) (bool, control.DisconnectReason) { return true, 0 }
