package gossip

import (
	"sync"
	"time"

	lru "github.com/hashicorp/golang-lru/v2"
	"github.com/libp2p/go-libp2p/core/peer"
	"golang.org/x/time/rate"
)

// Bounds of [Gossip.Allow].
const (
	// allowBurst exchanges a peer may run back to back.
	allowBurst = 4
	// minRefill and maxRefill bound the time a token takes to come back
	// (Interval/8 between them).
	minRefill = 250 * time.Millisecond
	maxRefill = 4 * time.Second
	// maxAllowPeers bounds the buckets kept; the least recently used go
	// first.
	maxAllowPeers = 4096
)

// refillEvery is the time one token of a peer's bucket takes to come back
// for a round Interval: Interval/8, within [minRefill, maxRefill]. An
// honest peer exchanges with one node about once per Interval, well
// within it.
func refillEvery(interval time.Duration) time.Duration {
	return min(max(interval/8, minRefill), maxRefill)
}

// allowance is a token bucket per peer, in a bounded table.
type allowance struct {
	every time.Duration
	mu    sync.Mutex // serialises the get-or-create of a bucket
	peers *lru.Cache[peer.ID, *rate.Limiter]
}

func newAllowance(every time.Duration) *allowance {
	c, err := lru.New[peer.ID, *rate.Limiter](maxAllowPeers)
	if err != nil {
		panic(err) // only for a size <= 0
	}
	return &allowance{every: every, peers: c}
}

// allow takes a token from p's bucket, reporting false if it has none.
func (a *allowance) allow(p peer.ID) bool {
	a.mu.Lock()
	defer a.mu.Unlock()
	l, ok := a.peers.Get(p)
	if !ok {
		l = rate.NewLimiter(rate.Every(a.every), allowBurst)
		a.peers.Add(p, l)
	}
	return l.Allow()
}

// Allow reports whether from may run an exchange now: each peer has a
// bucket of allowBurst tokens that refills one per Interval/8 (within
// 250ms and 4s). False means it floods.
func (g *Gossip) Allow(from peer.ID) bool { return g.allow.allow(from) }
