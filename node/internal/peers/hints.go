package peers

import (
	"slices"
	"sync"

	lru "github.com/hashicorp/golang-lru/v2"
	"github.com/ipfs/go-cid"
	"github.com/libp2p/go-libp2p/core/peer"
)

// Bounds of [Hints].
const (
	maxHintsPerRoot = 8
	maxHintRoots    = 4096
)

// Hints are the peers a node knows to hold a root: the replicas an add
// placed it on, and the peers a read got its blocks from. A read asks them
// first, before the DHT's providers. They live in memory, bounded: the
// least recently used roots are forgotten first, and of one root the oldest
// peer. It is safe for concurrent use.
type Hints struct {
	mu    sync.Mutex // serialises read-modify-write of roots' lists
	roots *lru.Cache[string, []peer.ID]
}

// NewHints returns an empty hint table.
func NewHints() *Hints {
	c, err := lru.New[string, []peer.ID](maxHintRoots)
	if err != nil {
		panic(err) // only for a size <= 0
	}
	return &Hints{roots: c}
}

// Add records that p held root.
func (h *Hints) Add(root cid.Cid, p peer.ID) {
	k := root.KeyString()
	h.mu.Lock()
	defer h.mu.Unlock()
	ps, _ := h.roots.Get(k)
	if slices.Contains(ps, p) {
		return
	}
	if len(ps) == maxHintsPerRoot {
		ps = ps[1:] // forget the oldest peer
	}
	h.roots.Add(k, append(slices.Clip(ps), p))
}

// Of returns the peers known to hold root, oldest first.
func (h *Hints) Of(root cid.Cid) []peer.ID {
	h.mu.Lock()
	defer h.mu.Unlock()
	ps, _ := h.roots.Get(root.KeyString())
	return slices.Clone(ps)
}

// Drop forgets that p holds root (it failed a check, or dropped root).
func (h *Hints) Drop(root cid.Cid, p peer.ID) {
	k := root.KeyString()
	h.mu.Lock()
	defer h.mu.Unlock()
	ps, ok := h.roots.Get(k)
	if !ok || !slices.Contains(ps, p) {
		return
	}
	ps = slices.DeleteFunc(slices.Clone(ps), func(q peer.ID) bool { return q == p })
	if len(ps) == 0 {
		h.roots.Remove(k)
		return
	}
	h.roots.Add(k, ps)
}
