package p2p

import (
	"fmt"
	"slices"
	"strings"
	"testing"
	"time"

	ds "github.com/ipfs/go-datastore"
	dsq "github.com/ipfs/go-datastore/query"
	pb "github.com/libp2p/go-libp2p-kad-dht/pb"
	"github.com/libp2p/go-libp2p-kad-dht/records"
	"github.com/libp2p/go-libp2p/core/peer"
	"github.com/libp2p/go-libp2p/p2p/host/peerstore/pstoremem"
	"github.com/libp2p/go-msgio"
	"github.com/stretchr/testify/require"
	"google.golang.org/protobuf/proto"
)

func newPeerID(t *testing.T) peer.ID {
	t.Helper()
	id, err := peer.IDFromPrivateKey(newKey(t))
	require.NoError(t, err)
	return id
}

// TestProviderStoreLimits: behind kad-dht's own provider manager, a peer
// keeps at most PerPeer records and other peers Total in all, records
// already held are refreshed, a deleted record makes room, and the node's
// own records are not limited.
func TestProviderStoreLimits(t *testing.T) {
	ctx := t.Context()
	self, a, b := newPeerID(t), newPeerID(t), newPeerID(t)
	ps := newProviderStore(self, ProviderLimits{PerPeer: 3, Total: 5})
	pstore, err := pstoremem.NewPeerstore()
	require.NoError(t, err)
	t.Cleanup(func() { require.NoError(t, pstore.Close()) })
	pm, err := records.NewProviderManager(self, pstore, ps, records.Cache(noCache{}))
	require.NoError(t, err)
	for i := range 20 {
		k := testCID(t, fmt.Sprint("key ", i)).Hash()
		require.NoError(t, pm.AddProvider(ctx, k, peer.AddrInfo{ID: self}))
		if i < 10 {
			require.NoError(t, pm.AddProvider(ctx, k, peer.AddrInfo{ID: a}))
		}
	}
	require.NoError(t, pm.Close()) // flushes its write buffer here
	ofA, total := ps.counts(a)
	require.Equal(t, 3, ofA, "records of a")
	require.Equal(t, 3, total)
	require.EqualValues(t, 7, ps.dropped.Load())
	res, err := ps.Query(ctx, dsq.Query{Prefix: records.ProvidersKeyPrefix})
	require.NoError(t, err)
	all, err := res.Rest()
	require.NoError(t, err)
	require.Len(t, all, 3+20, "records held, ours included")

	// b reaches the total; a refresh of a's records still lands; a
	// deleted record of a makes room for b.
	aPart := "/" + b32.EncodeToString([]byte(a))
	var aKeys []string
	for _, e := range all {
		if strings.HasSuffix(e.Key, aPart) {
			aKeys = append(aKeys, e.Key)
		}
	}
	require.Len(t, aKeys, 3)
	bKey := func(i int) ds.Key {
		return ds.NewKey(records.ProvidersKeyPrefix + b32.EncodeToString(testCID(t, fmt.Sprint("b ", i)).Hash()) +
			"/" + b32.EncodeToString([]byte(b)))
	}
	for i := range 3 {
		require.NoError(t, ps.Put(ctx, bKey(i), []byte{1}))
	}
	ofB, total := ps.counts(b)
	require.Equal(t, 2, ofB, "records of b past the total")
	require.Equal(t, 5, total)
	require.NoError(t, ps.Put(ctx, ds.NewKey(aKeys[0]), []byte{2}))
	v, err := ps.Get(ctx, ds.NewKey(aKeys[0]))
	require.NoError(t, err)
	require.Equal(t, []byte{2}, v, "a refresh was refused")
	require.NoError(t, ps.Delete(ctx, ds.NewKey(aKeys[1])))
	require.NoError(t, ps.Put(ctx, bKey(2), []byte{1}))
	ofA, _ = ps.counts(a)
	ofB, total = ps.counts(b)
	require.Equal(t, []int{2, 3, 5}, []int{ofA, ofB, total})

	// The records of one key, without the others'.
	key, _, err := splitKey(ds.NewKey(aKeys[0]))
	require.NoError(t, err)
	res, err = ps.Query(ctx, dsq.Query{Prefix: records.ProvidersKeyPrefix + key})
	require.NoError(t, err)
	one, err := res.Rest()
	require.NoError(t, err)
	require.Len(t, one, 2, "a key provided by a and by self")
}

// TestDHTProviderFlood (hostile peers, point 8): a peer that sends 512
// ADD_PROVIDER records to a casd DHT over one stream keeps PerPeer of
// them; the DHT serves no more for it, and an honest peer's record
// still counts.
func TestDHTProviderFlood(t *testing.T) {
	const perPeer, flood = 8, 512 // two full write buffers of the manager
	ctx := t.Context()
	victimHost := newTestHost(t, HostOptions{})
	ps := newProviderStore(victimHost.ID(), ProviderLimits{PerPeer: perPeer})
	victim, err := NewDHT(ctx, victimHost, nil, withProviderStore(ps))
	require.NoError(t, err)
	t.Cleanup(func() { require.NoError(t, victim.Close()) })

	attacker := newTestHost(t, HostOptions{})
	require.NoError(t, attacker.Connect(ctx, addrInfo(victimHost)))
	str, err := attacker.NewStream(ctx, victimHost.ID(), DHTProtocol)
	require.NoError(t, err)
	w := msgio.NewVarintWriter(str)
	keys := make([][]byte, flood)
	start := time.Now()
	for i := range keys {
		keys[i] = testCID(t, fmt.Sprint("flood ", i)).Hash()
		m := pb.NewMessage(pb.Message_ADD_PROVIDER, keys[i], 0)
		m.ProviderPeers = pb.RawPeerInfosToPBPeers([]peer.AddrInfo{addrInfo(attacker)})
		data, err := proto.Marshal(m)
		require.NoError(t, err)
		require.NoError(t, w.WriteMsg(data))
	}
	require.Eventually(t, func() bool { return ps.dropped.Load() == flood-perPeer }, waitFor, 10*time.Millisecond,
		"the victim processed %d of the %d records", ps.dropped.Load()+perPeer, flood)
	t.Logf("%d records sent, %d kept, in %v", flood, perPeer, time.Since(start))
	_ = str.Close()
	ofAttacker, total := ps.counts(attacker.ID())
	require.Equal(t, perPeer, ofAttacker)
	require.Equal(t, perPeer, total)
	served := 0
	for _, k := range keys {
		provs, err := victim.ProviderStore().GetProviders(ctx, k)
		require.NoError(t, err)
		served += len(provs)
	}
	require.Equal(t, perPeer, served, "records the victim's DHT serves for the attacker")

	honestHost := newTestHost(t, HostOptions{})
	honest := newTestDHT(t, honestHost, []peer.AddrInfo{addrInfo(victimHost)})
	require.Eventually(t, func() bool { return honest.RoutingTable().Size() > 0 }, waitFor, 10*time.Millisecond)
	c := testCID(t, "an honest root")
	require.NoError(t, honest.Provide(ctx, c, true))
	require.Eventually(t, func() bool {
		provs, err := victim.ProviderStore().GetProviders(ctx, c.Hash())
		return err == nil && slices.Equal([]peer.ID{honestHost.ID()}, idsOf(provs))
	}, waitFor, 10*time.Millisecond, "the honest peer's record is not served")
}

func idsOf(ais []peer.AddrInfo) []peer.ID {
	ids := make([]peer.ID, len(ais))
	for i, ai := range ais {
		ids[i] = ai.ID
	}
	return ids
}

// TestProviderCacheOff: kad-dht's manager adds the records of a key it
// has cached to its cache without asking the datastore; with its cache
// off, a key that was read and then flooded by 511 Sybil peers is served
// with at most Total providers.
func TestProviderCacheOff(t *testing.T) {
	const total, sybils = 5, 511 // with our record: two full write buffers, flushed
	ctx := t.Context()
	self := newPeerID(t)
	ps := newProviderStore(self, ProviderLimits{Total: total})
	pstore, err := pstoremem.NewPeerstore()
	require.NoError(t, err)
	t.Cleanup(func() { require.NoError(t, pstore.Close()) })
	pm, err := records.NewProviderManager(self, pstore, ps, records.Cache(noCache{}))
	require.NoError(t, err)
	t.Cleanup(func() { require.NoError(t, pm.Close()) })

	k := testCID(t, "a popular key").Hash()
	require.NoError(t, pm.AddProvider(ctx, k, peer.AddrInfo{ID: self}))
	provs, err := pm.GetProviders(ctx, k)
	require.NoError(t, err)
	require.Len(t, provs, 1)
	for range sybils {
		require.NoError(t, pm.AddProvider(ctx, k, peer.AddrInfo{ID: newPeerID(t)}))
	}
	provs, err = pm.GetProviders(ctx, k)
	require.NoError(t, err)
	require.Len(t, provs, 1+total, "providers served for a flooded key")
}
