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
	"strconv"
	"sync"
	"time"

	logging "github.com/ipfs/go-log/v2"
	"go.uber.org/zap"
	"go.uber.org/zap/zapcore"

	"github.com/casd/casd/core"
)

var log = logging.Logger("casd/api")

// Header and trailer names of the protocol.
const (
	// HeaderFile carries the [core.FileInfo] of a cat response as JSON
	// whose non-ASCII characters are \u-escaped.
	HeaderFile = "X-Casd-File"
	// TrailerError carries an [Error] as JSON when a cat or block/get fails
	// after its body has started.
	TrailerError = "X-Casd-Error"
)

// progressStep is how many stored bytes an add lets pass between two
// progress lines.
const progressStep = 256 << 10

// Backend is what the server serves: every concern of a node. The daemon
// serves a *node.Node; [*Client] implements it too, so the CLI runs its
// commands on either.
type Backend = core.Backend

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

// writeValue sends v as a JSON document, or err.
func writeValue(w http.ResponseWriter, r *http.Request, v any, err error) {
	if err != nil {
		writeError(w, r, err)
		return
	}
	b, err := json.Marshal(v)
	if err != nil {
		writeError(w, r, fmt.Errorf("api: encode %s response: %w", r.URL.Path, err))
		return
	}
	w.Header().Set("Content-Type", "application/json")
	_, _ = w.Write(append(b, '\n'))
}

// arg returns the required query argument "arg", or writes the error.
func arg(w http.ResponseWriter, r *http.Request) (string, bool) {
	v := r.URL.Query().Get("arg")
	if v == "" {
		writeError(w, r, badInput("missing argument arg"))
		return "", false
	}
	return v, true
}

// streamLine is one line of an NDJSON response (add, refs).
type streamLine struct {
	Progress *int64          `json:"progress,omitempty"`
	Cid      string          `json:"cid,omitempty"`
	Result   json.RawMessage `json:"result,omitempty"`
	Error    *Error          `json:"error,omitempty"`
}

// lineWriter writes an NDJSON response. Its methods may be called from any
// goroutine (a backend may report progress from its own).
type lineWriter struct {
	w  http.ResponseWriter
	r  *http.Request
	rc *http.ResponseController

	// mu guards the fields below and the ResponseWriter.
	mu      sync.Mutex
	started bool  // the status line is out
	done    bool  // the handler is returning; no more writes
	last    int64 // last progress reported
}

func newLineWriter(w http.ResponseWriter, r *http.Request) *lineWriter {
	return &lineWriter{w: w, r: r, rc: http.NewResponseController(w)}
}

// writeLocked sends one line and flushes it.
func (lw *lineWriter) writeLocked(l *streamLine) error {
	if lw.done {
		return errors.New("api: response already finished")
	}
	if !lw.started {
		lw.started = true
		lw.w.Header().Set("Content-Type", "application/x-ndjson")
		lw.w.Header().Set("X-Content-Type-Options", "nosniff")
		lw.w.WriteHeader(http.StatusOK)
	}
	b, err := json.Marshal(l)
	if err != nil {
		return fmt.Errorf("api: encode line: %w", err)
	}
	if _, err := lw.w.Write(append(b, '\n')); err != nil {
		return fmt.Errorf("api: write response: %w", err)
	}
	if err := lw.rc.Flush(); err != nil {
		return fmt.Errorf("api: flush response: %w", err)
	}
	return nil
}

// line sends l.
func (lw *lineWriter) line(l *streamLine) error {
	lw.mu.Lock()
	defer lw.mu.Unlock()
	return lw.writeLocked(l)
}

// progress is the AddOptions.Progress of a served add: it sends a line per
// progressStep bytes stored.
func (lw *lineWriter) progress(stored int64) {
	lw.mu.Lock()
	defer lw.mu.Unlock()
	if lw.done || stored-lw.last < progressStep {
		return
	}
	lw.last = stored
	_ = lw.writeLocked(&streamLine{Progress: &stored}) // a gone client cancels the add
}

// finish ends the response with result or err. An error before the first
// line is a plain error response with its status.
func (lw *lineWriter) finish(result any, err error) {
	lw.mu.Lock()
	defer lw.mu.Unlock()
	if err == nil && result != nil {
		b, merr := json.Marshal(result)
		if merr == nil {
			err = lw.writeLocked(&streamLine{Result: b})
		} else {
			err = fmt.Errorf("api: encode result: %w", merr)
		}
	}
	switch {
	case err != nil && !lw.started:
		writeError(lw.w, lw.r, err)
	case err != nil:
		e := toError(err)
		log.Debugw("stream failed", "path", lw.r.URL.Path, "err", e.Message)
		_ = lw.writeLocked(&streamLine{Error: e})
	case !lw.started: // an empty stream
		lw.started = true
		lw.w.Header().Set("Content-Type", "application/x-ndjson")
		lw.w.WriteHeader(http.StatusOK)
	}
	lw.done = true
}

func (s *Server) add(w http.ResponseWriter, r *http.Request) {
	q := r.URL.Query()
	opt := core.AddOptions{Name: q.Get("name"), MediaType: q.Get("mediaType")}
	if m := q.Get("mode"); m != "" {
		v, err := strconv.ParseUint(m, 0, 32)
		if err != nil {
			writeError(w, r, badInput("bad mode "+strconv.Quote(m)))
			return
		}
		opt.Mode = uint32(v)
	}
	lw := newLineWriter(w, r)
	// Progress lines go out while the body still comes in. Without full
	// duplex, net/http's HTTP/1 server would cut the body off at the first
	// flush.
	if err := lw.rc.EnableFullDuplex(); err != nil {
		log.Debugw("full duplex unavailable", "err", err)
	}
	opt.Progress = lw.progress
	// net/http notices a client that hangs up only once the body is read
	// to its end; before that, a failed read of the body is the sign.
	ctx, cancel := context.WithCancel(r.Context())
	defer cancel()
	res, err := s.b.Add(ctx, &cancelOnError{r: r.Body, cancel: cancel}, opt)
	if err == nil && res == nil {
		err = errors.New("api: add returned no result")
	}
	lw.finish(res, err)
}

// cancelOnError cancels the request's work when its body breaks.
type cancelOnError struct {
	r      io.Reader
	cancel context.CancelFunc
}

func (c *cancelOnError) Read(p []byte) (int, error) {
	n, err := c.r.Read(p)
	if err != nil && err != io.EOF {
		c.cancel()
	}
	return n, err
}

func (s *Server) refs(w http.ResponseWriter, r *http.Request) {
	ref, ok := arg(w, r)
	if !ok {
		return
	}
	lw := newLineWriter(w, r)
	err := s.b.Refs(r.Context(), ref, func(c string) error {
		return lw.line(&streamLine{Cid: c})
	})
	lw.finish(nil, err)
}

// bodyWriter records whether the response body has started.
type bodyWriter struct {
	w     http.ResponseWriter
	wrote bool
}

func (bw *bodyWriter) Write(p []byte) (int, error) {
	bw.wrote = true
	return bw.w.Write(p)
}

// startBody prepares a raw byte response whose errors can come late.
func startBody(w http.ResponseWriter) *bodyWriter {
	h := w.Header()
	h.Set("Content-Type", "application/octet-stream")
	h.Set("X-Content-Type-Options", "nosniff")
	h.Set("Trailer", TrailerError)
	return &bodyWriter{w: w}
}

// endBody reports err: as the response if no byte went out yet, else in
// the trailer.
func endBody(w http.ResponseWriter, r *http.Request, bw *bodyWriter, err error) {
	if err == nil {
		return
	}
	if !bw.wrote {
		w.Header().Del("Trailer")
		w.Header().Del(HeaderFile)
		writeError(w, r, err)
		return
	}
	e := toError(err)
	log.Debugw("body failed", "path", r.URL.Path, "err", e.Message)
	v, herr := headerJSON(e)
	if herr != nil {
		v = `{"kind":"other","message":"api: unencodable error"}`
	}
	w.Header().Set(TrailerError, v)
}

func (s *Server) cat(w http.ResponseWriter, r *http.Request) {
	ref, ok := arg(w, r)
	if !ok {
		return
	}
	bw := startBody(w)
	err := s.b.Cat(r.Context(), ref, func(info core.FileInfo) (io.Writer, error) {
		v, err := headerJSON(info)
		if err != nil {
			return nil, fmt.Errorf("api: encode file info: %w", err)
		}
		w.Header().Set(HeaderFile, v)
		return bw, nil
	})
	endBody(w, r, bw, err)
}

func (s *Server) blockGet(w http.ResponseWriter, r *http.Request) {
	c, ok := arg(w, r)
	if !ok {
		return
	}
	bw := startBody(w)
	endBody(w, r, bw, s.b.BlockGet(r.Context(), c, bw))
}

func (s *Server) ls(w http.ResponseWriter, r *http.Request) {
	v, err := s.b.Ls(r.Context())
	if v == nil {
		v = []core.ListEntry{}
	}
	writeValue(w, r, v, err)
}

// shareResponse is the body of a share response.
type shareResponse struct {
	Capability string `json:"capability"`
}

func (s *Server) share(w http.ResponseWriter, r *http.Request) {
	c, ok := arg(w, r)
	if !ok {
		return
	}
	capa, err := s.b.Share(r.Context(), c)
	writeValue(w, r, shareResponse{Capability: capa}, err)
}

func (s *Server) blockStat(w http.ResponseWriter, r *http.Request) {
	c, ok := arg(w, r)
	if !ok {
		return
	}
	v, err := s.b.BlockStat(r.Context(), c)
	writeValue(w, r, v, err)
}

func (s *Server) repoVerify(w http.ResponseWriter, r *http.Request) {
	v, err := s.b.RepoVerify(r.Context())
	writeValue(w, r, v, err)
}

func (s *Server) repoGC(w http.ResponseWriter, r *http.Request) {
	v, err := s.b.RepoGC(r.Context())
	writeValue(w, r, v, err)
}

func (s *Server) repoStat(w http.ResponseWriter, r *http.Request) {
	v, err := s.b.RepoStat(r.Context())
	writeValue(w, r, v, err)
}

func (s *Server) id(w http.ResponseWriter, r *http.Request) {
	v, err := s.b.ID(r.Context())
	writeValue(w, r, v, err)
}

func (s *Server) connect(w http.ResponseWriter, r *http.Request) {
	addr, ok := arg(w, r)
	if !ok {
		return
	}
	writeValue(w, r, struct{}{}, s.b.Connect(r.Context(), addr))
}

func (s *Server) peers(w http.ResponseWriter, r *http.Request) {
	all := false
	if v := r.URL.Query().Get("all"); v != "" {
		var err error
		if all, err = strconv.ParseBool(v); err != nil {
			writeError(w, r, badInput("bad value of all: "+strconv.Quote(v)))
			return
		}
	}
	v, err := s.b.Peers(r.Context(), all)
	if v == nil {
		v = []core.PeerInfo{}
	}
	writeValue(w, r, v, err)
}

func (s *Server) status(w http.ResponseWriter, r *http.Request) {
	c, ok := arg(w, r)
	if !ok {
		return
	}
	v, err := s.b.Status(r.Context(), c)
	writeValue(w, r, v, err)
}
