package api

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"sync"

	"github.com/casd/casd/core"
)

// The helpers below are both sides of the streaming responses: NDJSON
// lines (add, refs), and raw bytes with a late error in the trailer (cat,
// block/get).

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

// readLines decodes the NDJSON lines of a stream response and calls fn for
// each. An error line ends the stream with its [*Error]; errors of fn are
// returned as they are.
func readLines(endpoint string, r io.Reader, fn func(*streamLine) error) error {
	dec := json.NewDecoder(r)
	for {
		var l streamLine
		err := dec.Decode(&l)
		if err == io.EOF {
			return nil
		}
		if err != nil {
			var se *json.SyntaxError
			var te *json.UnmarshalTypeError
			if errors.As(err, &se) || errors.As(err, &te) {
				return fmt.Errorf("%w: %s: %w", ErrBadResponse, endpoint, err)
			}
			return fmt.Errorf("api: %s: read response: %w", endpoint, err)
		}
		if l.Error != nil {
			if l.Error.Code == "" {
				l.Error.Code = core.KindOther
			}
			return l.Error
		}
		if err := fn(&l); err != nil {
			return err
		}
	}
}

// download runs an endpoint that answers with raw bytes and may report a
// late error in the trailer.
func (c *Client) download(ctx context.Context, endpoint, arg string, open func(http.Header) (io.Writer, error)) error {
	resp, err := c.post(ctx, endpoint, query("arg", arg), nil)
	if err != nil {
		return err
	}
	defer resp.Body.Close()
	w, err := open(resp.Header)
	if err != nil {
		return err
	}
	ew := &errWriter{w: w}
	if _, err := io.Copy(ew, resp.Body); err != nil {
		if ew.err != nil {
			return fmt.Errorf("api: %s: write: %w", endpoint, ew.err)
		}
		return fmt.Errorf("api: %s: read response: %w", endpoint, err)
	}
	if v := resp.Trailer.Get(TrailerError); v != "" {
		var e Error
		if err := json.Unmarshal([]byte(v), &e); err != nil || e.Message == "" {
			return fmt.Errorf("%w: %s: trailer %s: %q", ErrBadResponse, endpoint, TrailerError, v)
		}
		if e.Code == "" {
			e.Code = core.KindOther
		}
		return &e
	}
	return nil
}

// errWriter remembers the error of its writer, to tell it from a read error.
type errWriter struct {
	w   io.Writer
	err error
}

func (ew *errWriter) Write(p []byte) (int, error) {
	n, err := ew.w.Write(p)
	if err != nil {
		ew.err = err
	}
	return n, err
}
