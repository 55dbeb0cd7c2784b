package replicate

import (
	"context"
	"crypto/ed25519"
	"crypto/rand"
	"encoding/hex"
	"slices"
	"sync"
	"testing"
	"testing/synctest"
	"time"

	"github.com/ipfs/go-cid"
	"github.com/libp2p/go-libp2p/core/host"
	"github.com/libp2p/go-libp2p/core/peer"
	"github.com/stretchr/testify/require"

	"github.com/casd/casd/blockstore"
	"github.com/casd/casd/core"
	"github.com/casd/casd/dag"
	"github.com/casd/casd/node/internal/peers"
	"github.com/casd/casd/protocol"
)

// clock is a settable clock for the replicator.
type clock struct {
	mu sync.Mutex // guards t
	t  time.Time
}

func newClock() *clock { return &clock{t: time.Now()} }

func (c *clock) now() time.Time {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.t
}

func (c *clock) advance(d time.Duration) {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.t = c.t.Add(d)
}

// zeros is a Rand that makes every audit challenge the same block.
type zeros struct{}

func (zeros) Read(p []byte) (int, error) {
	clear(p)
	return len(p), nil
}

// checkerOpts tweak the replicator a test checks with.
type checkerOpts struct {
	clock  *clock
	lease  time.Duration
	lookup func(ctx context.Context, root cid.Cid, found func(peer.ID, bool))
	key    ed25519.PrivateKey
	hints  *peers.Hints
}

// checker returns a replicator of goal over candidates, each connected,
// whose audits always challenge the same block (zeros), with a lease of
// 1h, an audit interval of 24h, and the clock of opts.
func (o *owner) checker(t *testing.T, goal int, opts checkerOpts, candidates ...host.Host) *Replicator {
	t.Helper()
	var ids closest
	for _, h := range candidates {
		require.NoError(t, o.h.Connect(t.Context(), peer.AddrInfo{ID: h.ID(), Addrs: h.Addrs()}))
		ids = append(ids, h.ID())
	}
	if opts.key == nil {
		_, key, err := ed25519.GenerateKey(rand.Reader)
		require.NoError(t, err)
		opts.key = key
	}
	if opts.clock == nil {
		opts.clock = newClock()
	}
	if opts.hints == nil {
		opts.hints = peers.NewHints()
	}
	audit := NewAuditor(AuditorConfig{Host: o.h, Local: o.store, Strike: o.strikes.strike, Proven: o.proven, Rand: zeros{}})
	r, err := New(t.Context(), Config{
		Host: o.h, Closest: ids, Store: o.store, Owner: opts.key, Goal: goal,
		Hints: opts.hints, Holds: holds(o.h), Audit: audit, Proven: o.proven,
		Announce: func(cid.Cid) {}, Strike: o.strikes.strike, Now: opts.clock.now,
		CheckInterval: time.Hour, AuditInterval: 24 * time.Hour, Lease: cmpOr(opts.lease, time.Hour),
		Lookup: opts.lookup,
	})
	require.NoError(t, err)
	return r
}

func cmpOr(d, def time.Duration) time.Duration {
	if d == 0 {
		return def
	}
	return d
}

// holder is an honest peer whose store backend counts renewals (and may
// refuse them), and whose get backend may serve one block corrupted.
type holder struct {
	h     host.Host
	store *blockstore.Store
	back  *countingBackend
}

type countingBackend struct {
	honest
	mu      sync.Mutex // guards the fields below
	renews  int
	refuse  bool
	corrupt cid.Cid // served with a flipped bit, to tree proofs and challenges alike
}

func (b *countingBackend) Renew(ctx context.Context, owner ed25519.PublicKey, root cid.Cid, lease time.Time) error {
	b.mu.Lock()
	b.renews++
	refuse := b.refuse
	b.mu.Unlock()
	if refuse {
		return protocol.ErrNotHeld
	}
	return b.honest.Renew(ctx, owner, root, lease)
}

func (b *countingBackend) Get(ctx context.Context, c cid.Cid) ([]byte, error) {
	data, err := b.honest.Get(ctx, c)
	b.mu.Lock()
	defer b.mu.Unlock()
	if err == nil && c == b.corrupt {
		data[len(data)/2] ^= 1
	}
	return data, err
}

// HeldFor answers tree challenges for the owners whose replica pin of
// root is here, as a casd node does.
func (b *countingBackend) HeldFor(ctx context.Context, owner ed25519.PublicKey, root cid.Cid) (bool, error) {
	pins, err := b.store.PinsOf(ctx, root)
	return slices.ContainsFunc(pins, func(p blockstore.Pin) bool {
		return p.Reason == protocol.ReplicaPinPrefix+hex.EncodeToString(owner)
	}), err
}

func (b *countingBackend) renewals() int {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.renews
}

func startHolder(t *testing.T) *holder {
	t.Helper()
	h, st := newHost(t), openStore(t)
	back := &countingBackend{honest: honest{st}}
	svc := protocol.New(h, protocol.WithGetBackend(back), protocol.WithStoreBackend(back))
	svc.Start()
	t.Cleanup(func() { _ = svc.Close() })
	return &holder{h: h, store: st, back: back}
}

func hostsOf(hs ...*holder) []host.Host {
	out := make([]host.Host, len(hs))
	for i, h := range hs {
		out[i] = h.h
	}
	return out
}

func ids(hs ...*holder) []string {
	out := make([]string, len(hs))
	for i, h := range hs {
		out[i] = h.h.ID().String()
	}
	slices.Sort(out)
	return out
}

// placedOn returns the holders among hs that got root, and the others.
func placedOn(t *testing.T, root cid.Cid, got []string, hs ...*holder) (in, out []*holder) {
	t.Helper()
	for _, h := range hs {
		if slices.Contains(got, h.h.ID().String()) {
			in = append(in, h)
		} else {
			out = append(out, h)
		}
	}
	return in, out
}

// TestCheckReplacesDeadReplica: of two replicas, one goes away; one Check
// drops it, places the root on a third peer (not the live one, not the
// dead one), and leaves the root at its goal, not pending.
func TestCheckReplacesDeadReplica(t *testing.T) {
	o := newOwner(t)
	hs := []*holder{startHolder(t), startHolder(t), startHolder(t)}
	r := o.checker(t, 2, checkerOpts{}, hostsOf(hs...)...)
	got, err := r.Replicate(t.Context(), o.root)
	require.NoError(t, err)
	require.Len(t, got, 2)
	placed, spare := placedOn(t, o.root, got, hs...)
	require.NoError(t, placed[0].h.Close())

	rep, err := r.Check(t.Context(), o.root)
	require.NoError(t, err)
	require.Equal(t, []string{placed[0].h.ID().String()}, rep.Dropped)
	require.Equal(t, ids(spare...), rep.Added)
	require.Equal(t, ids(placed[1], spare[0]), rep.Live)
	require.Empty(t, r.Pending())
	require.NotContains(t, r.cfg.Hints.Of(o.root), placed[0].h.ID(), "a dead replica is no longer a hint")
	st, ok := r.Status(o.root)
	require.True(t, ok)
	require.Equal(t, rep.Live, st.Replicas)
	require.True(t, st.Verified)
}

// TestCheckShortOfGoalPending: with no peer to replace a dead replica, the
// check reports fewer live than the goal and the root becomes pending.
func TestCheckShortOfGoalPending(t *testing.T) {
	o := newOwner(t)
	hs := []*holder{startHolder(t), startHolder(t)}
	r := o.checker(t, 2, checkerOpts{}, hostsOf(hs...)...)
	got, err := r.Replicate(t.Context(), o.root)
	require.NoError(t, err)
	require.Len(t, got, 2)
	require.NoError(t, hs[0].h.Close())
	rep, err := r.Check(t.Context(), o.root)
	require.NoError(t, err)
	require.Equal(t, ids(hs[1]), rep.Live)
	require.Empty(t, rep.Added)
	require.Equal(t, []cid.Cid{o.root}, r.Pending())
}

// TestTreeAuditDropsWrongProof: a replica that serves one block of the
// tree corrupted passes the light audit (it is challenged on another
// block) but not the tree audit once that is due: it is struck, dropped,
// and replaced. Before the audit is due it is not asked.
func TestTreeAuditDropsWrongProof(t *testing.T) {
	for _, tc := range []struct {
		name string
		harm func(t *testing.T, h *holder, c cid.Cid)
	}{
		{"corrupt block", func(_ *testing.T, h *holder, c cid.Cid) {
			h.back.mu.Lock()
			h.back.corrupt = c
			h.back.mu.Unlock()
		}},
		{"deleted block", func(t *testing.T, h *holder, c cid.Cid) {
			require.NoError(t, h.store.Delete(t.Context(), c))
		}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			o := newOwner(t)
			clk := newClock()
			hs := []*holder{startHolder(t), startHolder(t)}
			r := o.checker(t, 1, checkerOpts{clock: clk}, hostsOf(hs...)...)
			got, err := r.Replicate(t.Context(), o.root)
			require.NoError(t, err)
			placed, spare := placedOn(t, o.root, got, hs...)
			require.Len(t, placed, 1)
			bad := placed[0]
			tc.harm(t, bad, otherChunk(t, r, o.root))

			rep, err := r.Check(t.Context(), o.root)
			require.NoError(t, err)
			require.Equal(t, ids(bad), rep.Live, "tree audit not due yet: the light audit passes")

			clk.advance(30 * time.Hour)
			rep, err = r.Check(t.Context(), o.root)
			require.NoError(t, err)
			require.Equal(t, ids(bad), rep.Dropped)
			require.Equal(t, ids(spare...), rep.Live)
			require.Equal(t, 1, o.strikes.of(bad.h.ID()))
			require.False(t, o.proven.Has(bad.h.ID()))

			st, ok := r.Status(o.root)
			require.True(t, ok)
			require.Len(t, st.Holders, 1)
			require.True(t, st.Holders[0].LastTreeAudit.IsZero(), "the new replica is not tree-audited yet")
			clk.advance(30 * time.Hour)
			_, err = r.Check(t.Context(), o.root)
			require.NoError(t, err)
			st, _ = r.Status(o.root)
			require.Equal(t, clk.now(), st.Holders[0].LastTreeAudit, "an honest replica passes its tree audit")
		})
	}
}

// otherChunk returns a chunk of root that the zeros auditor never
// challenges.
func otherChunk(t *testing.T, r *Replicator, root cid.Cid) cid.Cid {
	t.Helper()
	picked, err := r.cfg.Audit.pick(t.Context(), root)
	require.NoError(t, err)
	var chunks []cid.Cid
	require.NoError(t, dag.Walk(t.Context(), r.cfg.Store, root, func(c cid.Cid, kind byte) error {
		if kind == dag.KindChunk {
			chunks = append(chunks, c)
		}
		return nil
	}))
	for _, c := range chunks {
		if c != picked.Cid {
			return c
		}
	}
	t.Fatal("no other chunk")
	return cid.Undef
}

// TestLeaseRenewal: a lease granted at placement is not renewed while more
// than half of it is left, is renewed once less is, and the status shows
// the new expiry. A replica that refuses a renewal is dropped and
// replaced.
func TestLeaseRenewal(t *testing.T) {
	o := newOwner(t)
	clk := newClock()
	hs := []*holder{startHolder(t), startHolder(t), startHolder(t)}
	r := o.checker(t, 2, checkerOpts{clock: clk, lease: time.Hour}, hostsOf(hs...)...)
	got, err := r.Replicate(t.Context(), o.root)
	require.NoError(t, err)
	placed, spare := placedOn(t, o.root, got, hs...)
	require.Len(t, placed, 2)
	renewals := func() (n int) {
		for _, h := range hs {
			n += h.back.renewals()
		}
		return n
	}

	clk.advance(29 * time.Minute)
	_, err = r.Check(t.Context(), o.root)
	require.NoError(t, err)
	require.Zero(t, renewals(), "31 of 60 minutes left: not due")

	clk.advance(2 * time.Minute)
	_, err = r.Check(t.Context(), o.root)
	require.NoError(t, err)
	require.Equal(t, 2, renewals(), "29 of 60 minutes left: each replica renewed once")
	st, _ := r.Status(o.root)
	for _, h := range st.Holders {
		require.Equal(t, time.Unix(clk.now().Add(time.Hour).Unix(), 0), h.LeaseExpires, "the lease granted, to the second as on the wire")
	}

	_, err = r.Check(t.Context(), o.root)
	require.NoError(t, err)
	require.Equal(t, 2, renewals(), "just renewed: not again")

	placed[0].back.mu.Lock()
	placed[0].back.refuse = true
	placed[0].back.mu.Unlock()
	clk.advance(31 * time.Minute)
	rep, err := r.Check(t.Context(), o.root)
	require.NoError(t, err)
	require.Equal(t, ids(placed[0]), rep.Dropped, "a refused renewal drops the replica")
	require.Equal(t, ids(spare...), rep.Added)
}

// TestCheckRebuildsFromLookup: a replicator that knows nothing of a root
// (a restart) finds its replicas by the lookup, counts each only once it
// passes a challenge (a liar that claims the root is not counted), audits
// their trees and renews their leases at once (last audit and lease
// unknown), and places nothing.
func TestCheckRebuildsFromLookup(t *testing.T) {
	o := newOwner(t)
	_, key, err := ed25519.GenerateKey(rand.Reader)
	require.NoError(t, err)
	hs := []*holder{startHolder(t), startHolder(t)}
	first := o.checker(t, 2, checkerOpts{key: key}, hostsOf(hs...)...)
	got, err := first.Replicate(t.Context(), o.root)
	require.NoError(t, err)
	require.Len(t, got, 2)

	liar := startLiar(t, true, guess)
	claimants := []peer.ID{hs[0].h.ID(), hs[1].h.ID(), liar.ID()}
	lookup := func(_ context.Context, _ cid.Cid, found func(peer.ID, bool)) {
		for _, p := range claimants {
			found(p, true)
		}
	}
	clk := newClock()
	r := o.checker(t, 2, checkerOpts{key: key, lookup: lookup, clock: clk}, liar)
	rep, err := r.Check(t.Context(), o.root)
	require.NoError(t, err)
	require.Equal(t, ids(hs...), rep.Live)
	require.Empty(t, rep.Added)
	require.Empty(t, rep.Dropped, "the liar was never a replica")
	require.Equal(t, 1, o.strikes.of(liar.ID()))
	st, _ := r.Status(o.root)
	for _, h := range st.Holders {
		require.Equal(t, clk.now(), h.LastTreeAudit)
		require.Equal(t, time.Unix(clk.now().Add(time.Hour).Unix(), 0), h.LeaseExpires, "the lease granted, to the second as on the wire")
	}
	for _, h := range hs {
		require.Equal(t, 1, h.back.renewals())
	}
}

// TestCheckNotConcurrent: two checks of one root never run at once: the
// second waits until the first is over. (Each blocks in the lookup, which
// a check of a root with no known replica runs.)
func TestCheckNotConcurrent(t *testing.T) {
	o := newOwner(t)
	var (
		mu      sync.Mutex // guards entered
		entered int
	)
	synctest.Test(t, func(t *testing.T) {
		release := make(chan struct{})
		lookup := func(ctx context.Context, _ cid.Cid, _ func(peer.ID, bool)) {
			mu.Lock()
			entered++
			mu.Unlock()
			select {
			case <-release:
			case <-ctx.Done():
			}
		}
		r := o.checker(t, 1, checkerOpts{lookup: lookup})
		var wg sync.WaitGroup
		errs := make(chan error, 2)
		for range 2 {
			wg.Go(func() {
				_, err := r.Check(t.Context(), o.root)
				errs <- err
			})
		}
		synctest.Wait() // one check in the lookup, the other waiting for it
		mu.Lock()
		during := entered
		mu.Unlock()
		close(release)
		wg.Wait()
		close(errs)
		for err := range errs {
			require.NoError(t, err)
		}
		require.Equal(t, 1, during, "checks of one root at once")
		require.Equal(t, 2, entered)
	})
}

// TestPlacementSkips: placement never picks a peer it is told to skip
// (a live replica, or one that just failed).
func TestPlacementSkips(t *testing.T) {
	o := newOwner(t)
	hs := []*holder{startHolder(t), startHolder(t), startHolder(t), startHolder(t)}
	r := o.checker(t, 2, checkerOpts{}, hostsOf(hs...)...)
	skip := map[peer.ID]bool{hs[0].h.ID(): true, hs[2].h.ID(): true}
	for range 10 {
		cands, err := r.candidates(t.Context(), o.root, 2, skip)
		require.NoError(t, err)
		require.ElementsMatch(t, []peer.ID{hs[1].h.ID(), hs[3].h.ID()}, cands)
	}
	placed, err := r.place(t.Context(), o.root, 2, nil, skip)
	require.NoError(t, err)
	require.Len(t, placed, 2)
	for p := range placed {
		require.False(t, skip[p], "placed on %s", p)
	}
}

// TestCheckNotOwned: a root not pinned as the node's own file is not
// checked, and nobody is asked.
func TestCheckNotOwned(t *testing.T) {
	o := newOwner(t)
	r := o.checker(t, 1, checkerOpts{})
	require.NoError(t, o.store.Unpin(t.Context(), o.root, PinOwner))
	_, err := r.Check(t.Context(), o.root)
	require.ErrorIs(t, err, core.ErrNotMine)
}

// TestCheckAllGoesOn: a root this node cannot check (a block of its local
// copy is gone: it can judge nobody, so it drops nobody) does not stop
// the check of the others: CheckAll reports them and returns the failed
// root's error.
func TestCheckAllGoesOn(t *testing.T) {
	o := newOwner(t)
	damaged := newOwner(t) // a second file, added to the first owner's store
	require.NoError(t, dag.Walk(t.Context(), damaged.store, damaged.root, func(c cid.Cid, _ byte) error {
		data, err := damaged.store.Get(t.Context(), c)
		if err == nil {
			err = o.store.Put(t.Context(), blockstore.Block{Cid: c, Data: data})
		}
		return err
	}))
	require.NoError(t, o.store.Pin(t.Context(), damaged.root, PinOwner))
	hs := []*holder{startHolder(t), startHolder(t)}
	r := o.checker(t, 1, checkerOpts{}, hostsOf(hs...)...)
	for _, root := range []cid.Cid{o.root, damaged.root} {
		_, err := r.Replicate(t.Context(), root)
		require.NoError(t, err)
	}
	picked, err := r.cfg.Audit.pick(t.Context(), damaged.root) // the block every audit challenges
	require.NoError(t, err)
	require.NoError(t, o.store.Delete(t.Context(), picked.Cid))

	reports, err := r.CheckAll(t.Context())
	require.ErrorIs(t, err, ErrNotLocal)
	require.ErrorContains(t, err, damaged.root.String())
	require.Len(t, reports, 1)
	require.Equal(t, o.root.String(), reports[0].Cid)
	require.Len(t, reports[0].Live, 1)
	st, ok := r.Status(damaged.root)
	require.True(t, ok)
	require.Len(t, st.Replicas, 1, "a check that cannot judge drops nobody")
}
