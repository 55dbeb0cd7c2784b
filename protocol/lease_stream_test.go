package protocol_test

import (
	"context"
	"crypto/ed25519"
	"errors"
	"strings"
	"testing"
	"time"

	"github.com/libp2p/go-libp2p/core/host"
	"github.com/libp2p/go-libp2p/core/network"

	"github.com/casd/casd/blockstore"
	"github.com/casd/casd/protocol"
	"github.com/casd/casd/protocol/pb"
)

// leaseFixture is a server holding nothing yet, and a client that stores
// on it for owner.
type leaseFixture struct {
	client, server host.Host
	backend        *memBackend
	strikes        *strikes
	owner          ed25519.PrivateKey
	tree           []blockstore.Block
}

func newLeaseFixture(t *testing.T) *leaseFixture {
	t.Helper()
	f := &leaseFixture{backend: newMemBackend(), owner: newKey(t)}
	f.client, f.server = hostPair(t)
	_, f.strikes = startService(t, f.server, f.backend)
	f.tree = storeTree(t, f.backend)
	return f
}

// store stores the whole tree with opts and returns the pin it made.
func (f *leaseFixture) store(t *testing.T, opts ...protocol.StoreOption) (memPin, error) {
	t.Helper()
	res, err := protocol.Store(t.Context(), f.client, f.server.ID(), f.owner, f.tree[0].Cid,
		seqOf(f.tree), uint64(len(f.tree)), totalBytes(f.tree), opts...)
	if err != nil {
		return memPin{}, err
	}
	p, ok := f.backend.pin(f.tree[0].Cid)
	if !res.Complete || !ok {
		t.Fatalf("store %+v, pinned %v", res, ok)
	}
	return p, nil
}

// near fails unless got is within a few seconds of want (clocks move
// while the test runs; unix seconds truncate).
func near(t *testing.T, what string, got, want time.Time) {
	t.Helper()
	if d := got.Sub(want); d < -5*time.Second || d > 5*time.Second {
		t.Fatalf("%s %s, want about %s", what, got.UTC(), want.UTC())
	}
}

// TestOfferLeaseReachesPin: the lease an offer states reaches
// StoreBackend.Pin: none -> DefaultLease, one beyond MaxLease -> clamped,
// one in range as stated, one already past -> refused without a strike.
func TestOfferLeaseReachesPin(t *testing.T) {
	now := time.Now()
	stated := now.Add(72 * time.Hour).Truncate(time.Second)
	cases := []struct {
		name string
		opts []protocol.StoreOption
		want time.Time
	}{
		{"none", nil, now.Add(protocol.DefaultLease)},
		{"stated", []protocol.StoreOption{protocol.WithLease(stated)}, stated},
		{"too long", []protocol.StoreOption{protocol.WithLease(now.Add(10 * protocol.MaxLease))}, now.Add(protocol.MaxLease)},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			f := newLeaseFixture(t)
			p, err := f.store(t, tc.opts...)
			if err != nil {
				t.Fatal(err)
			}
			near(t, "lease", p.lease, tc.want)
			if !p.owner.Equal(f.owner.Public()) {
				t.Fatalf("pinned for %x", p.owner)
			}
		})
	}
	t.Run("past", func(t *testing.T) {
		f := newLeaseFixture(t)
		_, err := f.store(t, protocol.WithLease(now.Add(-time.Minute)))
		var rerr *protocol.RemoteError
		if !errors.As(err, &rerr) || !strings.Contains(rerr.Reason, "lease expired") {
			t.Fatalf("err = %v, want a refusal for an expired lease", err)
		}
		if f.backend.count() != 0 || f.backend.outstanding() != 0 {
			t.Fatalf("backend changed by a refused offer")
		}
		if _, ok := f.backend.pin(f.tree[0].Cid); ok {
			t.Fatal("pinned after a refused offer")
		}
		if got := f.strikes.of(f.client.ID()); len(got) != 0 {
			t.Fatalf("struck for a past lease: %q", got)
		}
	})
}

// TestRenew: a renewal extends the holder's lease (clamped to MaxLease),
// one for a root not held is refused with the backend's reason, and one
// with an expiry already past is refused; none is a strike.
func TestRenew(t *testing.T) {
	f := newLeaseFixture(t)
	root := f.tree[0].Cid
	first := time.Now().Add(48 * time.Hour).Truncate(time.Second)
	if _, err := f.store(t, protocol.WithLease(first)); err != nil {
		t.Fatal(err)
	}
	later := first.Add(24 * time.Hour)
	if err := protocol.Renew(t.Context(), f.client, f.server.ID(), f.owner, root, later); err != nil {
		t.Fatal(err)
	}
	p, _ := f.backend.pin(root)
	near(t, "renewed lease", p.lease, later)

	if err := protocol.Renew(t.Context(), f.client, f.server.ID(), f.owner, root, time.Now().Add(5*protocol.MaxLease)); err != nil {
		t.Fatal(err)
	}
	p, _ = f.backend.pin(root)
	near(t, "clamped lease", p.lease, time.Now().Add(protocol.MaxLease))

	refused := map[string]error{
		"not held": protocol.Renew(t.Context(), f.client, f.server.ID(), f.owner, f.tree[1].Cid, later),
		"other owner": protocol.Renew(t.Context(), f.client, f.server.ID(), newKey(t), root,
			time.Now().Add(protocol.MaxLease+time.Hour)),
		"past": protocol.Renew(t.Context(), f.client, f.server.ID(), f.owner, root, time.Now().Add(-time.Minute)),
	}
	want := map[string]string{"not held": "not held", "other owner": "not held", "past": "expired"}
	for name, err := range refused {
		var rerr *protocol.RemoteError
		if !errors.As(err, &rerr) || !strings.Contains(rerr.Reason, want[name]) {
			t.Errorf("%s: %v, want a refusal containing %q", name, err, want[name])
		}
	}
	p, _ = f.backend.pin(root)
	near(t, "lease after refusals", p.lease, time.Now().Add(protocol.MaxLease))
	if got := f.strikes.of(f.client.ID()); len(got) != 0 {
		t.Fatalf("struck for genuine requests: %q", got)
	}
}

// TestRemove: a removal drops the owner's replica; removing it again, or
// a root never held, is accepted; another owner's removal leaves it.
func TestRemove(t *testing.T) {
	f := newLeaseFixture(t)
	root := f.tree[0].Cid
	if _, err := f.store(t); err != nil {
		t.Fatal(err)
	}
	if err := protocol.Remove(t.Context(), f.client, f.server.ID(), newKey(t), root); err != nil {
		t.Fatal(err)
	}
	if _, ok := f.backend.pin(root); !ok {
		t.Fatal("another owner's removal dropped the replica")
	}
	for range 2 {
		if err := protocol.Remove(t.Context(), f.client, f.server.ID(), f.owner, root); err != nil {
			t.Fatal(err)
		}
		if _, ok := f.backend.pin(root); ok {
			t.Fatal("still pinned after Remove")
		}
	}
	if got := f.strikes.of(f.client.ID()); len(got) != 0 {
		t.Fatalf("struck for genuine removals: %q", got)
	}
}

// TestForgedLeaseAndRemove: a Lease or Remove whose signature does not
// verify for the receiver is refused and struck, and changes nothing; a
// Remove signed outside the clock window is refused, not struck.
func TestForgedLeaseAndRemove(t *testing.T) {
	cases := []struct {
		name       string
		msg        func(f *leaseFixture) pb.Message
		wantReason string
		wantStrike bool
	}{
		{"lease by another key", func(f *leaseFixture) pb.Message {
			l := &pb.Lease{Root: f.tree[0].Cid, Expiry: time.Now().Add(time.Hour).Unix()}
			protocol.SignLease(newKey(t), f.server.ID(), l)
			l.Owner = f.owner.Public().(ed25519.PublicKey)
			return l
		}, "signature", true},
		{"lease for another receiver", func(f *leaseFixture) pb.Message {
			l := &pb.Lease{Root: f.tree[0].Cid, Expiry: time.Now().Add(time.Hour).Unix()}
			protocol.SignLease(f.owner, f.client.ID(), l)
			return l
		}, "signature", true},
		{"remove by another key", func(f *leaseFixture) pb.Message {
			r := &pb.Remove{Root: f.tree[0].Cid, Time: time.Now().Unix()}
			protocol.SignRemove(newKey(t), f.server.ID(), r)
			r.Owner = f.owner.Public().(ed25519.PublicKey)
			return r
		}, "signature", true},
		{"remove signed two hours ago", func(f *leaseFixture) pb.Message {
			r := &pb.Remove{Root: f.tree[0].Cid, Time: time.Now().Add(-2 * time.Hour).Unix()}
			protocol.SignRemove(f.owner, f.server.ID(), r)
			return r
		}, "signed time outside", false},
		{"remove signed two hours ahead", func(f *leaseFixture) pb.Message {
			r := &pb.Remove{Root: f.tree[0].Cid, Time: time.Now().Add(2 * time.Hour).Unix()}
			protocol.SignRemove(f.owner, f.server.ID(), r)
			return r
		}, "signed time outside", false},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			f := newLeaseFixture(t)
			before, err := f.store(t, protocol.WithLease(time.Now().Add(time.Hour)))
			if err != nil {
				t.Fatal(err)
			}
			reply := rawRequest(t, f.client, f.server, tc.msg(f))
			if reply.Accept || !strings.Contains(reply.Reason, tc.wantReason) {
				t.Fatalf("reply %+v, want a refusal containing %q", reply, tc.wantReason)
			}
			if after, ok := f.backend.pin(f.tree[0].Cid); !ok || !after.lease.Equal(before.lease) {
				t.Fatalf("pin changed: %+v %v, was %+v", after, ok, before)
			}
			if got := f.strikes.of(f.client.ID()); (len(got) > 0) != tc.wantStrike {
				t.Fatalf("strikes %q, want strike %v", got, tc.wantStrike)
			}
		})
	}
}

// rawRequest sends m as the first message of a store stream and returns
// the server's reply.
func rawRequest(t *testing.T, client, server host.Host, m pb.Message) *pb.StoreReply {
	t.Helper()
	r := openRaw(t, client, server.ID(), protocol.StoreID)
	if err := r.send(m); err != nil {
		t.Fatal(err)
	}
	got, err := r.recv()
	if err != nil {
		t.Fatal(err)
	}
	reply, ok := got.(*pb.StoreReply)
	if !ok {
		t.Fatalf("got %T, want StoreReply", got)
	}
	return reply
}

// TestRenewCancelled: Renew gives up with its context on a server that
// never answers (the stream is reset, no goroutine left behind).
func TestRenewCancelled(t *testing.T) {
	client, server := hostPair(t)
	server.SetStreamHandler(protocol.StoreID, func(s network.Stream) {
		<-t.Context().Done()
		_ = s.Reset()
	})
	ctx, cancel := context.WithTimeout(t.Context(), 200*time.Millisecond)
	defer cancel()
	root := makeBlock(t, []byte("root")).Cid
	err := protocol.Renew(ctx, client, server.ID(), newKey(t), root, time.Now().Add(time.Hour))
	if !errors.Is(err, context.DeadlineExceeded) {
		t.Fatalf("err = %v, want DeadlineExceeded", err)
	}
}
