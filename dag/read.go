package dag

import (
	"context"
	"errors"
	"fmt"
	"io"
	"runtime"

	"github.com/ipfs/go-cid"
	"golang.org/x/sync/errgroup"

	"github.com/casd/casd/blockstore"
	"github.com/casd/casd/crypt"
)

// BlockGetter returns the block named c, or an error wrapping
// blockstore.ErrNotFound. The returned slice belongs to the caller, which
// may modify it. Getters that read from untrusted sources must verify the
// data against c; [File.WriteTo] authenticates every block anyway.
// Implementations must be safe for concurrent use.
type BlockGetter interface {
	Get(ctx context.Context, c cid.Cid) ([]byte, error)
}

// Repairer is the optional ability of a [BlockGetter] to repair what it
// gets from a local store. Get may then return a local block unchecked: a
// chunk is authenticated when it is opened, a manifest block checked
// against its CID, and a block that fails either is handed to Repair. If
// the copy of c that Get returns is damaged (it does not match c), Repair
// returns a good copy from elsewhere, verified against c, with ok true, or
// an error naming the damaged block; if that copy is intact, it returns ok
// false, and the failure is the file's own.
type Repairer interface {
	Repair(ctx context.Context, c cid.Cid) (data []byte, ok bool, err error)
}

// repair asks get, if it is a [Repairer], for a good copy of c, which
// failed with cause; without one, or when the copy was intact, cause
// stands.
func repair(ctx context.Context, get BlockGetter, c cid.Cid, cause error) ([]byte, error) {
	r, ok := get.(Repairer)
	if !ok {
		return nil, cause
	}
	data, repaired, err := r.Repair(ctx, c)
	switch {
	case err != nil:
		return nil, err
	case !repaired:
		return nil, cause
	}
	return data, nil
}

// File is an opened file: its root authenticated, its metadata readable.
type File struct {
	Root   cid.Cid
	Key    crypt.Key
	Meta   Meta
	root   *node
	format *format
	// owner, for a file opened by [OpenOwned] whose format's keys do not
	// cover links (version 1), is the convergence secret that every block
	// is checked against as it is read; nil otherwise.
	owner *crypt.Key
}

// Capability returns the capability that opens f.
func (f *File) Capability() Capability { return Capability{Root: f.Root, Key: f.Key} }

// OpenFile opens the file with the given root and file key (a capability).
func OpenFile(ctx context.Context, get BlockGetter, root cid.Cid, key crypt.Key) (*File, error) {
	m, err := getRoot(ctx, get, root)
	if err != nil {
		return nil, err
	}
	f, _, err := openRoot(root, m, key)
	return f, err
}

// OpenOwned opens a file added under s: the root carries its file key
// wrapped under s.Master, and that key is the one s.Convergence derives
// for the root's content. Any other file, and a root forged by someone who
// holds one of the owner's capabilities (who knows a file key and can copy
// the wrapped key into a root of their own), gives [ErrNeedCapability].
//
// A version-2 root is proved whole by this: its wrapped key is bound to
// its head and sealed body, and its file key covers its links. A
// version-1 root's file key covers only its sealed body, not its links, so
// the returned File checks every block against s.Convergence as it is
// read, and [File.VerifyOwned] proves the whole file before its capability
// is handed out.
func OpenOwned(ctx context.Context, get BlockGetter, root cid.Cid, s *crypt.Secrets) (*File, error) {
	m, err := getRoot(ctx, get, root)
	if err != nil {
		return nil, err
	}
	key, err := m.format.unwrap(&s.Master, m.wrapped, m.format.wrapAD(m.head, m.sealed))
	if err != nil {
		return nil, fmt.Errorf("open %s: %w", root, ErrNeedCapability)
	}
	f, pt, err := openRoot(root, m, key)
	if err != nil {
		return nil, err
	}
	if err := m.format.checkOwned(&s.Convergence, m, pt, &key); err != nil {
		return nil, fmt.Errorf("open %s: %w", root, err)
	}
	if !m.format.keysCoverLinks {
		conv := s.Convergence
		f.owner = &conv
	}
	return f, nil
}

// VerifyOwned proves that every block of a file opened by [OpenOwned] is
// the owner's, so that its capability may be handed out. For a version-2
// root, opening it proved that (its file key covers its links, and a link
// names a block by its hash), and VerifyOwned returns at once. A version-1
// root forged with the owner's wrapped key, sealed body and file key could
// link chunks sealed by the forger under the keys that body lists:
// VerifyOwned reads the whole file, checking every block's key against
// the owner's convergence secret, and fails with [ErrNeedCapability] at the
// first that is not the owner's. For a file opened by capability it does
// nothing.
func (f *File) VerifyOwned(ctx context.Context, get BlockGetter) error {
	if f.owner == nil {
		return nil
	}
	if _, err := f.WriteTo(ctx, io.Discard, get, ReadOptions{}); err != nil {
		return fmt.Errorf("verify %s: %w", f.Root, err)
	}
	return nil
}

func openRoot(root cid.Cid, m *manifestBlock, key crypt.Key) (*File, []byte, error) {
	n, pt, err := m.open(&key)
	if err != nil {
		return nil, nil, fmt.Errorf("open root %s: %w", root, err)
	}
	return &File{Root: root, Key: key, Meta: *n.body.meta, root: n, format: m.format}, pt, nil
}

// getRoot fetches and checks a root block.
func getRoot(ctx context.Context, get BlockGetter, root cid.Cid) (*manifestBlock, error) {
	data, err := getVerified(ctx, get, root)
	if err != nil {
		return nil, err
	}
	kind, err := BlockKind(data)
	if err != nil {
		return nil, fmt.Errorf("read root %s: %w", root, err)
	}
	switch kind {
	case KindChunk:
		return nil, fmt.Errorf("%s is a chunk of a file: %w", root, ErrNotFile)
	case KindNode:
		return nil, fmt.Errorf("%s is an inner manifest block of a file: %w", root, ErrNotFile)
	}
	m, err := parseManifestBlock(data)
	if err != nil {
		return nil, fmt.Errorf("read root %s: %w", root, err)
	}
	return m, nil
}

// getVerified fetches a block and checks it against its CID, repairing a
// damaged one if get can ([Repairer]). Manifest blocks are small, so this
// costs little and names a corrupt block exactly.
func getVerified(ctx context.Context, get BlockGetter, c cid.Cid) ([]byte, error) {
	data, err := get.Get(ctx, c)
	if err != nil {
		return nil, err // getters name the block
	}
	if err := blockstore.VerifyBlock(c, data); err != nil {
		return repair(ctx, get, c, err)
	}
	return data, nil
}

// ReadOptions tune [File.WriteTo]. The zero value is the default.
type ReadOptions struct {
	// Window is the number of chunks fetched and opened at once; it bounds
	// memory to about Window chunks. 0 means 2*GOMAXPROCS+2.
	Window int
}

// chunkRef is one chunk to fetch, in file order.
type chunkRef struct {
	index int
	cid   cid.Cid
	key   crypt.Key
	size  int
	data  []byte // plaintext once opened
}

// WriteTo writes the file's plaintext to w, in order, fetching and opening
// up to Window chunks in parallel. Every chunk is authenticated before any
// of its bytes reach w; on error w has received a prefix of the file.
//
// The sizes a manifest records are checked as the tree is walked, so that a
// crafted manifest (its author, or anyone holding its capability, can seal
// one) cannot make WriteTo write without bound: each manifest block's
// entries must add up, without overflow, to the size its parent records for
// it (for the root, Meta.Size), and each chunk must open to the length its
// parent records. WriteTo fails with [ErrMalformed], naming the block, at
// the first manifest block that breaks this, before any byte under that
// block reaches w, and never writes more than Meta.Size bytes.
func (f *File) WriteTo(ctx context.Context, w io.Writer, get BlockGetter, opt ReadOptions) (int64, error) {
	if opt.Window <= 0 {
		opt.Window = 2*runtime.GOMAXPROCS(0) + 2
	}
	g, ctx := errgroup.WithContext(ctx)
	tokens := make(chan struct{}, opt.Window) // one per chunk between walk and write
	refs := make(chan *chunkRef)
	done := make(chan *chunkRef, opt.Window)
	g.Go(func() error {
		defer close(refs)
		return f.walkChunks(ctx, get, func(r *chunkRef) error {
			select {
			case tokens <- struct{}{}:
			case <-ctx.Done():
				return ctx.Err()
			}
			select {
			case refs <- r:
				return nil
			case <-ctx.Done():
				return ctx.Err()
			}
		})
	})
	fetchers, fctx := errgroup.WithContext(ctx)
	for range opt.Window {
		fetchers.Go(func() error { return f.fetchChunks(fctx, get, refs, done) })
	}
	g.Go(func() error { defer close(done); return fetchers.Wait() })
	var written int64
	g.Go(func() error {
		var err error
		written, err = writeInOrder(ctx, w, done, tokens, f.Meta.Size)
		return err
	})
	if err := g.Wait(); err != nil {
		return written, err
	}
	if written != f.Meta.Size {
		return written, fmt.Errorf("read %s: wrote %d bytes of %d: %w", f.Root, written, f.Meta.Size, ErrMalformed)
	}
	return written, nil
}

// fetchChunks fetches and opens chunks until refs is closed.
func (f *File) fetchChunks(ctx context.Context, get BlockGetter, refs <-chan *chunkRef, done chan<- *chunkRef) error {
	for {
		var r *chunkRef
		select {
		case r = <-refs:
			if r == nil {
				return nil // refs closed: the walk is over
			}
		case <-ctx.Done():
			return ctx.Err()
		}
		var err error
		if r.data, err = f.getChunk(ctx, get, r); err != nil {
			return err
		}
		select {
		case done <- r:
		case <-ctx.Done():
			return ctx.Err()
		}
	}
}

// getChunk gets and opens the chunk r. A chunk that does not open is
// handed to get's [Repairer], if any, and a good copy opened instead.
func (f *File) getChunk(ctx context.Context, get BlockGetter, r *chunkRef) ([]byte, error) {
	data, err := get.Get(ctx, r.cid)
	if err != nil {
		return nil, err // getters name the block
	}
	pt, err := f.openChunk(data, &r.key, r.size)
	if err == nil {
		return pt, nil
	}
	err = fmt.Errorf("open chunk %s: %w", r.cid, err)
	if data, err = repair(ctx, get, r.cid, err); err != nil {
		return nil, err
	}
	if pt, err = f.openChunk(data, &r.key, r.size); err != nil {
		return nil, fmt.Errorf("open chunk %s: %w", r.cid, err)
	}
	return pt, nil
}

// openChunk authenticates and decrypts a chunk block of f in place; for a
// file opened by its owner whose keys do not cover links, it checks the
// chunk's key against the owner's convergence secret.
func (f *File) openChunk(data []byte, key *crypt.Key, size int) ([]byte, error) {
	kind, err := BlockKind(data)
	if err != nil {
		return nil, err
	}
	if kind != KindChunk {
		return nil, fmt.Errorf("%w: kind %d where a chunk belongs", ErrMalformed, kind)
	}
	if data[0] != f.format.version {
		return nil, fmt.Errorf("%w: a chunk of format %d in a file of format %d", ErrMalformed, data[0], f.format.version)
	}
	ct := data[headerSize:]
	pt, err := crypt.Open(ct[:0], key, ct, data[:headerSize])
	if err != nil {
		return nil, ErrUnauthenticated
	}
	if len(pt) != padTo(size, chunkPad) {
		return nil, fmt.Errorf("%w: chunk of %d bytes for %d", ErrMalformed, len(pt), size)
	}
	// The padding (under 4 KiB, none for a full chunk) must be zero: a
	// parent that records fewer bytes than the chunk holds is caught, not
	// obeyed. A chunk whose last bytes are zero cannot be told from a
	// shorter one; both read the same.
	if !allZero(pt[size:]) {
		return nil, fmt.Errorf("%w: chunk holds more than the %d bytes its parent records", ErrMalformed, size)
	}
	if f.owner != nil {
		if want := f.format.chunkKey(f.owner, pt[:size]); !crypt.KeysEqual(&want, key) {
			return nil, fmt.Errorf("%w: its key is not the one this node derives for its content (forged with a capability)", ErrNeedCapability)
		}
	}
	return pt[:size], nil
}

func allZero(p []byte) bool {
	for _, c := range p {
		if c != 0 {
			return false
		}
	}
	return true
}

// writeInOrder writes opened chunks to w in file order, returning a token
// for each so that the walk may go on. It writes at most limit bytes: a
// chunk that would go past it is cut there and fails with [ErrMalformed].
// The walk's size checks already make that impossible; this keeps the
// bound where the bytes are written.
func writeInOrder(ctx context.Context, w io.Writer, done <-chan *chunkRef, tokens <-chan struct{}, limit int64) (int64, error) {
	pending := make(map[int]*chunkRef)
	next := 0
	var written int64
	for r := range done {
		pending[r.index] = r
		for p, ok := pending[next]; ok; p, ok = pending[next] {
			delete(pending, next)
			next++
			data, over := p.data, false
			if int64(len(data)) > limit-written {
				data, over = data[:limit-written], true
			}
			n, err := w.Write(data)
			written += int64(n)
			if err != nil {
				return written, fmt.Errorf("write: %w", err)
			}
			if over {
				return written, fmt.Errorf("read chunk %s: %w: file goes past its %d bytes", p.cid, ErrMalformed, limit)
			}
			<-tokens
		}
	}
	if err := ctx.Err(); err != nil {
		return written, err
	}
	return written, nil
}

// walkChunks calls fn for each chunk of f, in order, opening manifest nodes
// on the way. It holds one node per level of the tree. Each node is checked
// against the size its parent records (see checkSizes) before any chunk
// under it goes to fn.
func (f *File) walkChunks(ctx context.Context, get BlockGetter, fn func(*chunkRef) error) error {
	index := 0
	var walk func(c cid.Cid, n *node, want uint64) error
	walk = func(c cid.Cid, n *node, want uint64) error {
		if err := n.checkSizes(want, f.Meta.ChunkSize); err != nil {
			return fmt.Errorf("read manifest block %s: %w", c, err)
		}
		for i, l := range n.links {
			e := &n.body.entries[i]
			if n.height == 0 {
				if err := fn(&chunkRef{index: index, cid: l, key: e.key, size: int(e.size)}); err != nil {
					return err
				}
				index++
				continue
			}
			child, err := f.openNode(ctx, get, l, &e.key, n.height-1)
			if err != nil {
				return err
			}
			if err := walk(l, child, e.size); err != nil {
				return err
			}
		}
		return nil
	}
	return walk(f.Root, f.root, uint64(f.Meta.Size))
}

// checkSizes checks n's entries against want, the size n's parent records
// for it: they must add up to it without overflow, and a chunk's size must
// be between 1 and chunkSize.
func (n *node) checkSizes(want uint64, chunkSize int) error {
	if n.height == 0 {
		for i, e := range n.body.entries {
			if e.size == 0 || e.size > uint64(chunkSize) {
				return fmt.Errorf("%w: chunk %s of %d bytes, chunk size %d", ErrMalformed, n.links[i], e.size, chunkSize)
			}
		}
	}
	sum, err := sumEntries(n.body.entries)
	if err != nil {
		return err
	}
	if sum != want {
		return fmt.Errorf("%w: entries cover %d bytes, parent records %d", ErrMalformed, sum, want)
	}
	return nil
}

// openNode fetches and opens an inner manifest node of f of the given
// height; for a file opened by its owner whose keys do not cover links, it
// checks the node's key against the owner's convergence secret.
func (f *File) openNode(ctx context.Context, get BlockGetter, c cid.Cid, key *crypt.Key, height int) (*node, error) {
	data, err := getVerified(ctx, get, c)
	if err != nil {
		return nil, err
	}
	n, err := f.openNodeBlock(data, key, height)
	if err != nil {
		return nil, fmt.Errorf("open manifest node %s: %w", c, err)
	}
	return n, nil
}

func (f *File) openNodeBlock(data []byte, key *crypt.Key, height int) (*node, error) {
	m, err := parseManifestBlock(data)
	if err != nil {
		return nil, err
	}
	if m.kind != KindNode || m.format != f.format {
		return nil, fmt.Errorf("%w: kind %d of format %d, want kind %d of format %d", ErrMalformed, m.kind, m.format.version, KindNode, f.format.version)
	}
	n, pt, err := m.open(key)
	if err != nil {
		return nil, err
	}
	if n.height != height {
		return nil, fmt.Errorf("%w: height %d, want %d", ErrMalformed, n.height, height)
	}
	if f.owner != nil {
		if err := m.format.checkOwned(f.owner, m, pt, key); err != nil {
			return nil, err
		}
	}
	return n, nil
}

// IsAuthError reports whether err means that data failed authentication or
// verification: a wrong key, or a corrupt or truncated block.
func IsAuthError(err error) bool {
	return errors.Is(err, ErrUnauthenticated) || errors.Is(err, blockstore.ErrCorrupt) || errors.Is(err, ErrMalformed)
}
