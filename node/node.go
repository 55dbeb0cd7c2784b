package node

import (
	"context"
	"errors"
	"fmt"
	"sync"

	"github.com/casd/casd/blockstore"
	"github.com/casd/casd/config"
	"github.com/casd/casd/core"
	"github.com/casd/casd/crypt"
)

// AgentVersion is what the node calls itself to peers and in `casd id`.
var AgentVersion = "casd/0.1.0-dev"

// Pin reasons of the node's own files: PinOwner for every file added here,
// PinPending as well while the file has fewer replicas than its goal.
const (
	PinOwner   = "owner"
	PinPending = "pending-replication"
)

// A node serves every concern of the API.
var _ core.Backend = (*Node)(nil)

// Options configure [Open].
type Options struct {
	// Online starts the libp2p host, the DHT and the protocols. Offline, the
	// node serves its own repo only.
	Online bool
}

// Node is one casd node: its repo, block store and (online) its network.
// Its methods are safe for concurrent use.
type Node struct {
	repo    *config.Repo
	secrets crypt.Secrets
	store   *blockstore.Store
	net     *online // nil when offline

	closeOnce sync.Once
	closeErr  error
}

// Open opens the node of repo. The caller holds the repo's lock for the
// node's lifetime. A failed Open leaves nothing open.
func Open(ctx context.Context, repo *config.Repo, opt Options) (*Node, error) {
	store, err := blockstore.Open(repo.BlocksDir(), repo.MetaPath())
	if err != nil {
		return nil, fmt.Errorf("open block store: %w", err)
	}
	n := &Node{
		repo:    repo,
		secrets: crypt.Secrets{Master: crypt.Key(repo.Keys.Master), Convergence: crypt.Key(repo.Keys.Convergence)},
		store:   store,
	}
	if opt.Online {
		if n.net, err = startNetwork(ctx, n); err != nil {
			return nil, errors.Join(err, store.Close())
		}
	}
	return n, nil
}

// Close stops the network, if any, then closes the block store. Calls
// after the first return the first's result.
func (n *Node) Close() error {
	n.closeOnce.Do(func() {
		var err error
		if n.net != nil {
			err = n.net.close()
		}
		n.closeErr = errors.Join(err, n.store.Close())
	})
	return n.closeErr
}

// Online reports whether the node runs a network.
func (n *Node) Online() bool { return n.net != nil }
