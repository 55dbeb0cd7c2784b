package peers

import (
	lru "github.com/hashicorp/golang-lru/v2"
	"github.com/libp2p/go-libp2p/core/peer"
)

// maxProvenPeers bounds [Proven]; the least recently proven are forgotten
// first.
const maxProvenPeers = 4096

// Proven remembers the peers that answered a storage challenge correctly
// (protocol.Audit): placement prefers them to peers it knows nothing of.
// A peer that fails a challenge is forgotten. It lives in memory, bounded,
// and is safe for concurrent use.
type Proven struct {
	peers *lru.Cache[peer.ID, struct{}]
}

// NewProven returns an empty table.
func NewProven() *Proven {
	c, err := lru.New[peer.ID, struct{}](maxProvenPeers)
	if err != nil {
		panic(err) // only for a size <= 0
	}
	return &Proven{peers: c}
}

// Add records that p passed a challenge.
func (s *Proven) Add(p peer.ID) { s.peers.Add(p, struct{}{}) }

// Forget drops p, which failed a challenge.
func (s *Proven) Forget(p peer.ID) { s.peers.Remove(p) }

// Has reports whether p passed a challenge and was not forgotten since.
// It does not count as a use: only a new proof keeps a peer remembered.
func (s *Proven) Has(p peer.ID) bool { return s.peers.Contains(p) }

// Len returns the number of peers remembered.
func (s *Proven) Len() int { return s.peers.Len() }
