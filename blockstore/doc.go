// Package blockstore stores content-addressed blocks as flat files keyed by
// CID, records pins in a crash-safe metadata database, and garbage-collects,
// verifies and accounts for what it holds.
//
// A [Store] is opened on a blocks directory and a metadata file:
//
//	s, err := blockstore.Open(filepath.Join(repo, "blocks"), filepath.Join(repo, "meta.db"))
//	if err != nil { ... }
//	defer s.Close()
//	err = s.PutMany(ctx, blocks)
//
// # Blocks
//
// A [Block] is at most [MaxBlockSize] bytes, named by its CID. The store trusts
// the CID it is given on [Store.Put]: callers that hold untrusted bytes (from a
// peer) check them first with [VerifyBlock]. [Store.Get] does not rehash;
// [Store.Verify] rehashes everything.
//
// On disk a block lives at BLOCKSDIR/<shard>/<cid>, where <cid> is the CIDv1
// base32 string (a CIDv0 is stored under its CIDv1 form) and <shard> is its
// next-to-last two characters, as go-ds-flatfs "next-to-last/2" does, which
// spreads blocks over at most 1024 directories. A write goes to a temporary
// file ".tmp-*" in the shard directory, is fsynced, renamed to its final name,
// and the shard directory is fsynced, so a crash at any point leaves either
// no block or the whole block. [Open] removes temporary files a crash left.
//
// # Pins
//
// A [Pin] is a (root, reason) pair with its creation time; one root may be
// pinned for several reasons ("owner", "replica:<owner-key>"). Pins live in a
// bbolt database (go.etcd.io/bbolt), whose commits are fsynced. Only one
// process may open it; a second [Open] fails fast with [ErrLocked].
// [Store.PinCount] counts the pins of one reason from a counter kept in
// memory, so a cap on one owner's replica pins costs no scan. A pin may
// carry an expiry (a replica's lease): [Store.PinUntil] and
// [Store.RenewPin] extend it, never shorten it, and [Store.UnpinExpired]
// drops the pins whose expiry has come, each in one transaction.
//
// # Garbage collection
//
// The store does not know the block format. [Store.GC] and [Store.Verify] walk
// from each pinned root with a caller-supplied [LinkFunc] that lists a block's
// children. GC removes every block that no pin reaches. Writers that add a
// tree hold [Store.GCGuard] from their first block until its root is pinned,
// so GC never removes half of a tree being added.
// A [Collector] runs GC in the background on request, coalescing requests
// and at most once per interval (a node asks for one when a peer's transfer
// ends without pinning its root).
//
// # Accounting
//
// [Store.Stat] reports block count and bytes from in-memory counters that
// [Open] builds with one directory walk and that Put and Delete keep current.
// This makes Stat free at the price of a walk at start-up (one readdir per
// shard, no file reads), which the store does anyway to remove crash
// leftovers. Bytes counts block contents, not the file system's allocation.
// [Store.Usage] divides the bytes reachable from pins into classes of pin
// reason (own files, replicas held for others), each block counted once, in
// the first class that reaches it, with one walk that is GC's mark.
//
// # Concurrency
//
// All methods of [Store] are safe for concurrent use by multiple goroutines.
// Concurrent Puts of the same block store it once and count it once.
package blockstore
