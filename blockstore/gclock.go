package blockstore

import (
	"context"
	"sync"
)

// gcLock is the lock between GC and the writers that hold [Store.GCGuard].
// Guards are shared and GC is exclusive, like a sync.RWMutex, with two
// differences that matter when a peer controls how long a guard is held (a
// slow incoming store stream):
//   - a GC waiting for guards to be released does not hold new guards
//     off, so adds are never queued behind a GC that waits on a trickling
//     transfer; only a GC that runs (marks and sweeps) holds them off;
//   - GC waits with its context, and gives up when it ends.
type gcLock struct {
	mu sync.Mutex // guards the fields below
	// guards is the number of guards held.
	guards int
	// running is set while GC marks and sweeps.
	running bool
	// waiting counts the GCs waiting for guards, and guardWaiting the
	// guards waiting for a GC to end (for tests).
	waiting, guardWaiting int
	// changed is closed, and replaced, whenever guards drops or a GC ends.
	changed chan struct{}
}

func newGCLock() *gcLock { return &gcLock{changed: make(chan struct{})} }

func (l *gcLock) signalLocked() {
	close(l.changed)
	l.changed = make(chan struct{})
}

// rlock takes a guard, waiting only while a GC runs: one mark and sweep.
func (l *gcLock) rlock() {
	for {
		l.mu.Lock()
		if !l.running {
			l.guards++
			l.mu.Unlock()
			return
		}
		ch := l.changed
		l.guardWaiting++
		l.mu.Unlock()
		<-ch
		l.mu.Lock()
		l.guardWaiting--
		l.mu.Unlock()
	}
}

func (l *gcLock) runlock() {
	l.mu.Lock()
	defer l.mu.Unlock()
	l.guards--
	l.signalLocked()
}

// lock waits until no guard is held and no other GC runs, then marks GC as
// running; it returns ctx's error if ctx ends first.
func (l *gcLock) lock(ctx context.Context) error {
	l.mu.Lock()
	l.waiting++
	defer func() {
		l.mu.Lock()
		l.waiting--
		l.mu.Unlock()
	}()
	for {
		if l.guards == 0 && !l.running {
			l.running = true
			l.mu.Unlock()
			return nil
		}
		ch := l.changed
		l.mu.Unlock()
		select {
		case <-ch:
		case <-ctx.Done():
			return ctx.Err()
		}
		l.mu.Lock()
	}
}

func (l *gcLock) unlock() {
	l.mu.Lock()
	defer l.mu.Unlock()
	l.running = false
	l.signalLocked()
}

// gcWaiting reports how many GCs wait for guards (for tests).
func (l *gcLock) gcWaiting() int {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.waiting
}
