package dag

import (
	"context"
	"errors"
	"fmt"
	"io"
	"mime"
	"net/http"
	"path/filepath"
	"runtime"
	"unicode/utf8"

	"github.com/ipfs/go-cid"
	"golang.org/x/sync/errgroup"

	"github.com/casd/casd/blockstore"
	"github.com/casd/casd/crypt"
)

// ErrBadName is returned by [Add] for a file name that cannot be stored.
var ErrBadName = errors.New("dag: invalid file name")

// BlockPutter stores blocks durably. When PutMany returns nil, every block
// of the batch is on stable storage. It must be safe to call from one
// goroutine at a time; it must not retain the blocks' Data after returning.
type BlockPutter interface {
	PutMany(ctx context.Context, blocks []blockstore.Block) error
}

// AddOptions tune [Add]. The zero value is the default.
type AddOptions struct {
	ChunkSize int // plaintext bytes per chunk; 0 means DefaultChunkSize
	Fanout    int // links per manifest block; 0 means DefaultFanout
	Workers   int // sealing goroutines; 0 means GOMAXPROCS
	// Progress, if set, is called with the plaintext bytes stored so far,
	// from a single goroutine, after each batch is durable.
	Progress func(stored int64)
}

// Added is the result of [Add].
type Added struct {
	Root   cid.Cid   // the file's CID: its manifest root block
	Key    crypt.Key // the file key: with Root, the capability
	Meta   Meta      // what the manifest records
	Blocks int       // blocks written, manifest included
	Bytes  int64     // ciphertext bytes written
}

// Capability returns the capability of the added file.
func (a *Added) Capability() Capability { return Capability{Root: a.Root, Key: a.Key} }

// Pipeline sizes: at most window chunk buffers exist at once, which bounds
// the memory of an add by window*ChunkSize whatever the file size.
const (
	batchBlocks = 4
	window      = 3*batchBlocks + 2
)

// Add reads r to its end and stores it as an encrypted file: chunks sealed
// under convergent keys, then the manifest tree, the root last. meta gives
// the name, mode and (optionally) media type; Size and ChunkSize are filled
// in. Reading, sealing over several cores and durable writes are pipelined.
func Add(ctx context.Context, r io.Reader, meta Meta, s *crypt.Secrets, put BlockPutter, opt AddOptions) (*Added, error) {
	opt = opt.withDefaults()
	if err := checkName(meta.Name); err != nil {
		return nil, err
	}
	meta.ChunkSize = opt.ChunkSize
	meta.Mode = meta.Mode.Perm()
	a := &adder{secrets: s, put: put, opt: opt, meta: meta}
	a.tree = treeBuilder{conv: &s.Convergence, fanout: opt.Fanout}
	if err := a.run(ctx, r); err != nil {
		return nil, err
	}
	return a.finish(ctx)
}

func (o AddOptions) withDefaults() AddOptions {
	if o.ChunkSize == 0 {
		o.ChunkSize = DefaultChunkSize
	}
	if o.Fanout == 0 {
		o.Fanout = DefaultFanout
	}
	if o.Workers == 0 {
		o.Workers = runtime.GOMAXPROCS(0)
	}
	return o
}

// CheckChunkSize reports whether n is a valid chunk size.
func CheckChunkSize(n int) error {
	if n < MinChunkSize || n > MaxChunkSize || n&(n-1) != 0 {
		return fmt.Errorf("dag: chunk size %d: must be a power of two from %d to %d", n, MinChunkSize, MaxChunkSize)
	}
	return nil
}

func checkName(name string) error {
	if name == "" || len(name) > maxNameLen || !utf8.ValidString(name) || !validName(name) {
		return fmt.Errorf("%w: %q", ErrBadName, name)
	}
	return nil
}

// adder is the state of one Add.
type adder struct {
	secrets *crypt.Secrets
	put     BlockPutter
	opt     AddOptions
	meta    Meta
	tree    treeBuilder // owned by the collector goroutine while run goes on
	// Owned by the writer goroutine while run goes on.
	blocks  int
	bytes   int64
	plain   int64
	sniffed string
}

// chunkBuf holds one chunk through the pipeline: read into, sealed in
// place, written from. The first headerSize bytes are the block header.
type chunkBuf struct {
	index int
	n     int // plaintext length
	data  []byte
	block blockstore.Block
	key   crypt.Key
}

// run streams r through read -> seal (workers) -> in-order collect -> write.
func (a *adder) run(ctx context.Context, r io.Reader) error {
	g, ctx := errgroup.WithContext(ctx)
	pool := make(chan *chunkBuf, window) // buffers are made on demand, up to window
	jobs := make(chan *chunkBuf, a.opt.Workers)
	sealed := make(chan *chunkBuf, window)
	batches := make(chan batch, 1)

	g.Go(func() error { defer close(jobs); return a.read(ctx, r, pool, jobs) })
	workers, wctx := errgroup.WithContext(ctx)
	for range a.opt.Workers {
		workers.Go(func() error { return a.seal(wctx, jobs, sealed) })
	}
	g.Go(func() error { defer close(sealed); return workers.Wait() })
	g.Go(func() error { defer close(batches); return a.collect(ctx, sealed, batches) })
	g.Go(func() error { return a.write(ctx, batches, pool) })
	return g.Wait()
}

// read fills pool buffers from r, one chunk each, in order.
func (a *adder) read(ctx context.Context, r io.Reader, pool <-chan *chunkBuf, jobs chan<- *chunkBuf) error {
	made := 0
	for i := 0; ; i++ {
		var buf *chunkBuf
		select {
		case buf = <-pool:
		default:
			if made < window { // a small file needs few buffers
				buf = &chunkBuf{data: make([]byte, headerSize+padTo(a.opt.ChunkSize, chunkPad)+crypt.Overhead)}
				made++
				break
			}
			select {
			case buf = <-pool:
			case <-ctx.Done():
				return ctx.Err()
			}
		}
		n, err := io.ReadFull(r, buf.data[headerSize:headerSize+a.opt.ChunkSize])
		if err != nil && err != io.EOF && err != io.ErrUnexpectedEOF {
			return fmt.Errorf("read %s: %w", a.meta.Name, err)
		}
		if n == 0 {
			return nil
		}
		if i == 0 {
			a.sniffed = sniffMediaType(a.meta.Name, buf.data[headerSize:headerSize+n])
		}
		buf.index, buf.n = i, n
		select {
		case jobs <- buf:
		case <-ctx.Done():
			return ctx.Err()
		}
		if n < a.opt.ChunkSize {
			return nil
		}
	}
}

// seal turns each job's plaintext into a chunk block, in place.
func (a *adder) seal(ctx context.Context, jobs <-chan *chunkBuf, sealed chan<- *chunkBuf) error {
	for buf := range jobs {
		sealChunk(&a.secrets.Convergence, buf)
		select {
		case sealed <- buf:
		case <-ctx.Done():
			return ctx.Err()
		}
	}
	return nil
}

// sealChunk pads, seals and names buf's plaintext.
func sealChunk(conv *crypt.Key, buf *chunkBuf) {
	plain := buf.data[headerSize : headerSize+buf.n]
	buf.key = current.chunkKey(conv, plain)
	padded := buf.data[headerSize : headerSize+padTo(buf.n, chunkPad)]
	clear(padded[buf.n:])
	buf.data[0], buf.data[1] = current.version, KindChunk
	ct := crypt.Seal(padded[:0], &buf.key, padded, buf.data[:headerSize])
	data := buf.data[:headerSize+len(ct)]
	buf.block = blockstore.Block{Cid: blockCID(data), Data: data}
}

// batch is what the writer stores at once: chunks, in order, and the
// manifest nodes that they completed.
type batch struct {
	chunks    []*chunkBuf
	manifests []blockstore.Block
}

// collect puts sealed chunks back in order, feeds the manifest tree and
// groups blocks into batches for the writer. It alone touches a.tree while
// run is going.
func (a *adder) collect(ctx context.Context, sealed <-chan *chunkBuf, batches chan<- batch) error {
	pending := make(map[int]*chunkBuf, window)
	next := 0
	var cur batch
	for buf := range sealed {
		pending[buf.index] = buf
		for b, ok := pending[next]; ok; b, ok = pending[next] {
			delete(pending, next)
			next++
			a.tree.add(0, link{cid: b.block.Cid, entry: entry{key: b.key, size: uint64(b.n)}})
			cur.chunks = append(cur.chunks, b)
			if len(cur.chunks) == batchBlocks {
				cur.manifests = a.tree.takeEmitted()
				if err := sendBatch(ctx, batches, cur); err != nil {
					return err
				}
				cur = batch{}
			}
		}
	}
	if len(cur.chunks) > 0 {
		cur.manifests = a.tree.takeEmitted()
		return sendBatch(ctx, batches, cur)
	}
	return nil
}

func sendBatch(ctx context.Context, batches chan<- batch, b batch) error {
	select {
	case batches <- b:
		return nil
	case <-ctx.Done():
		return ctx.Err()
	}
}

// finish seals the root, writes what remains, and returns the result.
func (a *adder) finish(ctx context.Context) (*Added, error) {
	meta := a.meta
	meta.Size = int64(a.tree.total)
	if meta.MediaType == "" {
		meta.MediaType = a.sniffed
	}
	if meta.MediaType == "" { // empty file: the name alone tells
		meta.MediaType = mime.TypeByExtension(filepath.Ext(meta.Name))
	}
	root, key := a.tree.finish(&meta, &a.secrets.Master)
	blocks := append(a.tree.takeEmitted(), root)
	if err := a.putMany(ctx, blocks); err != nil {
		return nil, err
	}
	return &Added{Root: root.Cid, Key: key, Meta: meta, Blocks: a.blocks, Bytes: a.bytes}, nil
}

// sniffMediaType guesses a media type from the name, else from the content.
func sniffMediaType(name string, head []byte) string {
	if t := mime.TypeByExtension(filepath.Ext(name)); t != "" {
		return t
	}
	return http.DetectContentType(head)
}
