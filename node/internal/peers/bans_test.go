package peers_test

import (
	"sync"
	"testing"
	"time"

	"github.com/libp2p/go-libp2p/core/network"
	"github.com/stretchr/testify/require"

	"github.com/casd/casd/node/internal/peers"
)

type clock struct {
	mu  sync.Mutex
	now time.Time
}

func (c *clock) Now() time.Time {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.now
}

func (c *clock) advance(d time.Duration) {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.now = c.now.Add(d)
}

// TestBansGrow: a banned peer is refused in every direction until its ban
// ends; each new ban lasts twice the last, up to MaxBan; other peers pass.
func TestBansGrow(t *testing.T) {
	c := &clock{now: time.Unix(1_000_000, 0)}
	b := peers.NewBans(c.Now)
	bad, good := testPeer(1), testPeer(2)
	require.False(t, b.Banned(bad))

	want := peers.FirstBan
	for range 14 {
		require.Equal(t, want, b.Ban(bad))
		require.False(t, b.InterceptPeerDial(bad))
		require.False(t, b.InterceptAddrDial(bad, nil))
		require.False(t, b.InterceptSecured(network.DirInbound, bad, nil))
		require.True(t, b.InterceptSecured(network.DirInbound, good, nil))
		c.advance(want - time.Second)
		require.True(t, b.Banned(bad), "ban of %s ended early", want)
		c.advance(time.Second)
		require.False(t, b.Banned(bad), "ban of %s did not end", want)
		want = min(2*want, peers.MaxBan)
	}
	require.Equal(t, peers.MaxBan, want, "bans reach the cap")
}

// TestBansBounded: the table forgets the least recently banned peers past
// its bound.
func TestBansBounded(t *testing.T) {
	b := peers.NewBans(nil)
	b.Ban(testPeer(0))
	for i := 1; i <= 5000; i++ {
		b.Ban(testPeer(i))
	}
	require.False(t, b.Banned(testPeer(0)))
	require.True(t, b.Banned(testPeer(5000)))
}
