package blockstore_test

import (
	"sync"
	"testing"
	"testing/synctest"
	"time"

	"github.com/casd/casd/blockstore"
	"github.com/casd/casd/blockstore/blockstoretest"
)

// sweeps records the sweeps of a Collector.
type sweeps struct {
	mu  sync.Mutex // guards at and res
	at  []time.Time
	res []blockstore.GCResult
}

func (s *sweeps) swept(res blockstore.GCResult, err error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	if err == nil {
		s.at = append(s.at, time.Now())
		s.res = append(s.res, res)
	}
}

func (s *sweeps) count() int {
	s.mu.Lock()
	defer s.mu.Unlock()
	return len(s.at)
}

// TestCollectorCoalescesAndLimits: a flood of requests costs one sweep
// now and one more at least Interval later, never one per request; each
// sweep removes what no pin reaches. Time is synctest's: the test asserts
// the schedule exactly, without sleeping for real.
func TestCollectorCoalescesAndLimits(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		const interval = 30 * time.Second
		s := newStore(t)
		ctx := t.Context()
		kept := blockstoretest.NewBlock([]byte("pinned"))
		blockstoretest.MustPut(t, s, kept, blockstoretest.NewBlock([]byte("junk 1")))
		if err := s.Pin(ctx, kept.Cid, "test"); err != nil {
			t.Fatal(err)
		}
		var sw sweeps
		c := blockstore.NewCollector(s, blockstore.CollectorConfig{
			Links: blockstoretest.Links, Interval: interval, Swept: sw.swept,
		})
		c.Start()
		defer c.Close()

		start := time.Now()
		for range 1000 {
			c.Request()
		}
		synctest.Wait()
		if n := sw.count(); n != 1 {
			t.Fatalf("%d sweeps after 1000 requests at once, want 1", n)
		}
		blockstoretest.MustPut(t, s, blockstoretest.NewBlock([]byte("junk 2")))
		for range 1000 {
			c.Request()
		}
		time.Sleep(interval - time.Millisecond)
		synctest.Wait()
		if n := sw.count(); n != 1 {
			t.Fatalf("%d sweeps within %v of the first, want 1", n, interval)
		}
		time.Sleep(time.Millisecond)
		synctest.Wait()
		time.Sleep(10 * interval)
		if n := sw.count(); n != 2 {
			t.Fatalf("%d sweeps for two bursts of requests, want 2", n)
		}
		if got := sw.at[1].Sub(sw.at[0]); got < interval {
			t.Fatalf("second sweep %v after the first, want at least %v", got, interval)
		}
		if !sw.at[0].Equal(start) {
			t.Fatalf("first sweep %v after the first request, want at once", sw.at[0].Sub(start))
		}
		for i, r := range sw.res {
			if r.Removed != 1 {
				t.Errorf("sweep %d removed %d blocks, want the 1 junk block", i, r.Removed)
			}
		}
		if ok, err := s.Has(ctx, kept.Cid); err != nil || !ok {
			t.Fatalf("pinned block gone (%v)", err)
		}
	})
}

// TestCollectorWaitsForGuards: a requested sweep waits for the writers
// that hold a guard, so the blocks of an add in progress survive it; Close
// ends a sweep that waits, and Request after Close does nothing.
func TestCollectorWaitsForGuards(t *testing.T) {
	s := newStore(t)
	ctx := t.Context()
	var sw sweeps
	c := blockstore.NewCollector(s, blockstore.CollectorConfig{Links: blockstoretest.Links, Swept: sw.swept})
	c.Start()

	release := s.GCGuard()
	inFlight := blockstoretest.NewBlock([]byte("added, not pinned yet"))
	blockstoretest.MustPut(t, s, inFlight)
	c.Request()
	deadline := time.Now().Add(10 * time.Second)
	for s.GCWaiting() == 0 {
		if time.Now().After(deadline) {
			t.Fatal("the requested sweep never started")
		}
		time.Sleep(time.Millisecond)
	}
	if err := s.Pin(ctx, inFlight.Cid, "test"); err != nil {
		t.Fatal(err)
	}
	release()
	for sw.count() == 0 {
		if time.Now().After(deadline) {
			t.Fatal("the sweep did not run once the guard was released")
		}
		time.Sleep(time.Millisecond)
	}
	if ok, err := s.Has(ctx, inFlight.Cid); err != nil || !ok {
		t.Fatalf("the block added under a guard is gone (%v)", err)
	}

	release = s.GCGuard()
	defer release()
	blockstoretest.MustPut(t, s, blockstoretest.NewBlock([]byte("junk")))
	c.Request() // served after DefaultCollectInterval: Close must not wait it out
	if err := c.Close(); err != nil {
		t.Fatal(err)
	}
	c.Request()
	if n := sw.count(); n != 1 {
		t.Fatalf("%d sweeps, want 1", n)
	}
}
