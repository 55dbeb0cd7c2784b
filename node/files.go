package node

import (
	"context"
	"errors"
	"fmt"
	"io"
	"io/fs"

	"github.com/ipfs/go-cid"

	"github.com/casd/casd/blockstore"
	"github.com/casd/casd/config"
	"github.com/casd/casd/core"
	"github.com/casd/casd/dag"
	"github.com/casd/casd/node/internal/replicate"
)

// Add stores r as a file of this node: encrypted blocks in the local store,
// pinned as the node's own; online, it then replicates them.
func (n *Node) Add(ctx context.Context, r io.Reader, opt core.AddOptions) (*core.AddResult, error) {
	meta := dag.Meta{Name: opt.Name, Mode: fs.FileMode(opt.Mode).Perm(), MediaType: opt.MediaType}
	added, err := n.addLocal(ctx, r, meta, opt.Progress)
	if err != nil {
		return nil, err
	}
	res := &core.AddResult{FileInfo: fileInfo(added.Root, &added.Meta), Capability: added.Capability().String()}
	if n.net != nil {
		res.Goal = n.repo.Config.Replication.Factor
		res.Replicas, err = n.net.replicate(ctx, added.Root)
		if err != nil {
			return res, err
		}
	}
	return res, nil
}

// addLocal writes and pins the file under the GC guard, so that a
// concurrent GC cannot sweep its blocks before the root is pinned.
func (n *Node) addLocal(ctx context.Context, r io.Reader, meta dag.Meta, progress func(int64)) (*dag.Added, error) {
	release := n.store.GCGuard()
	defer release()
	added, err := dag.Add(ctx, r, meta, &n.secrets, n.store, dag.AddOptions{
		ChunkSize: n.repo.Config.Chunker.Size,
		Progress:  progress,
	})
	if err != nil {
		return nil, fmt.Errorf("add %s: %w", meta.Name, err)
	}
	if err := n.store.Pin(ctx, added.Root, PinOwner); err != nil {
		return nil, fmt.Errorf("pin %s: %w", added.Root, err)
	}
	log.Debugw("added", "cid", added.Root, "blocks", added.Blocks, "bytes", added.Bytes)
	return added, nil
}

func fileInfo(root cid.Cid, m *dag.Meta) core.FileInfo {
	return core.FileInfo{Cid: root.String(), Name: m.Name, Size: m.Size, Mode: uint32(m.Mode.Perm()), MediaType: m.MediaType}
}

// Cat streams the file named by ref (a CID of one of this node's files, or
// a capability) into the writer that open returns. open is called once the
// root is authenticated, before any byte is written.
func (n *Node) Cat(ctx context.Context, ref string, open func(core.FileInfo) (io.Writer, error)) error {
	r, err := dag.ParseRef(ref)
	if err != nil {
		return err
	}
	src, done := n.source(ctx, r.Root)
	defer done()
	f, err := n.openRef(ctx, src, r)
	if err != nil {
		return n.offlineHint(err)
	}
	w, err := open(fileInfo(f.Root, &f.Meta))
	if err != nil {
		return err
	}
	if _, err := f.WriteTo(ctx, w, src, dag.ReadOptions{Window: n.readWindow()}); err != nil {
		return fmt.Errorf("read %s: %w", f.Root, err)
	}
	return nil
}

// offlineHint adds to a not-found error of an offline node that the
// daemon would look for the file on the network.
func (n *Node) offlineHint(err error) error {
	if n.net == nil && errors.Is(err, blockstore.ErrNotFound) {
		return fmt.Errorf("%w (not in the local repo; with 'casd daemon' running, casd looks for it on the network)", err)
	}
	return err
}

// openRef opens a file by capability, or by CID if this node owns it.
func (n *Node) openRef(ctx context.Context, src dag.BlockGetter, r dag.Ref) (*dag.File, error) {
	if r.Cap != nil {
		return dag.OpenFile(ctx, src, r.Root, r.Cap.Key)
	}
	return dag.OpenOwned(ctx, src, r.Root, &n.secrets)
}

// source returns where the blocks of root come from, and a function that
// releases it: the local store offline, every block verified; online, a
// fetcher that also asks the peers that provide root.
func (n *Node) source(ctx context.Context, root cid.Cid) (dag.BlockGetter, func()) {
	if n.net == nil {
		return localBlocks{n.store}, func() {}
	}
	f := n.net.fetch.Open(ctx, root)
	return f, f.Close
}

// readWindow is how many chunks a read keeps in flight.
func (n *Node) readWindow() int {
	if n.net != nil {
		return networkWindow
	}
	return 0 // dag's default, sized for local disk and cores
}

// Ls lists the node's own files, oldest first.
func (n *Node) Ls(ctx context.Context) ([]core.ListEntry, error) {
	pins, err := n.store.Pins(ctx)
	if err != nil {
		return nil, fmt.Errorf("list pins: %w", err)
	}
	out := []core.ListEntry{}
	for _, p := range pins {
		if p.Reason != PinOwner {
			continue
		}
		f, err := dag.OpenOwned(ctx, n.store, p.Root, &n.secrets)
		if err != nil {
			return nil, fmt.Errorf("open %s: %w", p.Root, err)
		}
		out = append(out, core.ListEntry{Cid: p.Root.String(), Name: f.Meta.Name, Size: f.Meta.Size, Added: p.Created})
	}
	return out, nil
}

// Share returns the capability of one of this node's files.
func (n *Node) Share(ctx context.Context, ref string) (string, error) {
	r, err := dag.ParseRef(ref)
	if err != nil {
		return "", err
	}
	src, done := n.source(ctx, r.Root)
	defer done()
	f, err := n.openRef(ctx, src, r)
	if err == nil {
		err = f.VerifyOwned(ctx, src) // a version-1 root is proved only by reading it
	}
	if errors.Is(err, dag.ErrNeedCapability) {
		return "", fmt.Errorf("share %s: %w", ref, core.ErrNotOwned)
	}
	if err != nil {
		return "", fmt.Errorf("share %s: %w", ref, err)
	}
	return f.Capability().String(), nil
}

// Refs calls fn with the CID of every block of the file, root first. It
// needs no key.
func (n *Node) Refs(ctx context.Context, ref string, fn func(string) error) error {
	r, err := dag.ParseRef(ref)
	if err != nil {
		return err
	}
	src, done := n.source(ctx, r.Root)
	defer done()
	return dag.Walk(ctx, src, r.Root, func(c cid.Cid, _ byte) error { return fn(c.String()) })
}

// BlockGet writes the raw (encrypted) bytes of one local block to w.
func (n *Node) BlockGet(ctx context.Context, c string, w io.Writer) error {
	id, err := parseCID(c)
	if err != nil {
		return err
	}
	data, err := n.store.Get(ctx, id)
	if err != nil {
		return err
	}
	if _, err := w.Write(data); err != nil {
		return fmt.Errorf("write block %s: %w", id, err)
	}
	return nil
}

// BlockStat describes one local block.
func (n *Node) BlockStat(ctx context.Context, c string) (*core.BlockStat, error) {
	id, err := parseCID(c)
	if err != nil {
		return nil, err
	}
	size, err := n.store.GetSize(ctx, id)
	if err != nil {
		return nil, err
	}
	return &core.BlockStat{Cid: id.String(), Size: size}, nil
}

func parseCID(s string) (cid.Cid, error) {
	c, err := cid.Decode(s)
	if err != nil {
		return cid.Undef, fmt.Errorf("%w: %q is not a CID: %v", core.ErrBadInput, s, err)
	}
	return c, nil
}

// Remove deletes one of this node's files: it unpins the root (its owner
// and pending pins) and, online, asks every replica it knows or finds to
// drop it (see replicate.Replicator.Remove) and asks the collector for a
// GC; offline it collects at once, and the replicas free the file when
// their leases end. A root not pinned here as the node's own file is an
// error wrapping [core.ErrNotMine].
func (n *Node) Remove(ctx context.Context, ref string) error {
	root, err := parseCID(ref)
	if err != nil {
		return err
	}
	if err := n.mustOwn(ctx, root); err != nil {
		return fmt.Errorf("rm %s: %w", root, err)
	}
	for _, reason := range []string{PinOwner, replicate.PinPending} {
		if err := n.store.Unpin(ctx, root, reason); err != nil {
			return fmt.Errorf("rm %s: unpin: %w", root, err)
		}
	}
	if n.net == nil {
		if _, err := n.RepoGC(ctx); err != nil {
			return fmt.Errorf("rm %s: %w", root, err)
		}
		return nil
	}
	removed := n.net.repl.Remove(ctx, root)
	n.net.collect.Request()
	log.Infow("removed", "cid", root, "replicas asked to drop it", len(removed))
	return nil
}

// mustOwn returns nil if root is pinned here as the node's own file, and
// an error wrapping [core.ErrNotMine] if not.
func (n *Node) mustOwn(ctx context.Context, root cid.Cid) error {
	pins, err := n.store.PinsOf(ctx, root)
	if err != nil {
		return fmt.Errorf("pins of %s: %w", root, err)
	}
	for _, p := range pins {
		if p.Reason == PinOwner {
			return nil
		}
	}
	return core.ErrNotMine
}

// RepoVerify rehashes every block and walks every pin. Bad blocks are in
// the report, not in the error.
func (n *Node) RepoVerify(ctx context.Context) (*core.VerifyReport, error) {
	rep, err := n.store.Verify(ctx, dag.Links)
	if err != nil {
		return nil, fmt.Errorf("verify: %w", err)
	}
	return &core.VerifyReport{Checked: rep.Checked, Corrupt: cidStrings(rep.Corrupt), Missing: cidStrings(rep.Missing)}, nil
}

func cidStrings(cs []cid.Cid) []string {
	out := make([]string, len(cs))
	for i, c := range cs {
		out[i] = c.String()
	}
	return out
}

// RepoGC removes every block that no pin reaches.
func (n *Node) RepoGC(ctx context.Context) (*core.GCResult, error) {
	res, err := n.store.GC(ctx, dag.Links, blockstore.WithLeaves(dag.LinksAreLeaves))
	if err != nil {
		return nil, fmt.Errorf("gc: %w", err)
	}
	return &core.GCResult{Removed: res.Removed, Freed: res.Freed}, nil
}

// RepoStat reports the repo's size and contents, and how its space
// divides into own files, replicas held for others and cache: one walk of
// every pin (GC's mark), so it costs what a GC's mark costs. The store's
// totals are read before the walk, so a block added meanwhile may make
// Cached a little short.
func (n *Node) RepoStat(ctx context.Context) (*core.RepoStat, error) {
	st, err := n.store.Stat(ctx)
	if err != nil {
		return nil, fmt.Errorf("stat: %w", err)
	}
	pins, err := n.store.Pins(ctx)
	if err != nil {
		return nil, fmt.Errorf("list pins: %w", err)
	}
	files := 0
	for _, p := range pins {
		if p.Reason == PinOwner {
			files++
		}
	}
	own, offered, err := usage(ctx, n.store)
	if err != nil {
		return nil, fmt.Errorf("measure space: %w", err)
	}
	quota := n.repo.Config.Storage.Quota
	return &core.RepoStat{
		Path: n.repo.Path, Version: config.RepoVersion, Blocks: st.Blocks, Bytes: st.Bytes, Pins: st.Pins, Files: files,
		Own: own, Offered: offered, Cached: max(st.Bytes-own-offered, 0),
		Quota: quota, FreeToOffer: max(quota-offered, 0),
	}, nil
}

// ID describes the node; offline it has no addresses.
func (n *Node) ID(ctx context.Context) (*core.IDInfo, error) {
	info := &core.IDInfo{ID: n.repo.PeerID().String(), Addrs: []string{}, AgentVersion: n.agent, Protocols: ourProtocols()}
	if n.net != nil {
		n.net.describe(info)
	}
	return info, nil
}
