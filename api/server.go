package api

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/url"
	"strconv"
	"sync"
	"time"

	logging "github.com/ipfs/go-log/v2"
	"go.uber.org/zap"
	"go.uber.org/zap/zapcore"

	"github.com/casd/casd/node"
)

var log = logging.Logger("casd/api")

// Header and trailer names of the protocol.
const (
	// HeaderFile carries the [node.FileInfo] of a cat response as JSON
	// whose non-ASCII characters are \u-escaped.
	HeaderFile = "X-Casd-File"
	// TrailerError carries an [Error] as JSON when a cat or block/get fails
	// after its body has started.
	TrailerError = "X-Casd-Error"
)

// progressStep is how many stored bytes an add lets pass between two
// progress lines.
const progressStep = 256 << 10

// Backend is what the server serves: the operations of a node. *node.Node
// implements it, and so does [*Client], so the CLI runs its commands on
// either. The methods must be safe for concurrent use; each gets the
// request's context and must stop when it is cancelled.
//
// Cat calls open once the file's root is authenticated and before the
// first byte, and streams the file into the writer open returns; an error
// from open is returned as is. Refs calls fn for every block of ref, root
// first, and returns the first error fn returns.
type Backend interface {
	Add(ctx context.Context, r io.Reader, opt node.AddOptions) (*node.AddResult, error)
	Cat(ctx context.Context, ref string, open func(node.FileInfo) (io.Writer, error)) error
	Ls(ctx context.Context) ([]node.ListEntry, error)
	Share(ctx context.Context, cid string) (string, error)
	Refs(ctx context.Context, ref string, fn func(cid string) error) error
	BlockGet(ctx context.Context, cid string, w io.Writer) error
	BlockStat(ctx context.Context, cid string) (*node.BlockStat, error)
	RepoVerify(ctx context.Context) (*node.VerifyReport, error)
	RepoGC(ctx context.Context) (*node.GCResult, error)
	RepoStat(ctx context.Context) (*node.RepoStat, error)
	ID(ctx context.Context) (*node.IDInfo, error)
	Connect(ctx context.Context, addr string) error
	Peers(ctx context.Context, all bool) ([]node.PeerInfo, error)
	Status(ctx context.Context, cid string) (*node.StatusInfo, error)
}

// Server serves a [Backend] over HTTP. Create it with [NewServer], run it
// with [Server.Serve] and stop it with [Server.Shutdown].
type Server struct {
	b   Backend
	srv *http.Server

	// ctx is the parent of every request's context; Shutdown cancels it
	// when its grace period runs out.
	ctx    context.Context
	cancel context.CancelFunc

	// handlers counts the handlers running; Shutdown waits for them.
	handlers sync.WaitGroup
	// mu guards closing.
	mu      sync.Mutex
	closing bool
}

// NewServer returns a server of b. It starts nothing.
func NewServer(b Backend) *Server {
	ctx, cancel := context.WithCancel(context.Background())
	s := &Server{b: b, ctx: ctx, cancel: cancel}
	mux := http.NewServeMux()
	for path, h := range map[string]http.HandlerFunc{
		"add":         s.add,
		"cat":         s.cat,
		"ls":          s.ls,
		"share":       s.share,
		"refs":        s.refs,
		"block/get":   s.blockGet,
		"block/stat":  s.blockStat,
		"repo/verify": s.repoVerify,
		"repo/gc":     s.repoGC,
		"repo/stat":   s.repoStat,
		"id":          s.id,
		"connect":     s.connect,
		"peers":       s.peers,
		"status":      s.status,
	} {
		mux.Handle("/api/v0/"+path, s.wrap(h))
	}
	mux.Handle("/", s.wrap(func(w http.ResponseWriter, r *http.Request) {
		writeError(w, r, badInput("unknown endpoint "+r.URL.Path))
	}))
	s.srv = &http.Server{
		Handler:           mux,
		ReadHeaderTimeout: 30 * time.Second,
		IdleTimeout:       2 * time.Minute,
		// No read or write timeouts: bodies stream for as long as the
		// file takes.
		BaseContext: func(net.Listener) context.Context { return s.ctx },
		ErrorLog:    zap.NewStdLog(log.Desugar().WithOptions(zap.IncreaseLevel(zapcore.DebugLevel))),
	}
	s.srv.ErrorLog = zapStdLog()
	return s
}

// zapStdLog routes net/http's own complaints (a client that hangs up, a
// malformed request) to the package logger at debug level.
func zapStdLog() *stdlog {
	l, err := zap.NewStdLogAt(log.Desugar(), zapcore.DebugLevel)
	if err != nil {
		return nil // only fails for an invalid level
	}
	return l
}
