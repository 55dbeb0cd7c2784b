package fetch

import (
	"context"
	"maps"
	"slices"
	"sync"

	"github.com/libp2p/go-libp2p/core/peer"
)

// Sources is the set of peers one read takes blocks from. Peers are added
// as a lookup finds them, dropped when they lie or cannot be reached, and
// handed out round robin by [Sources.Next]. [Sources.Seal] says that the
// lookup is over. It is safe for concurrent use; it does no I/O.
type Sources struct {
	mu sync.Mutex // guards the fields below
	// peers are the sources, in the order they were added.
	peers []peer.ID
	// dropped peers sent a wrong block or could not be reached.
	dropped map[peer.ID]bool
	// parked peers went silent during a fetch: they may be dead, or only
	// slow (a loaded machine), so they are handed out again only when no
	// other peer is left.
	parked map[peer.ID]bool
	// confirmed peers said they hold the root whole.
	confirmed map[peer.ID]bool
	next      int  // round-robin cursor into peers
	sealed    bool // no more peers will be added
	// changed is closed, and replaced, whenever peers grows or the set is
	// sealed, waking those who wait.
	changed chan struct{}
}

// NewSources returns an empty, open set.
func NewSources() *Sources {
	return &Sources{
		dropped:   make(map[peer.ID]bool),
		parked:    make(map[peer.ID]bool),
		confirmed: make(map[peer.ID]bool),
		changed:   make(chan struct{}),
	}
}

// Add adds p, once; confirmed marks a peer that said it holds the root
// whole (and upgrades one added unconfirmed).
func (s *Sources) Add(p peer.ID, confirmed bool) {
	s.mu.Lock()
	defer s.mu.Unlock()
	if confirmed {
		s.confirmed[p] = true
	}
	if !slices.Contains(s.peers, p) {
		s.peers = append(s.peers, p)
		s.signalLocked()
	}
}

// Drop stops handing p out.
func (s *Sources) Drop(p peer.ID) {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.dropped[p] = true
}

// Park hands p out only as a last resort, after every other peer that is
// not dropped, until [Sources.Unpark].
func (s *Sources) Park(p peer.ID) {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.parked[p] = true
}

// Unpark makes a parked peer a source like any other again.
func (s *Sources) Unpark(p peer.ID) {
	s.mu.Lock()
	defer s.mu.Unlock()
	delete(s.parked, p)
}

// Parked reports whether p is parked.
func (s *Sources) Parked(p peer.ID) bool {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.parked[p]
}

// Dropped reports whether p was dropped.
func (s *Sources) Dropped(p peer.ID) bool {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.dropped[p]
}

// Confirmed reports whether p said it holds the root whole.
func (s *Sources) Confirmed(p peer.ID) bool {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.confirmed[p]
}

// Seal says no peer will be added any more: waiters wake, and Next returns
// false once every peer left is dropped or skipped.
func (s *Sources) Seal() {
	s.mu.Lock()
	defer s.mu.Unlock()
	if !s.sealed {
		s.sealed = true
		s.signalLocked()
	}
}

func (s *Sources) signalLocked() {
	close(s.changed)
	s.changed = make(chan struct{})
}

// Next returns the next peer, round robin, that is neither dropped nor in
// skip, parked peers only when no other is left. While none is and the set
// is not sealed, it waits for one. It
// returns false once the set is sealed without such a peer, or when ctx
// ends.
func (s *Sources) Next(ctx context.Context, skip map[peer.ID]bool) (p peer.ID, ok bool) {
	s.wait(ctx, func() bool {
		p, ok = s.pickLocked(skip)
		return ok
	})
	return p, ok
}

func (s *Sources) pickLocked(skip map[peer.ID]bool) (peer.ID, bool) {
	for _, lastResort := range []bool{false, true} {
		for i := range s.peers {
			j := (s.next + i) % len(s.peers)
			if p := s.peers[j]; !s.dropped[p] && !skip[p] && s.parked[p] == lastResort {
				s.next = (j + 1) % len(s.peers)
				return p, true
			}
		}
	}
	return "", false
}

// All waits until the set is sealed (or ctx ends) and returns every peer
// added, in order, and those of them that confirmed.
func (s *Sources) All(ctx context.Context) (peers []peer.ID, confirmed map[peer.ID]bool) {
	s.wait(ctx, func() bool { return false })
	s.mu.Lock()
	defer s.mu.Unlock()
	return slices.Clone(s.peers), maps.Clone(s.confirmed)
}

// wait calls done, with the lock held, until it returns true, the set is
// sealed, or ctx ends; it waits for a change between two calls.
func (s *Sources) wait(ctx context.Context, done func() bool) {
	for {
		s.mu.Lock()
		finished := done() || s.sealed
		changed := s.changed
		s.mu.Unlock()
		if finished {
			return
		}
		select {
		case <-changed:
		case <-ctx.Done():
			return
		}
	}
}
