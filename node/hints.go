package node

import (
	"slices"

	"github.com/ipfs/go-cid"
	"github.com/libp2p/go-libp2p/core/peer"
)

// Hints are the peers a node knows to hold a root: the replicas an add
// placed it on, and the peers a read got its blocks from. A read asks them
// first, before the DHT's providers. They live in memory, bounded.
const (
	maxHintsPerRoot = 8
	maxHintRoots    = 4096
)

// addHint records that p held root.
func (nw *online) addHint(root cid.Cid, p peer.ID) {
	k := root.KeyString()
	nw.mu.Lock()
	defer nw.mu.Unlock()
	hs := nw.hints[k]
	if slices.Contains(hs, p) {
		return
	}
	if hs == nil && len(nw.hints) >= maxHintRoots {
		for old := range nw.hints { // forget an arbitrary root
			delete(nw.hints, old)
			break
		}
	}
	if len(hs) == maxHintsPerRoot {
		hs = hs[1:] // forget the oldest peer
	}
	nw.hints[k] = append(slices.Clip(hs), p)
}

// hintsOf returns the peers known to hold root.
func (nw *online) hintsOf(root cid.Cid) []peer.ID {
	nw.mu.Lock()
	defer nw.mu.Unlock()
	return slices.Clone(nw.hints[root.KeyString()])
}
