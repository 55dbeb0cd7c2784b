package peers

import (
	"sync"

	lru "github.com/hashicorp/golang-lru/v2"
	golog "github.com/ipfs/go-log/v2"
	"github.com/libp2p/go-libp2p/core/peer"
)

var log = golog.Logger("casd/peers")

// Bounds of [Strikes].
const (
	// MaxStrikes is how much bad input a peer may send before it is
	// disconnected.
	MaxStrikes = 3
	// maxStruckPeers bounds the peers remembered; the least recently struck
	// are forgotten first, so a flood of fresh peer IDs costs a fixed
	// amount of memory.
	maxStruckPeers = 4096
)

// Strikes counts bad input per peer and disconnects a peer once it reaches
// [MaxStrikes]; the caller's disconnect function also bans it (see
// [Bans]), and the count starts again. It is safe for concurrent use.
type Strikes struct {
	disconnect func(peer.ID)
	mu         sync.Mutex // serialises read-modify-write of counts
	counts     *lru.Cache[peer.ID, int]
}

// NewStrikes returns a strike counter that calls disconnect (for example
// host.Network().ClosePeer) for a peer that reached [MaxStrikes].
func NewStrikes(disconnect func(peer.ID)) *Strikes {
	c, err := lru.New[peer.ID, int](maxStruckPeers)
	if err != nil {
		panic(err) // only for a size <= 0
	}
	return &Strikes{disconnect: disconnect, counts: c}
}

// Strike counts one piece of bad input from p, and disconnects p when it
// reaches MaxStrikes. It returns p's count.
func (s *Strikes) Strike(p peer.ID, reason string) int {
	s.mu.Lock()
	n, _ := s.counts.Get(p)
	n++
	if n >= MaxStrikes {
		s.counts.Remove(p) // the disconnect (and ban) settles these strikes
	} else {
		s.counts.Add(p, n)
	}
	s.mu.Unlock()
	log.Debugw("strike", "peer", p, "reason", reason, "strikes", n)
	if n >= MaxStrikes {
		log.Warnw("disconnecting misbehaving peer", "peer", p, "strikes", n)
		s.disconnect(p)
	}
	return n
}

// Count returns p's strikes so far.
func (s *Strikes) Count(p peer.ID) int {
	n, _ := s.counts.Peek(p)
	return n
}
