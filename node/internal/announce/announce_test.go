package announce_test

import (
	"context"
	"fmt"
	"sync"
	"testing"
	"time"

	"github.com/ipfs/go-cid"
	kb "github.com/libp2p/go-libp2p-kbucket"
	"github.com/libp2p/go-libp2p/core/peer"
	"github.com/libp2p/go-libp2p/p2p/host/eventbus"
	pstore "github.com/libp2p/go-libp2p/p2p/host/peerstore"
	"github.com/multiformats/go-multihash"
	"github.com/stretchr/testify/require"
	"go.uber.org/goleak"

	"github.com/casd/casd/blockstore"
	"github.com/casd/casd/node/internal/announce"
)

func TestMain(m *testing.M) { goleak.VerifyTestMain(m) }

// waitFor bounds every condition the tests wait for.
const waitFor = 10 * time.Second

func testRoot(t *testing.T, i int) cid.Cid {
	t.Helper()
	mh, err := multihash.Sum([]byte(fmt.Sprint(i)), multihash.SHA2_256, -1)
	require.NoError(t, err)
	return cid.NewCidV1(cid.Raw, mh)
}

// router records what is provided; with block set, Provide waits for its
// context to end.
type router struct {
	table *kb.RoutingTable
	block bool

	mu       sync.Mutex // guards provided
	provided map[cid.Cid]int
}

func newRouter(t *testing.T, withPeer bool) *router {
	t.Helper()
	rt, err := kb.NewRoutingTable(20, kb.ConvertPeerID("self"), time.Hour, pstore.NewMetrics(), 0, nil)
	require.NoError(t, err)
	t.Cleanup(func() { require.NoError(t, rt.Close()) })
	if withPeer {
		_, err := rt.TryAddPeer(peer.ID("other"), true, false)
		require.NoError(t, err)
	}
	return &router{table: rt, provided: make(map[cid.Cid]int)}
}

func (r *router) Provide(ctx context.Context, c cid.Cid, _ bool) error {
	if r.block {
		<-ctx.Done()
		return ctx.Err()
	}
	r.mu.Lock()
	defer r.mu.Unlock()
	r.provided[c]++
	return nil
}

func (r *router) RoutingTable() *kb.RoutingTable { return r.table }

func (r *router) count(c cid.Cid) int {
	r.mu.Lock()
	defer r.mu.Unlock()
	return r.provided[c]
}

type pins []blockstore.Pin

func (p pins) Pins(context.Context) ([]blockstore.Pin, error) { return p, nil }

func newAnnouncer(t *testing.T, r *router, held pins) *announce.Announcer {
	t.Helper()
	bus := eventbus.NewBus()
	a := announce.New(announce.Config{Router: r, Pins: held, Events: bus})
	a.Start()
	t.Cleanup(func() { require.NoError(t, a.Close()) })
	return a
}

// TestProvideAnnounces: a queued root is announced by a worker.
func TestProvideAnnounces(t *testing.T) {
	r := newRouter(t, false) // no DHT peer: no sweep, only the queue
	a := newAnnouncer(t, r, nil)
	root := testRoot(t, 1)
	a.Provide(root)
	require.Eventually(t, func() bool { return r.count(root) == 1 }, waitFor, time.Millisecond)
}

// TestSweepAnnouncesEveryPin: once the DHT has a peer, every pinned root
// is announced, once however many pins name it.
func TestSweepAnnouncesEveryPin(t *testing.T) {
	r := newRouter(t, true)
	a, b := testRoot(t, 1), testRoot(t, 2)
	newAnnouncer(t, r, pins{{Root: a, Reason: "owner"}, {Root: a, Reason: "pending"}, {Root: b, Reason: "replica"}})
	require.Eventually(t, func() bool { return r.count(a) >= 1 && r.count(b) == 1 }, waitFor, time.Millisecond)
}

// TestProvideNeverBlocks: with every worker stuck and the queue full,
// Provide drops its root and returns; Close still returns, cancelling the
// announcements in flight.
func TestProvideNeverBlocks(t *testing.T) {
	r := newRouter(t, false)
	r.block = true
	a := newAnnouncer(t, r, nil)
	done := make(chan struct{})
	go func() {
		defer close(done)
		for i := range 5000 { // more than the workers and the queue hold
			a.Provide(testRoot(t, i))
		}
	}()
	select {
	case <-done:
	case <-time.After(waitFor):
		t.Fatal("Provide blocked on a full queue")
	}
	require.NoError(t, a.Close())
	a.Provide(testRoot(t, -1)) // after Close: a no-op
}
