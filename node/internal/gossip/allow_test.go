package gossip

import (
	"fmt"
	"testing"
	"testing/synctest"
	"time"

	"github.com/libp2p/go-libp2p/core/peer"
	"github.com/stretchr/testify/require"
)

// TestRefillEvery: a token comes back every Interval/8, within 250ms and
// 4s.
func TestRefillEvery(t *testing.T) {
	for interval, want := range map[time.Duration]time.Duration{
		time.Second:      minRefill,
		2 * time.Second:  minRefill,
		8 * time.Second:  time.Second,
		30 * time.Second: 3750 * time.Millisecond,
		time.Hour:        maxRefill,
	} {
		require.Equal(t, want, refillEvery(interval), "interval %s", interval)
	}
}

// TestAllowanceFloodAndCadence (in a synctest bubble, so time is exact): a
// peer asking back to back gets allowBurst exchanges, then one per refill;
// a peer keeping an honest cadence (once per shortest jittered wait, or
// twice per round) is never refused. (A larger burst, or a faster refill,
// fails it.)
func TestAllowanceFloodAndCadence(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		const interval = 30 * time.Second
		a := newAllowance(refillEvery(interval))
		flood, honest, twice := peer.ID("flood"), peer.ID("honest"), peer.ID("twice")
		got := 0
		for range 100 {
			if a.allow(flood) {
				got++
			}
		}
		require.Equal(t, allowBurst, got)
		time.Sleep(refillEvery(interval) - time.Millisecond)
		require.False(t, a.allow(flood), "a token came back early")
		time.Sleep(time.Millisecond)
		require.True(t, a.allow(flood))
		require.False(t, a.allow(flood))

		shortest := time.Duration(float64(interval) * (1 - jitter))
		for i := range 200 {
			require.True(t, a.allow(honest), "honest peer refused at exchange %d", i)
			require.True(t, a.allow(twice), "peer exchanging twice a round refused at %d", i)
			require.True(t, a.allow(twice), "peer exchanging twice a round refused at %d", i)
			time.Sleep(shortest)
		}
	})
}

// TestAllowanceBounded: the table keeps at most maxAllowPeers buckets.
func TestAllowanceBounded(t *testing.T) {
	a := newAllowance(time.Second)
	for i := range maxAllowPeers + 100 {
		a.allow(peer.ID(fmt.Sprint(i)))
	}
	require.Equal(t, maxAllowPeers, a.peers.Len())
}
