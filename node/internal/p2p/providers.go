package p2p

import (
	"context"
	"encoding/base32"
	"fmt"
	"strings"
	"sync"
	"sync/atomic"

	lru "github.com/hashicorp/golang-lru/simplelru"
	ds "github.com/ipfs/go-datastore"
	dsq "github.com/ipfs/go-datastore/query"
	"github.com/libp2p/go-libp2p-kad-dht/records"
	"github.com/libp2p/go-libp2p/core/peer"
)

// Default bounds of the provider records a node keeps for other peers. A
// record costs about 200 bytes, so the total bounds them to some 50 MiB.
// The per-peer bound is above what an honest peer announces to one node
// unless it holds more than 32,768 roots.
const (
	DefaultMaxProvidersPerPeer = 1 << 15
	DefaultMaxProviders        = 1 << 18
)

// ProviderLimits bound the provider records that the DHT keeps for other
// peers; the node's own records are not counted. A record beyond a bound
// is dropped (the peer's ADD_PROVIDER succeeds, so it learns nothing);
// records already held are refreshed whatever the counts.
type ProviderLimits struct {
	PerPeer int // records of one providing peer; 0 means DefaultMaxProvidersPerPeer
	Total   int // records of all other peers; 0 means DefaultMaxProviders
}

// b32 is the encoding of the key and peer parts of kad-dht's provider
// record keys (go-base32's RawStdEncoding).
var b32 = base32.StdEncoding.WithPadding(base32.NoPadding)

// providerStore is the datastore under kad-dht's provider manager: an
// in-memory map, indexed by record key, that counts records per providing
// peer and refuses those past its [ProviderLimits]. kad-dht v0.42 takes no
// custom provider store, only its datastore (dht.ProviderDatastore); with
// the manager's cache turned off (noCache), this datastore holds every
// record the manager serves, apart from its write buffer (at most 320
// records, flushed here every 256).
//
// Keys are "/providers/<b32 key>/<b32 peer ID>"; values are the record's
// time, which the manager encodes and reads.
type providerStore struct {
	limits   ProviderLimits
	selfPart string // b32 of our own peer ID: our records are not limited

	mu sync.Mutex // guards the fields below
	// recs maps a key part to its records: peer part to value.
	recs    map[string]map[string][]byte
	perPeer map[string]int // records per peer part, ours excluded
	total   int            // records of other peers
	dropped atomic.Int64   // records refused, for tests and logs
}

var _ ds.Batching = (*providerStore)(nil)

func newProviderStore(self peer.ID, l ProviderLimits) *providerStore {
	if l.PerPeer <= 0 {
		l.PerPeer = DefaultMaxProvidersPerPeer
	}
	if l.Total <= 0 {
		l.Total = DefaultMaxProviders
	}
	return &providerStore{
		limits:   l,
		selfPart: b32.EncodeToString([]byte(self)),
		recs:     make(map[string]map[string][]byte),
		perPeer:  make(map[string]int),
	}
}

// splitKey splits a provider record key into its key and peer parts.
func splitKey(k ds.Key) (key, peerPart string, err error) {
	rest, ok := strings.CutPrefix(k.String(), records.ProvidersKeyPrefix)
	key, peerPart, ok2 := strings.Cut(rest, "/")
	if !ok || !ok2 || key == "" || peerPart == "" || strings.Contains(peerPart, "/") {
		return "", "", fmt.Errorf("provider store: %q is not a provider record key", k)
	}
	return key, peerPart, nil
}

// Put stores a record, or drops it if its peer or the store is at its
// bound. Dropping is not an error: the manager would retry its whole
// write batch, other peers' records included.
func (s *providerStore) Put(_ context.Context, k ds.Key, value []byte) error {
	key, p, err := splitKey(k)
	if err != nil {
		return err
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	set := s.recs[key]
	if _, ok := set[p]; ok {
		set[p] = value
		return nil
	}
	if p != s.selfPart {
		if s.perPeer[p] >= s.limits.PerPeer || s.total >= s.limits.Total {
			if s.dropped.Add(1)%1024 == 1 {
				log.Warnw("dropping provider records past their bound", "dropped", s.dropped.Load(),
					"peer records", s.perPeer[p], "per peer", s.limits.PerPeer, "total", s.total, "max", s.limits.Total)
			}
			return nil
		}
		s.perPeer[p]++
		s.total++
	}
	if set == nil {
		set = make(map[string][]byte)
		s.recs[key] = set
	}
	set[p] = value
	return nil
}

// Delete removes a record; an absent one is no error.
func (s *providerStore) Delete(_ context.Context, k ds.Key) error {
	key, p, err := splitKey(k)
	if err != nil {
		return nil // nothing of that name is stored
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	set := s.recs[key]
	if _, ok := set[p]; !ok {
		return nil
	}
	delete(set, p)
	if len(set) == 0 {
		delete(s.recs, key)
	}
	if p != s.selfPart {
		if s.perPeer[p]--; s.perPeer[p] == 0 {
			delete(s.perPeer, p)
		}
		s.total--
	}
	return nil
}

// Get returns a record's value.
func (s *providerStore) Get(_ context.Context, k ds.Key) ([]byte, error) {
	key, p, err := splitKey(k)
	if err != nil {
		return nil, ds.ErrNotFound
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	v, ok := s.recs[key][p]
	if !ok {
		return nil, ds.ErrNotFound
	}
	return v, nil
}

// Has reports whether a record is stored.
func (s *providerStore) Has(ctx context.Context, k ds.Key) (bool, error) {
	_, err := s.Get(ctx, k)
	if err == ds.ErrNotFound {
		return false, nil
	}
	return err == nil, err
}

// GetSize returns the size of a record's value.
func (s *providerStore) GetSize(ctx context.Context, k ds.Key) (int, error) {
	v, err := s.Get(ctx, k)
	if err != nil {
		return -1, err
	}
	return len(v), nil
}

// Query answers the manager's two queries from the index: the records of
// one key (prefix "/providers/<key>") without scanning the others, and all
// records (its expiry sweep). Other query parts are applied naively.
func (s *providerStore) Query(_ context.Context, q dsq.Query) (dsq.Results, error) {
	prefix := ds.NewKey(q.Prefix).String()
	var entries []dsq.Entry
	s.mu.Lock()
	if key, ok := strings.CutPrefix(prefix, records.ProvidersKeyPrefix); ok && key != "" && !strings.Contains(key, "/") {
		entries = s.appendEntriesLocked(entries, key)
	} else {
		for key := range s.recs {
			entries = s.appendEntriesLocked(entries, key)
		}
	}
	s.mu.Unlock()
	return dsq.NaiveQueryApply(q, dsq.ResultsWithEntries(q, entries)), nil
}

func (s *providerStore) appendEntriesLocked(entries []dsq.Entry, key string) []dsq.Entry {
	for p, v := range s.recs[key] {
		entries = append(entries, dsq.Entry{Key: records.ProvidersKeyPrefix + key + "/" + p, Value: v, Size: len(v)})
	}
	return entries
}

// Sync does nothing: the store is in memory.
func (s *providerStore) Sync(context.Context, ds.Key) error { return nil }

// Batch returns a batch applied by Put and Delete at Commit.
func (s *providerStore) Batch(context.Context) (ds.Batch, error) { return ds.NewBasicBatch(s), nil }

// Close does nothing: the records live as long as the store.
func (s *providerStore) Close() error { return nil }

// counts returns the number of records of peer p, and of all other peers.
func (s *providerStore) counts(p peer.ID) (ofPeer, total int) {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.perPeer[b32.EncodeToString([]byte(p))], s.total
}

// noCache is the provider manager's cache, turned off: the manager caches
// the records of 256 keys and adds to a cached key's set without asking
// its datastore, which would let records past the bounds in.
type noCache struct{}

var _ lru.LRUCache = noCache{}

func (noCache) Add(_, _ any) bool              { return false }
func (noCache) Get(any) (any, bool)            { return nil, false }
func (noCache) Contains(any) bool              { return false }
func (noCache) Peek(any) (any, bool)           { return nil, false }
func (noCache) Remove(any) bool                { return false }
func (noCache) RemoveOldest() (any, any, bool) { return nil, nil, false }
func (noCache) GetOldest() (any, any, bool)    { return nil, nil, false }
func (noCache) Keys() []any                    { return nil }
func (noCache) Len() int                       { return 0 }
func (noCache) Purge()                         {}
func (noCache) Resize(int) int                 { return 0 }
