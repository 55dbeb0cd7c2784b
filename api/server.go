package api

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	stdlog "log"
	"net"
	"net/http"
	"reflect"
	"sync"
	"time"

	logging "github.com/ipfs/go-log/v2"
	"go.uber.org/zap"
	"go.uber.org/zap/zapcore"

	"github.com/casd/casd/core"
)

var log = logging.Logger("casd/api")

// Backends are the concerns a [Server] serves, each on its own endpoints.
// A nil concern is not served: its endpoints answer an error of kind
// [core.KindBusy], "api: this daemon does not serve <concern>", after the
// request's arguments are checked.
type Backends struct {
	Files   core.Files   // add, cat, ls, share, refs, rm
	Blocks  core.Blocks  // block/get, block/stat
	Repo    core.Repo    // repo/verify, repo/gc, repo/stat
	Network core.Network // id, connect, peers, status, repair
}

// Server serves [Backends] over HTTP. Create it with [NewServer] or
// [NewServerOf], run it with [Server.Serve] and stop it with
// [Server.Shutdown].
type Server struct {
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

// NewServer returns a server of every concern of b: in the daemon, a
// *node.Node. It starts nothing.
func NewServer(b core.Backend) *Server {
	return NewServerOf(Backends{Files: b, Blocks: b, Repo: b, Network: b})
}

// NewServerOf returns a server of the concerns in bs; the nil ones are not
// served. It starts nothing.
func NewServerOf(bs Backends) *Server {
	ctx, cancel := context.WithCancel(context.Background())
	s := &Server{ctx: ctx, cancel: cancel}
	bs = bs.orUnserved()
	mux := http.NewServeMux()
	for _, endpoints := range []map[string]http.HandlerFunc{
		filesEndpoints(bs.Files),
		blocksEndpoints(bs.Blocks),
		repoEndpoints(bs.Repo),
		networkEndpoints(bs.Network),
	} {
		for path, h := range endpoints {
			mux.Handle("/api/v0/"+path, s.wrap(h))
		}
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
		ErrorLog:    httpErrorLog(),
	}
	return s
}

// httpErrorLog routes net/http's own complaints (a client that hangs up, a
// malformed request) to the package logger at debug level.
func httpErrorLog() *stdlog.Logger {
	l, err := zap.NewStdLogAt(log.Desugar(), zapcore.DebugLevel)
	if err != nil {
		return nil // only for an invalid level; nil means the standard logger
	}
	return l
}

// Serve accepts connections on l and serves them until [Server.Shutdown].
// It returns nil after Shutdown, and the listener's error otherwise. l is
// closed when Serve returns.
func (s *Server) Serve(l net.Listener) error {
	err := s.srv.Serve(l)
	if errors.Is(err, http.ErrServerClosed) {
		return nil
	}
	return fmt.Errorf("api: serve: %w", err)
}

// Shutdown stops the server: it closes the listeners, lets the requests in
// flight finish until ctx is done, then cancels their contexts and closes
// their connections. It returns once every handler has returned (a backend
// that ignores its context delays it), with ctx's error if the grace period
// ran out.
func (s *Server) Shutdown(ctx context.Context) error {
	err := s.srv.Shutdown(ctx)
	if err != nil {
		s.cancel()
		err = errors.Join(fmt.Errorf("api: shutdown: %w", err), s.srv.Close())
	}
	s.mu.Lock()
	s.closing = true
	s.mu.Unlock()
	s.handlers.Wait()
	s.cancel()
	return err
}

// wrap admits a request: POST only, and none once Shutdown waits.
func (s *Server) wrap(h http.HandlerFunc) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if r.Method != http.MethodPost {
			w.Header().Set("Allow", http.MethodPost)
			writeError(w, r, badInput("method "+r.Method+" not allowed, use POST"))
			return
		}
		s.mu.Lock()
		closing := s.closing
		if !closing {
			s.handlers.Add(1)
		}
		s.mu.Unlock()
		if closing {
			writeError(w, r, &Error{Code: core.KindBusy, Message: "api: daemon shutting down"})
			return
		}
		defer s.handlers.Done()
		h(w, r)
	})
}

// writeError sends err as the whole response: the status of its kind and
// the JSON of [Error].
func writeError(w http.ResponseWriter, r *http.Request, err error) {
	e := toError(err)
	status := statusOf(e.Code)
	log.Debugw("request failed", "path", r.URL.Path, "status", status, "err", e.Message)
	h := w.Header()
	h.Set("Content-Type", "application/json")
	h.Set("X-Content-Type-Options", "nosniff")
	w.WriteHeader(status)
	_ = json.NewEncoder(w).Encode(e) // the client is gone if this fails
}

// jsonEndpoint serves an endpoint that answers with one JSON document: the
// value fn returns, or its error with the status of the error's kind. fn
// gets the request's context. A nil slice goes out as [] rather than null;
// a nil pointer without an error is an error of the backend, so that the
// client always gets a value. Its client side is [callJSON].
func jsonEndpoint[T any](fn func(ctx context.Context, r *http.Request) (T, error)) http.HandlerFunc {
	return func(w http.ResponseWriter, r *http.Request) {
		v, err := fn(r.Context(), r)
		if err == nil && isNilPointer(v) {
			err = fmt.Errorf("api: %s returned no result", r.URL.Path)
		}
		if err != nil {
			writeError(w, r, err)
			return
		}
		b := []byte("[]")
		if rv := reflect.ValueOf(v); rv.Kind() != reflect.Slice || !rv.IsNil() {
			if b, err = json.Marshal(v); err != nil {
				writeError(w, r, fmt.Errorf("api: encode %s response: %w", r.URL.Path, err))
				return
			}
		}
		w.Header().Set("Content-Type", "application/json")
		_, _ = w.Write(append(b, '\n'))
	}
}

// isNilPointer reports whether v is a nil pointer.
func isNilPointer(v any) bool {
	rv := reflect.ValueOf(v)
	return rv.Kind() == reflect.Pointer && rv.IsNil()
}

// noArg adapts a backend call without arguments to [jsonEndpoint].
func noArg[T any](fn func(context.Context) (T, error)) func(context.Context, *http.Request) (T, error) {
	return func(ctx context.Context, _ *http.Request) (T, error) { return fn(ctx) }
}

// withArg adapts a backend call on the required query argument "arg" to
// [jsonEndpoint].
func withArg[T any](fn func(context.Context, string) (T, error)) func(context.Context, *http.Request) (T, error) {
	return func(ctx context.Context, r *http.Request) (T, error) {
		v, err := queryArg(r)
		if err != nil {
			var zero T
			return zero, err
		}
		return fn(ctx, v)
	}
}

// queryArg returns the required query argument "arg".
func queryArg(r *http.Request) (string, error) {
	v := r.URL.Query().Get("arg")
	if v == "" {
		return "", badInput("missing argument arg")
	}
	return v, nil
}

// arg returns the required query argument "arg" of a streaming endpoint,
// or writes the error.
func arg(w http.ResponseWriter, r *http.Request) (string, bool) {
	v, err := queryArg(r)
	if err != nil {
		writeError(w, r, err)
		return "", false
	}
	return v, true
}

// orUnserved returns bs with each nil concern replaced by [unserved].
func (bs Backends) orUnserved() Backends {
	if bs.Files == nil {
		bs.Files = unserved("files")
	}
	if bs.Blocks == nil {
		bs.Blocks = unserved("blocks")
	}
	if bs.Repo == nil {
		bs.Repo = unserved("repo")
	}
	if bs.Network == nil {
		bs.Network = unserved("network")
	}
	return bs
}

// unserved stands in for a concern the server was not given, named by its
// value: every method fails at once with the error that says so. Standing
// in (rather than a nil check per endpoint) keeps each endpoint's
// registration one line.
type unserved string

var _ core.Backend = unserved("")

func (u unserved) err() error {
	return &Error{Code: core.KindBusy, Message: "api: this daemon does not serve " + string(u)}
}

func (u unserved) Add(context.Context, io.Reader, core.AddOptions) (*core.AddResult, error) {
	return nil, u.err()
}
func (u unserved) Cat(context.Context, string, func(core.FileInfo) (io.Writer, error)) error {
	return u.err()
}
func (u unserved) Ls(context.Context) ([]core.ListEntry, error)           { return nil, u.err() }
func (u unserved) Share(context.Context, string) (string, error)          { return "", u.err() }
func (u unserved) Refs(context.Context, string, func(string) error) error { return u.err() }
func (u unserved) BlockGet(context.Context, string, io.Writer) error      { return u.err() }
func (u unserved) BlockStat(context.Context, string) (*core.BlockStat, error) {
	return nil, u.err()
}
func (u unserved) RepoVerify(context.Context) (*core.VerifyReport, error) { return nil, u.err() }
func (u unserved) RepoGC(context.Context) (*core.GCResult, error)         { return nil, u.err() }
func (u unserved) RepoStat(context.Context) (*core.RepoStat, error)       { return nil, u.err() }
func (u unserved) ID(context.Context) (*core.IDInfo, error)               { return nil, u.err() }
func (u unserved) Connect(context.Context, string) error                  { return u.err() }
func (u unserved) Peers(context.Context, bool) ([]core.PeerInfo, error)   { return nil, u.err() }
func (u unserved) Status(context.Context, string) (*core.StatusInfo, error) {
	return nil, u.err()
}
func (u unserved) Remove(context.Context, string) error { return u.err() }
func (u unserved) Repair(context.Context, string) ([]core.RepairReport, error) {
	return nil, u.err()
}
