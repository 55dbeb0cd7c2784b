package fetch_test

import (
	"context"
	"testing"
	"testing/synctest"

	"github.com/libp2p/go-libp2p/core/peer"
	"github.com/stretchr/testify/require"
	"go.uber.org/goleak"

	"github.com/casd/casd/node/internal/fetch"
)

func TestMain(m *testing.M) { goleak.VerifyTestMain(m) }

// TestSourcesRoundRobin: Next hands the peers out in turn, skipping the
// dropped ones and those the caller tried.
func TestSourcesRoundRobin(t *testing.T) {
	s := fetch.NewSources()
	a, b, c := peer.ID("a"), peer.ID("b"), peer.ID("c")
	s.Add(a, true)
	s.Add(b, false)
	s.Add(c, true)
	s.Add(a, false) // once only
	s.Seal()
	var got []peer.ID
	for range 4 {
		p, ok := s.Next(t.Context(), nil)
		require.True(t, ok)
		got = append(got, p)
	}
	require.Equal(t, []peer.ID{a, b, c, a}, got)

	s.Drop(b)
	require.True(t, s.Dropped(b))
	p, ok := s.Next(t.Context(), map[peer.ID]bool{c: true})
	require.True(t, ok)
	require.Equal(t, a, p, "b is dropped and c skipped")
	_, ok = s.Next(t.Context(), map[peer.ID]bool{a: true, c: true})
	require.False(t, ok, "a sealed set with nothing left")

	all, confirmed := s.All(t.Context())
	require.Equal(t, []peer.ID{a, b, c}, all)
	require.Equal(t, map[peer.ID]bool{a: true, c: true}, confirmed)
}

// TestSourcesParkedLastResort: a parked peer (it missed a ping) is handed
// out only when no other peer is left, without waiting for the lookup to
// end, and like the others again once unparked.
func TestSourcesParkedLastResort(t *testing.T) {
	s := fetch.NewSources()
	a, b := peer.ID("a"), peer.ID("b")
	s.Add(a, true)
	s.Add(b, true)
	s.Park(a)
	require.True(t, s.Parked(a))
	for range 3 {
		p, ok := s.Next(t.Context(), nil)
		require.True(t, ok)
		require.Equal(t, b, p, "a parked peer before a live one")
	}
	p, ok := s.Next(t.Context(), map[peer.ID]bool{b: true}) // the set is open
	require.True(t, ok)
	require.Equal(t, a, p, "the parked peer as a last resort")
	s.Drop(a)
	ctx, cancel := context.WithCancel(t.Context())
	cancel()
	_, ok = s.Next(ctx, map[peer.ID]bool{b: true})
	require.False(t, ok, "a dropped peer is never handed out, parked or not")

	c := peer.ID("c")
	s.Add(c, true)
	s.Park(c)
	s.Unpark(c)
	require.False(t, s.Parked(c))
	got := map[peer.ID]bool{}
	for range 2 {
		p, ok := s.Next(t.Context(), nil)
		require.True(t, ok)
		got[p] = true
	}
	require.Equal(t, map[peer.ID]bool{b: true, c: true}, got, "an unparked peer takes its turn")
}

// TestSourcesNextWaits: Next waits for a peer while the set is open, wakes
// when one is added, and returns false when the set is sealed empty or
// ctx ends.
func TestSourcesNextWaits(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		s := fetch.NewSources()
		got := make(chan peer.ID, 1)
		go func() {
			p, _ := s.Next(context.Background(), nil)
			got <- p
		}()
		synctest.Wait() // Next is blocked
		require.Empty(t, got, "Next returned from an empty open set")
		s.Add("late", false)
		require.Equal(t, peer.ID("late"), <-got)

		empty := fetch.NewSources()
		done := make(chan bool, 1)
		go func() {
			_, ok := empty.Next(context.Background(), nil)
			done <- ok
		}()
		synctest.Wait()
		require.Empty(t, done)
		empty.Seal()
		require.False(t, <-done)

		ctx, cancel := context.WithCancel(t.Context())
		open := fetch.NewSources()
		go func() {
			_, ok := open.Next(ctx, nil)
			done <- ok
		}()
		synctest.Wait()
		require.Empty(t, done)
		cancel()
		require.False(t, <-done)
	})
}

// TestSourcesAllWaitsForSeal: All returns only once the lookup is over.
func TestSourcesAllWaitsForSeal(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		s := fetch.NewSources()
		done := make(chan []peer.ID, 1)
		go func() {
			all, _ := s.All(context.Background())
			done <- all
		}()
		s.Add("x", true)
		synctest.Wait()
		require.Empty(t, done, "All returned before Seal")
		s.Seal()
		require.Equal(t, []peer.ID{"x"}, <-done)
	})
}
