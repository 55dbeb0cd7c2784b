package replicate

import (
	"sync"
	"sync/atomic"

	"github.com/ipfs/go-cid"
)

// servedWatch tells an audit whether the block it challenges a peer on
// left this node while the challenge ran. Blocks are public by CID: a peer
// that holds nothing can answer a challenge by fetching the block from a
// holder, and right after an add the only holder is this node. A proof
// given while this node served that very block proves nothing.
type servedWatch struct {
	active atomic.Int64 // watches open; note returns at once when zero

	mu      sync.Mutex // guards watched
	watched map[cid.Cid]*watchEntry
}

// watchEntry counts the challenges on one block and the times it was
// served since the first of them began.
type watchEntry struct {
	open   int
	served uint64
}

// watch starts watching c. stop ends the watch and reports whether c was
// served since watch returned.
func (s *servedWatch) watch(c cid.Cid) (stop func() (served bool)) {
	s.active.Add(1)
	s.mu.Lock()
	if s.watched == nil {
		s.watched = make(map[cid.Cid]*watchEntry)
	}
	e := s.watched[c]
	if e == nil {
		e = &watchEntry{}
		s.watched[c] = e
	}
	e.open++
	start := e.served
	s.mu.Unlock()
	var (
		once   sync.Once
		served bool
	)
	return func() bool {
		once.Do(func() {
			s.mu.Lock()
			defer s.mu.Unlock()
			served = e.served != start
			if e.open--; e.open == 0 {
				delete(s.watched, c)
			}
			s.active.Add(-1)
		})
		return served
	}
}

// note records that c was served to a peer.
func (s *servedWatch) note(c cid.Cid) {
	if s.active.Load() == 0 {
		return
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	if e := s.watched[c]; e != nil {
		e.served++
	}
}
