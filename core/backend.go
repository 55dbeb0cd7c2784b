package core

import (
	"context"
	"io"
)

// The interfaces below are implemented by *node.Node and by the API client
// (*api.Client). Their methods are safe for concurrent use; each takes the
// request's context and stops when it is cancelled. Errors are classified
// by [KindOf] the same way on both sides.

// Files is the user's files.
//
// Cat calls open once the file's root is authenticated and before the first
// byte, and streams the file into the writer open returns; an error from open
// is returned as is. Refs calls fn for every block of ref, root first, and
// returns the first error fn returns.
type Files interface {
	Add(ctx context.Context, r io.Reader, opt AddOptions) (*AddResult, error)
	Cat(ctx context.Context, ref string, open func(FileInfo) (io.Writer, error)) error
	Ls(ctx context.Context) ([]ListEntry, error)
	Share(ctx context.Context, ref string) (string, error)
	Refs(ctx context.Context, ref string, fn func(cid string) error) error
	// Remove deletes one of this node's files: it unpins it, asks every
	// replica it knows to drop it (online), and collects the garbage.
	// A root this node does not own is an error of kind [KindNotFound].
	Remove(ctx context.Context, ref string) error
}

// Blocks is the raw, encrypted blocks of the local store. A block that is
// not there is an error of kind [KindNotFound].
type Blocks interface {
	BlockGet(ctx context.Context, cid string, w io.Writer) error
	BlockStat(ctx context.Context, cid string) (*BlockStat, error)
}

// Repo is the maintenance of the local repo. Bad blocks found by RepoVerify
// are in its report, not in its error.
type Repo interface {
	RepoVerify(ctx context.Context) (*VerifyReport, error)
	RepoGC(ctx context.Context) (*GCResult, error)
	RepoStat(ctx context.Context) (*RepoStat, error)
}

// Network is the node's identity and its peers. ID works offline (without
// addresses); the others return [ErrOffline] there.
type Network interface {
	ID(ctx context.Context) (*IDInfo, error)
	Connect(ctx context.Context, addr string) error
	Peers(ctx context.Context, all bool) ([]PeerInfo, error)
	Status(ctx context.Context, cid string) (*StatusInfo, error)
	// Repair checks the replicas of one of this node's files (of every
	// one when cid is empty) now, and places new ones where fewer than
	// the goal are live. It returns one report per root checked.
	Repair(ctx context.Context, cid string) ([]RepairReport, error)
}

// Backend is every concern: what the CLI's commands run on, a running
// daemon's API client or an offline node.
type Backend interface {
	Files
	Blocks
	Repo
	Network
}
