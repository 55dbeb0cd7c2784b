package peers

import (
	"sync"
	"time"

	lru "github.com/hashicorp/golang-lru/v2"
	"github.com/libp2p/go-libp2p/core/peer"
)

// Source is a set of the ways a node learned of a peer.
type Source uint8

// The sources of [Sources], in the order [Source.Names] lists them.
const (
	// SourceDHT: a DHT answer named the peer.
	SourceDHT Source = 1 << iota
	// SourceGossip: a peer sent its signed record over /cas/peers/1.0.
	SourceGossip
	// SourceMDNS: mDNS found it on the local network.
	SourceMDNS
	// SourceBootstrap: it is one of the config's bootstrap peers.
	SourceBootstrap
	// SourceRemembered: the repo's remembered peers list it.
	SourceRemembered
	// SourceInbound: it connected to this node.
	SourceInbound
)

// sourceNames are the names of the sources, bit by bit.
var sourceNames = [...]string{"dht", "gossip", "mdns", "bootstrap", "remembered", "inbound"}

// Names returns the names of the sources in s, in a fixed order; an empty
// set gives an empty, non-nil slice.
func (s Source) Names() []string {
	out := []string{}
	for i, name := range sourceNames {
		if s&(1<<i) != 0 {
			out = append(out, name)
		}
	}
	return out
}

// MaxKnownPeers bounds [Sources] when NewSources is given no size.
const MaxKnownPeers = 4096

// SourceInfo is what [Sources] knows of one peer.
type SourceInfo struct {
	Sources  Source
	LastSeen time.Time // the last time it was noted, or seen connecting or leaving
}

// Sources remembers, for each peer a node knows, how it learned of it and
// when it last heard of it. It is bounded: once it holds its maximum, the
// peer heard of least recently is forgotten, and the evicted function is
// told (the node then forgets the peer's addresses, so that what it knows
// stays bounded however many peers others name). It is safe for
// concurrent use.
type Sources struct {
	evicted func(peer.ID)

	mu      sync.Mutex // serialises read-modify-write of entries
	entries *lru.Cache[peer.ID, SourceInfo]
	dropped []peer.ID // evicted by the current Add, guarded by mu
}

// NewSources returns an empty table of at most max peers (MaxKnownPeers
// when max <= 0). evicted, if not nil, is called for each peer that falls
// out of the table, without any lock of the table held.
func NewSources(max int, evicted func(peer.ID)) *Sources {
	if max <= 0 {
		max = MaxKnownPeers
	}
	s := &Sources{evicted: evicted}
	c, err := lru.NewWithEvict(max, func(p peer.ID, _ SourceInfo) {
		s.dropped = append(s.dropped, p) // under s.mu: only update adds
	})
	if err != nil {
		panic(err) // only for a size <= 0
	}
	s.entries = c
	return s
}

// Note records that the node learned of p from src, now.
func (s *Sources) Note(p peer.ID, src Source) { s.update(p, src) }

// Seen records that p was heard of now (it connected or left), without a
// source; an unknown peer is added with none.
func (s *Sources) Seen(p peer.ID) { s.update(p, 0) }

func (s *Sources) update(p peer.ID, src Source) {
	s.mu.Lock()
	info, _ := s.entries.Get(p)
	info.Sources |= src
	info.LastSeen = time.Now()
	s.entries.Add(p, info)
	dropped := s.dropped
	s.dropped = nil
	s.mu.Unlock()
	if s.evicted != nil {
		for _, q := range dropped {
			s.evicted(q)
		}
	}
}

// Get returns what the table knows of p.
func (s *Sources) Get(p peer.ID) (SourceInfo, bool) {
	return s.entries.Peek(p) // a look is not news: it keeps p's place
}

// Len returns the number of peers in the table.
func (s *Sources) Len() int { return s.entries.Len() }
