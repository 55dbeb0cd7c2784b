package dag

import (
	"context"
	"fmt"

	"github.com/ipfs/go-cid"
)

// Walk calls fn with the CID of every block of the file rooted at root,
// root first, then depth-first in file order. It needs no key: links are
// in the clear. Manifest blocks are fetched and verified; chunks are not
// fetched (the height in the clear says which links are chunks). A root
// that is a chunk gives [ErrNotFile].
func Walk(ctx context.Context, get BlockGetter, root cid.Cid, fn func(c cid.Cid, kind byte) error) error {
	m, err := getRoot(ctx, get, root)
	if err != nil {
		return err
	}
	if err := fn(root, KindRoot); err != nil {
		return err
	}
	return walkLinks(ctx, get, m, fn)
}

func walkLinks(ctx context.Context, get BlockGetter, m *manifestBlock, fn func(c cid.Cid, kind byte) error) error {
	for _, c := range m.links {
		if m.height == 0 {
			if err := fn(c, KindChunk); err != nil {
				return err
			}
			continue
		}
		if err := fn(c, KindNode); err != nil {
			return err
		}
		data, err := getVerified(ctx, get, c)
		if err != nil {
			return err
		}
		child, err := parseManifestBlock(data)
		if err != nil {
			return fmt.Errorf("walk %s: %w", c, err)
		}
		if child.kind != KindNode || child.height != m.height-1 {
			return fmt.Errorf("walk %s: %w: kind %d height %d under height %d", c, ErrMalformed, child.kind, child.height, m.height)
		}
		if err := walkLinks(ctx, get, child, fn); err != nil {
			return err
		}
	}
	return nil
}
