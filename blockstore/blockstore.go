package blockstore

import (
	"bytes"
	"context"
	"crypto/sha256"
	"errors"
	"fmt"
	"hash/maphash"
	"io/fs"
	"os"
	"path/filepath"
	"sync"
	"sync/atomic"
	"time"

	"github.com/ipfs/go-cid"
	logging "github.com/ipfs/go-log/v2"
	mh "github.com/multiformats/go-multihash"
	bolt "go.etcd.io/bbolt"
	"golang.org/x/sync/errgroup"

	"github.com/casd/casd/internal/fsutil"
)

var log = logging.Logger("casd/blockstore")

// MaxBlockSize is the largest block the store accepts, and so the largest
// the protocols carry: a 4 MiB chunk plus room for its sealing overhead.
const MaxBlockSize = 4<<20 + 64<<10

var (
	// ErrNotFound means the block is not in the store.
	ErrNotFound = errors.New("blockstore: block not found")
	// ErrTooLarge means a block exceeds MaxBlockSize.
	ErrTooLarge = errors.New("blockstore: block too large")
	// ErrCorrupt means a block's bytes do not hash to its CID.
	ErrCorrupt = errors.New("blockstore: block does not match its CID")
	// ErrLocked means another Store (in this or another process) holds the
	// metadata database open.
	ErrLocked = errors.New("blockstore: metadata database is locked by another user")
	// ErrClosed means the Store was used after Close.
	ErrClosed = errors.New("blockstore: store closed")
	// ErrBadCid means a CID is not of the one form that names casd blocks
	// (see [CheckCid]).
	ErrBadCid = errors.New("blockstore: CID is not CIDv1 raw sha2-256")
)

var errUndefinedCid = errors.New("blockstore: undefined CID")

const (
	tmpPrefix = ".tmp-"
	// dirPerm and filePerm keep blocks private to the user running casd:
	// they are ciphertext, but what a node holds is its own business.
	dirPerm  = 0o700
	filePerm = 0o600
	// lockTimeout bounds how long Open waits for the metadata file lock.
	lockTimeout = time.Second
	// putWorkers bounds how many blocks PutMany writes and fsyncs at once.
	putWorkers = 4
	// numStripes is the number of per-name locks serialising the
	// check-rename-count step of writers and deleters of the same block.
	numStripes = 256
)

// Block is a block of data named by its CID.
type Block struct {
	Cid  cid.Cid
	Data []byte
}

// CheckCid accepts only the CIDs casd names blocks by: CIDv1, codec raw
// (0x55), multihash sha2-256 with its full 32-byte digest. Anything else
// (undefined, CIDv0, another codec, identity, sha1, a truncated digest)
// is an error wrapping [ErrBadCid]. Every CID that comes from a peer, a
// manifest or a user passes through it before a block is fetched, checked
// or stored under it: an identity CID "verifies" any data it carries, and
// a truncated digest is a collision waiting to happen.
func CheckCid(c cid.Cid) error {
	if !c.Defined() {
		return fmt.Errorf("%w: undefined CID", ErrBadCid)
	}
	p := c.Prefix()
	if p.Version != 1 || p.Codec != cid.Raw || p.MhType != mh.SHA2_256 || p.MhLength != sha256.Size {
		return fmt.Errorf("%w: %s is CIDv%d, codec %#x, multihash %#x of %d bytes",
			ErrBadCid, c, p.Version, p.Codec, p.MhType, p.MhLength)
	}
	return nil
}

// VerifyBlock checks that c passes [CheckCid] and that data hashes to c.
// It returns an error wrapping [ErrBadCid] for a CID of another form, and
// one wrapping [ErrCorrupt] and naming c on a mismatch.
func VerifyBlock(c cid.Cid, data []byte) error {
	if err := CheckCid(c); err != nil {
		return fmt.Errorf("verify block: %w", err)
	}
	got, err := c.Prefix().Sum(data)
	if err != nil {
		return fmt.Errorf("verify block %s: %w", c, err)
	}
	if !bytes.Equal(got.Hash(), c.Hash()) {
		return fmt.Errorf("verify block %s: %w", c, ErrCorrupt)
	}
	return nil
}

// Store is a block store on the local file system with pins in a bbolt
// database. It is safe for concurrent use; see the package documentation.
type Store struct {
	dir    string
	db     *bolt.DB
	closed atomic.Bool

	closeOnce sync.Once
	closeErr  error

	// blocks and bytes count the stored blocks and their sizes. They are
	// changed only under the stripe lock of the block concerned.
	blocks atomic.Int64
	bytes  atomic.Int64

	seed    maphash.Seed
	stripes [numStripes]sync.Mutex

	// gc is held shared by adders (GCGuard) and exclusively by GC.
	gc *gcLock
	// counts counts the pins of each reason ([Store.PinCount]).
	counts *pinCounts

	// pendingMu guards pending and shards.
	pendingMu sync.Mutex
	// pending counts, per shard directory, renames whose directory fsync
	// has not yet succeeded. A writer that finds its block already present
	// in such a shard fsyncs the directory itself before reporting success,
	// since the block it sees may not survive a crash yet.
	pending map[string]int
	// shards records shard directories known to exist.
	shards map[string]bool

	bufPool sync.Pool // *[]byte of capacity MaxBlockSize, for walks

	// syncDir fsyncs a shard directory after renames into it
	// (fsutil.SyncDir; tests count the calls).
	syncDir func(dir string) error
}

// Open opens the store with blocks under blocksDir and metadata in the bbolt
// file metaPath, creating both if needed. It removes temporary files left by
// a crash and counts the blocks present. If another Store holds metaPath
// open, Open fails within about a second with an error wrapping [ErrLocked].
// metaPath must not be inside blocksDir, which holds only shard
// directories.
func Open(blocksDir, metaPath string) (*Store, error) {
	if err := os.MkdirAll(blocksDir, dirPerm); err != nil {
		return nil, fmt.Errorf("open blockstore: create blocks dir: %w", err)
	}
	if err := os.MkdirAll(filepath.Dir(metaPath), dirPerm); err != nil {
		return nil, fmt.Errorf("open blockstore: create metadata dir: %w", err)
	}
	db, err := openMeta(metaPath)
	if err != nil {
		return nil, err
	}
	counts, err := loadPinCounts(db)
	if err != nil {
		return nil, errors.Join(fmt.Errorf("open blockstore: %w", err), db.Close())
	}
	s := &Store{
		counts:  counts,
		dir:     blocksDir,
		gc:      newGCLock(),
		db:      db,
		seed:    maphash.MakeSeed(),
		pending: make(map[string]int),
		shards:  make(map[string]bool),
		syncDir: fsutil.SyncDir,
	}
	s.bufPool.New = func() any {
		b := make([]byte, 0, MaxBlockSize)
		return &b
	}
	if err := s.scan(); err != nil {
		return nil, errors.Join(err, db.Close())
	}
	log.Infow("opened blockstore", "dir", blocksDir, "blocks", s.blocks.Load(), "bytes", s.bytes.Load())
	return s, nil
}

// Close closes the metadata database. Calls made after Close return
// [ErrClosed]. Close is idempotent. The Store starts no goroutines of its
// own; those of PutMany, GC and Verify end before those methods return.
func (s *Store) Close() error {
	s.closeOnce.Do(func() {
		s.closed.Store(true)
		if err := s.db.Close(); err != nil {
			s.closeErr = fmt.Errorf("close blockstore metadata: %w", err)
		}
	})
	return s.closeErr
}

// scan walks the blocks directory once at Open: it removes temporary files,
// counts blocks and bytes, and fsyncs every shard directory so that blocks
// renamed by a process that crashed before its directory fsync are durable
// before this Store reports them present.
func (s *Store) scan() error {
	top, err := os.ReadDir(s.dir)
	if err != nil {
		return fmt.Errorf("open blockstore: read %s: %w", s.dir, err)
	}
	var blocks, size int64
	var removed int
	for _, e := range top {
		if !e.IsDir() {
			log.Warnw("unexpected file in blocks dir", "name", e.Name())
			continue
		}
		shard := e.Name()
		shardDir := filepath.Join(s.dir, shard)
		entries, err := os.ReadDir(shardDir)
		if err != nil {
			return fmt.Errorf("open blockstore: read %s: %w", shardDir, err)
		}
		for _, f := range entries {
			name := f.Name()
			if isTemp(name) {
				if err := os.Remove(filepath.Join(shardDir, name)); err != nil && !errors.Is(err, fs.ErrNotExist) {
					return fmt.Errorf("open blockstore: remove stale temp file: %w", err)
				}
				removed++
				continue
			}
			if _, err := parseName(shard, name); err != nil {
				log.Warnw("unexpected file in blocks dir", "shard", shard, "name", name, "err", err)
				continue
			}
			info, err := f.Info()
			if err != nil {
				return fmt.Errorf("open blockstore: stat %s: %w", name, err)
			}
			blocks++
			size += info.Size()
		}
		if err := fsutil.SyncDir(shardDir); err != nil {
			return fmt.Errorf("open blockstore: %w", err)
		}
		s.shards[shard] = true
	}
	if err := fsutil.SyncDir(s.dir); err != nil {
		return fmt.Errorf("open blockstore: %w", err)
	}
	if removed > 0 {
		log.Infow("removed temporary files left by a crash", "count", removed)
	}
	s.blocks.Store(blocks)
	s.bytes.Store(size)
	return nil
}

func isTemp(name string) bool {
	return len(name) >= len(tmpPrefix) && name[:len(tmpPrefix)] == tmpPrefix
}

// check returns an error if the store is closed or ctx is done.
func (s *Store) check(ctx context.Context) error {
	if s.closed.Load() {
		return ErrClosed
	}
	return ctx.Err()
}

// blockPath is where a block lives.
type blockPath struct {
	shard string // shard directory name
	name  string // file name: CIDv1 string
}

func (s *Store) pathOf(c cid.Cid) (blockPath, error) {
	if !c.Defined() {
		return blockPath{}, errUndefinedCid
	}
	if c.Version() == 0 {
		c = cid.NewCidV1(c.Type(), c.Hash())
	}
	name := c.String()
	return blockPath{shard: shardOf(name), name: name}, nil
}

// shardOf returns the next-to-last two characters of a CID string.
func shardOf(name string) string {
	n := len(name)
	return name[n-3 : n-1]
}

// parseName returns the CID a file in shard is named after.
func parseName(shard, name string) (cid.Cid, error) {
	c, err := cid.Decode(name)
	if err != nil {
		return cid.Undef, fmt.Errorf("file name %q is not a CID: %w", name, err)
	}
	if c.Version() != 1 || c.String() != name || shardOf(name) != shard {
		return cid.Undef, fmt.Errorf("file %s/%s is not where the store puts CID %s", shard, name, c)
	}
	return c, nil
}

func (s *Store) file(p blockPath) string {
	return filepath.Join(s.dir, p.shard, p.name)
}

func (s *Store) stripe(p blockPath) *sync.Mutex {
	return &s.stripes[maphash.String(s.seed, p.name)%numStripes]
}

// Has reports whether the block c is in the store, durably: a block that
// another writer has renamed into place but whose shard directory it has
// not fsynced yet may not survive a crash, so Has fsyncs that directory
// before it reports the block, as a Put that finds the block present does.
// Callers pin what Has reports (a store's completeness check pins a root
// whose every block is present, and acknowledges it to the owner), and a
// pin must never outlive its blocks across a crash.
func (s *Store) Has(ctx context.Context, c cid.Cid) (bool, error) {
	if err := s.check(ctx); err != nil {
		return false, fmt.Errorf("has block %s: %w", c, err)
	}
	p, err := s.pathOf(c)
	if err != nil {
		return false, fmt.Errorf("has block: %w", err)
	}
	if _, err := os.Lstat(s.file(p)); err != nil {
		if errors.Is(err, fs.ErrNotExist) {
			return false, nil
		}
		return false, fmt.Errorf("has block %s: %w", c, err)
	}
	if shard := s.presentShard(p.shard); shard != "" {
		if err := s.syncShards([]string{shard}); err != nil {
			return false, fmt.Errorf("has block %s: %w", c, err)
		}
	}
	return true, nil
}

// Get returns the bytes of block c, or an error wrapping [ErrNotFound]. It
// does not check them against c; see [VerifyBlock]. The caller owns the
// returned slice.
func (s *Store) Get(ctx context.Context, c cid.Cid) ([]byte, error) {
	if err := s.check(ctx); err != nil {
		return nil, fmt.Errorf("get block %s: %w", c, err)
	}
	p, err := s.pathOf(c)
	if err != nil {
		return nil, fmt.Errorf("get block: %w", err)
	}
	data, err := os.ReadFile(s.file(p))
	if err != nil {
		return nil, fmt.Errorf("get block %s: %w", c, notFound(err))
	}
	return data, nil
}

// GetSize returns the size of block c, or an error wrapping [ErrNotFound].
func (s *Store) GetSize(ctx context.Context, c cid.Cid) (int, error) {
	if err := s.check(ctx); err != nil {
		return 0, fmt.Errorf("get size of block %s: %w", c, err)
	}
	p, err := s.pathOf(c)
	if err != nil {
		return 0, fmt.Errorf("get size of block: %w", err)
	}
	info, err := os.Lstat(s.file(p))
	if err != nil {
		return 0, fmt.Errorf("get size of block %s: %w", c, notFound(err))
	}
	return int(info.Size()), nil
}

// notFound maps a missing file to ErrNotFound.
func notFound(err error) error {
	if errors.Is(err, fs.ErrNotExist) {
		return ErrNotFound
	}
	return err
}

// Put stores b durably: when it returns nil the block survives a crash. It
// refuses a CID that fails [CheckCid] (an error wrapping [ErrBadCid]), but
// trusts that b.Data hashes to b.Cid; callers holding untrusted data check
// it with [VerifyBlock] first. Putting a block that is already present is a
// no-op (a present file of the wrong length is replaced). Put does not
// retain b.Data.
//
// A block that is not reachable from a pin may be removed by a concurrent
// [Store.GC]; see [Store.GCGuard].
func (s *Store) Put(ctx context.Context, b Block) error {
	p, err := s.preparePut(ctx, b)
	if err != nil {
		return err
	}
	shard, err := s.putOne(ctx, p, b)
	if shard == "" {
		return err
	}
	return errors.Join(err, s.syncShards([]string{shard}))
}

// preparePut validates b and returns its path.
func (s *Store) preparePut(ctx context.Context, b Block) (blockPath, error) {
	if err := s.check(ctx); err != nil {
		return blockPath{}, fmt.Errorf("put block %s: %w", b.Cid, err)
	}
	if err := CheckCid(b.Cid); err != nil {
		return blockPath{}, fmt.Errorf("put block: %w", err)
	}
	p, err := s.pathOf(b.Cid)
	if err != nil {
		return blockPath{}, fmt.Errorf("put block: %w", err)
	}
	if len(b.Data) > MaxBlockSize {
		return blockPath{}, fmt.Errorf("put block %s of %d bytes: %w", b.Cid, len(b.Data), ErrTooLarge)
	}
	return p, nil
}

// putOne writes b's file and renames it into place. It returns the shard
// whose directory must be fsynced before b is durable, or "" if none must;
// a shard is returned even with an error, and the caller must pass it to
// syncShards, which releases the pending registration taken for it.
func (s *Store) putOne(ctx context.Context, p blockPath, b Block) (string, error) {
	final := s.file(p)
	// Fast path: most duplicate puts (a re-added file) end here without
	// writing anything.
	if info, err := os.Lstat(final); err == nil && info.Size() == int64(len(b.Data)) {
		return s.presentShard(p.shard), nil
	}
	if err := s.ensureShard(p.shard); err != nil {
		return "", fmt.Errorf("put block %s: %w", b.Cid, err)
	}
	if err := ctx.Err(); err != nil {
		return "", fmt.Errorf("put block %s: %w", b.Cid, err)
	}
	tmp, err := fsutil.WriteTemp(filepath.Join(s.dir, p.shard), tmpPrefix+"*", b.Data)
	if err != nil {
		return "", fmt.Errorf("put block %s: %w", b.Cid, err)
	}
	shard, err := s.commit(p, tmp, int64(len(b.Data)))
	if err != nil {
		return shard, fmt.Errorf("put block %s: %w", b.Cid, errors.Join(err, removeTemp(tmp)))
	}
	return shard, nil
}

// presentShard returns p's shard if a rename into it may not be durable yet,
// and registers the caller as a syncer of it.
func (s *Store) presentShard(shard string) string {
	s.pendingMu.Lock()
	defer s.pendingMu.Unlock()
	if s.pending[shard] == 0 {
		return ""
	}
	s.pending[shard]++
	return shard
}

// commit renames the fsynced temporary file tmp to p unless a block of the
// same size is already there, and updates the counters.
func (s *Store) commit(p blockPath, tmp string, size int64) (string, error) {
	final := s.file(p)
	mu := s.stripe(p)
	mu.Lock()
	defer mu.Unlock()
	var old int64 = -1
	if info, err := os.Lstat(final); err == nil {
		if info.Size() == size {
			// Another writer won the race.
			return s.presentShard(p.shard), removeTemp(tmp)
		}
		old = info.Size()
		log.Warnw("replacing block file of wrong length", "cid", p.name, "size", old, "want", size)
	} else if !errors.Is(err, fs.ErrNotExist) {
		return "", err
	}
	if err := s.renameLocked(p, tmp, size, old); err != nil {
		return "", err
	}
	return p.shard, nil
}

// renameLocked renames tmp to p's file, which held old bytes (-1: none),
// with p's stripe lock held, and updates the counters. It registers the
// pending directory fsync before the name appears, so that anyone who sees
// the file also sees that it may not be durable yet; on success the
// caller passes p's shard to syncShards, which releases it.
func (s *Store) renameLocked(p blockPath, tmp string, size, old int64) error {
	s.pendingMu.Lock()
	s.pending[p.shard]++
	s.pendingMu.Unlock()
	if err := os.Rename(tmp, s.file(p)); err != nil {
		s.donePending(p.shard)
		return err
	}
	if old >= 0 {
		s.bytes.Add(size - old)
	} else {
		s.blocks.Add(1)
		s.bytes.Add(size)
	}
	return nil
}

func (s *Store) donePending(shard string) {
	s.pendingMu.Lock()
	defer s.pendingMu.Unlock()
	if s.pending[shard]--; s.pending[shard] <= 0 {
		delete(s.pending, shard)
	}
}

// syncShards fsyncs each shard directory once (concurrently, bounded) and
// then releases the callers' pending registrations, one per entry of
// shards. A shard whose fsync fails keeps its registration, so later
// writers keep syncing it.
func (s *Store) syncShards(shards []string) error {
	count := make(map[string]int, len(shards))
	for _, sh := range shards {
		count[sh]++
	}
	var g errgroup.Group
	g.SetLimit(putWorkers)
	var mu sync.Mutex
	var errs []error
	for sh, n := range count {
		g.Go(func() error {
			if err := s.syncDir(filepath.Join(s.dir, sh)); err != nil {
				mu.Lock()
				errs = append(errs, err)
				mu.Unlock()
				return nil
			}
			for range n {
				s.donePending(sh)
			}
			return nil
		})
	}
	_ = g.Wait() // workers report through errs
	if err := errors.Join(errs...); err != nil {
		return fmt.Errorf("put blocks: %w", err)
	}
	return nil
}

// ensureShard creates a shard directory if needed and makes its entry in
// the blocks directory durable.
func (s *Store) ensureShard(shard string) error {
	s.pendingMu.Lock()
	known := s.shards[shard]
	s.pendingMu.Unlock()
	if known {
		return nil
	}
	err := os.Mkdir(filepath.Join(s.dir, shard), dirPerm)
	if err != nil && !errors.Is(err, fs.ErrExist) {
		return fmt.Errorf("create shard dir: %w", err)
	}
	// Sync even on ErrExist: a concurrent creator may not have synced yet.
	if err := fsutil.SyncDir(s.dir); err != nil {
		return err
	}
	s.pendingMu.Lock()
	s.shards[shard] = true
	s.pendingMu.Unlock()
	return nil
}

// PutMany stores a batch of blocks durably: when it returns nil every block
// survives a crash. It writes and fsyncs up to four blocks at once, renames
// each into place, then fsyncs each touched shard directory once, which
// costs far fewer directory fsyncs than as many Puts. If any block exceeds
// [MaxBlockSize] or has a CID that fails [CheckCid], nothing is written.
// On error some blocks may be stored.
func (s *Store) PutMany(ctx context.Context, bs []Block) error {
	paths := make([]blockPath, 0, len(bs))
	todo := make([]Block, 0, len(bs))
	seen := make(map[string]bool, len(bs))
	for _, b := range bs {
		p, err := s.preparePut(ctx, b)
		if err != nil {
			return err
		}
		if seen[p.name] {
			continue
		}
		seen[p.name] = true
		paths = append(paths, p)
		todo = append(todo, b)
	}
	var (
		mu     sync.Mutex
		shards []string
	)
	g, gctx := errgroup.WithContext(ctx)
	g.SetLimit(putWorkers)
	for i := range todo {
		if gctx.Err() != nil {
			break
		}
		g.Go(func() error {
			sh, err := s.putOne(gctx, paths[i], todo[i])
			if sh != "" {
				mu.Lock()
				shards = append(shards, sh)
				mu.Unlock()
			}
			return err
		})
	}
	werr := g.Wait()
	if werr == nil {
		werr = ctx.Err()
	}
	// Sync what was renamed even on failure, so that no registration stays
	// behind and blocks that made it are durable.
	serr := s.syncShards(shards)
	return errors.Join(werr, serr)
}

// Delete removes block c. Deleting a missing block is not an error. Delete
// does not look at pins: deleting a pinned block makes [Store.Verify] report
// it missing. A deletion is not fsynced; after a crash a deleted block may
// reappear, which GC undoes.
func (s *Store) Delete(ctx context.Context, c cid.Cid) error {
	if err := s.check(ctx); err != nil {
		return fmt.Errorf("delete block %s: %w", c, err)
	}
	p, err := s.pathOf(c)
	if err != nil {
		return fmt.Errorf("delete block: %w", err)
	}
	if _, err := s.remove(p); err != nil {
		return fmt.Errorf("delete block %s: %w", c, err)
	}
	return nil
}

// remove deletes p's file and returns how many bytes it freed, -1 if it was
// not there.
func (s *Store) remove(p blockPath) (int64, error) {
	final := s.file(p)
	mu := s.stripe(p)
	mu.Lock()
	defer mu.Unlock()
	info, err := os.Lstat(final)
	if errors.Is(err, fs.ErrNotExist) {
		return -1, nil
	}
	if err != nil {
		return 0, err
	}
	if err := os.Remove(final); err != nil {
		if errors.Is(err, fs.ErrNotExist) {
			return -1, nil
		}
		return 0, err
	}
	s.blocks.Add(-1)
	s.bytes.Add(-info.Size())
	return info.Size(), nil
}

// Stat describes what a Store holds.
type Stat struct {
	Blocks int   // number of blocks
	Bytes  int64 // sum of block sizes (not file system allocation)
	Pins   int   // number of (root, reason) pins
}

// Stat returns the block and byte counts kept in memory (see the package
// documentation) and the number of pins.
func (s *Store) Stat(ctx context.Context) (Stat, error) {
	if err := s.check(ctx); err != nil {
		return Stat{}, fmt.Errorf("stat blockstore: %w", err)
	}
	n, err := s.countPins()
	if err != nil {
		return Stat{}, fmt.Errorf("stat blockstore: %w", err)
	}
	return Stat{Blocks: int(s.blocks.Load()), Bytes: s.bytes.Load(), Pins: n}, nil
}
