package node

import (
	"cmp"
	"context"
	"errors"
	"fmt"
	"sync"

	"github.com/casd/casd/blockstore"
	"github.com/casd/casd/config"
	"github.com/casd/casd/core"
	"github.com/casd/casd/crypt"
	"github.com/casd/casd/node/internal/replicate"
)

// PinOwner is the pin reason of every file added on this node. While a
// file has fewer replicas than its goal it also carries a pin of reason
// replicate.PinPending.
const PinOwner = replicate.PinOwner

// DefaultAgentVersion is what a node calls itself when [Options] name no
// agent version.
const DefaultAgentVersion = "casd/dev"

// A node serves every concern of the API.
var _ core.Backend = (*Node)(nil)

// Options configure [Open].
type Options struct {
	// Online starts the libp2p host, the DHT and the protocols. Offline, the
	// node serves its own repo only.
	Online bool
	// AgentVersion is what the node calls itself to peers (identify) and
	// in `casd id`, such as "casd/0.2.0"; empty means DefaultAgentVersion.
	AgentVersion string
}

// Node is one casd node: its repo, block store and (online) its network.
// Its methods are safe for concurrent use.
type Node struct {
	repo    *config.Repo
	secrets crypt.Secrets
	store   *blockstore.Store
	agent   string
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
		agent:   cmp.Or(opt.AgentVersion, DefaultAgentVersion),
	}
	if opt.Online {
		if n.net, err = startNetwork(ctx, n, n.agent); err != nil {
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
