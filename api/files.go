package api

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"strconv"

	"github.com/casd/casd/core"
)

// The files concern: add, cat, ls, share, refs, rm ([core.Files]).

// filesEndpoints are the endpoints of f, by path under /api/v0/.
func filesEndpoints(f core.Files) map[string]http.HandlerFunc {
	s := filesServer{f}
	return map[string]http.HandlerFunc{
		"add":   s.add,
		"cat":   s.cat,
		"refs":  s.refs,
		"ls":    jsonEndpoint(noArg(f.Ls)),
		"share": jsonEndpoint(withArg(s.share)),
		"rm":    jsonEndpoint(withArg(s.remove)),
	}
}

// filesServer holds the handlers of the files endpoints that need more
// than a call.
type filesServer struct{ f core.Files }

func (s filesServer) add(w http.ResponseWriter, r *http.Request) {
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
	res, err := s.f.Add(ctx, &cancelOnError{r: r.Body, cancel: cancel}, opt)
	if err == nil && res == nil {
		err = errors.New("api: add returned no result")
	}
	lw.finish(res, err)
	// A body left unread under full duplex makes net/http's server panic
	// when it reads the connection's next request, and the client's next
	// call fails (golang/go#68560). Closing it here reads it to its end
	// (up to 256 KiB; past that the connection is not reused); flushing
	// first gives the client its answer meanwhile.
	_ = lw.rc.Flush()
	_ = r.Body.Close()
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

func (s filesServer) refs(w http.ResponseWriter, r *http.Request) {
	ref, ok := arg(w, r)
	if !ok {
		return
	}
	lw := newLineWriter(w, r)
	err := s.f.Refs(r.Context(), ref, func(c string) error {
		return lw.line(&streamLine{Cid: c})
	})
	lw.finish(nil, err)
}

func (s filesServer) cat(w http.ResponseWriter, r *http.Request) {
	ref, ok := arg(w, r)
	if !ok {
		return
	}
	bw := startBody(w)
	err := s.f.Cat(r.Context(), ref, func(info core.FileInfo) (io.Writer, error) {
		v, err := headerJSON(info)
		if err != nil {
			return nil, fmt.Errorf("api: encode file info: %w", err)
		}
		w.Header().Set(HeaderFile, v)
		return bw, nil
	})
	endBody(w, r, bw, err)
}

// shareResponse is the body of a share response.
type shareResponse struct {
	Capability string `json:"capability"`
}

func (s filesServer) share(ctx context.Context, ref string) (shareResponse, error) {
	capa, err := s.f.Share(ctx, ref)
	return shareResponse{Capability: capa}, err
}

// remove answers {} on success.
func (s filesServer) remove(ctx context.Context, ref string) (struct{}, error) {
	return struct{}{}, s.f.Remove(ctx, ref)
}

// errAddDone ends the pipe of an add's body once the request is over.
var errAddDone = errors.New("api: add finished")

// Add sends the file r holds to the daemon, streaming it (nothing is
// buffered whole), and calls opt.Progress, if set, from the caller's
// goroutine as the daemon stores it.
//
// A goroutine feeds r into the request. Add waits for it before it
// returns, except when ctx is cancelled: then Add returns at once, and the
// goroutine ends as soon as the read from r in progress returns (a file's
// at once, a silent terminal's when it gets input).
func (c *Client) Add(ctx context.Context, r io.Reader, opt core.AddOptions) (*core.AddResult, error) {
	pr, pw := io.Pipe()
	var readErr error // the pump's, set before pumped closes
	pumped := make(chan struct{})
	go func() {
		defer close(pumped)
		ew := &errWriter{w: pw}
		_, err := io.Copy(ew, r)
		if err != nil && ew.err == nil {
			readErr = err
		}
		pw.CloseWithError(err)
	}()
	// The transport reads the body until the request ends, even after a
	// cancellation; ending the pipe is what stops it.
	stop := context.AfterFunc(ctx, func() { pw.CloseWithError(ctx.Err()) })
	res, err := c.add(ctx, pr, opt)
	stop()
	pr.CloseWithError(errAddDone)
	select {
	case <-pumped:
		if err != nil && readErr != nil {
			return nil, fmt.Errorf("api: add: read input: %w", readErr)
		}
	case <-ctx.Done():
		if err == nil {
			err = ctx.Err()
		}
	}
	if err != nil {
		return nil, err
	}
	return res, nil
}

// add runs the add request with body.
func (c *Client) add(ctx context.Context, body io.Reader, opt core.AddOptions) (*core.AddResult, error) {
	q := query("name", opt.Name, "mediaType", opt.MediaType)
	if opt.Mode != 0 {
		q.Set("mode", "0"+strconv.FormatUint(uint64(opt.Mode), 8))
	}
	resp, err := c.post(ctx, "add", q, body)
	if err != nil {
		return nil, err
	}
	defer resp.Body.Close()
	var res *core.AddResult
	err = readLines("add", resp.Body, func(l *streamLine) error {
		switch {
		case l.Progress != nil:
			if opt.Progress != nil {
				opt.Progress(*l.Progress)
			}
		case l.Result != nil:
			res = new(core.AddResult)
			if err := json.Unmarshal(l.Result, res); err != nil {
				return fmt.Errorf("%w: add: result: %w", ErrBadResponse, err)
			}
		}
		return nil
	})
	if err != nil {
		return nil, err
	}
	if res == nil {
		return nil, fmt.Errorf("%w: add: stream ended without a result", ErrBadResponse)
	}
	return res, nil
}

// Cat streams the file ref names (a CID or a capability) into the writer
// open returns; open gets the file's info before the first byte, and its
// error is returned as is. An error the daemon meets after the first byte
// is returned after the bytes that came before it.
func (c *Client) Cat(ctx context.Context, ref string, open func(core.FileInfo) (io.Writer, error)) error {
	return c.download(ctx, "cat", ref, func(h http.Header) (io.Writer, error) {
		v := h.Get(HeaderFile)
		var info core.FileInfo
		if err := json.Unmarshal([]byte(v), &info); err != nil {
			return nil, fmt.Errorf("%w: cat: header %s: %w", ErrBadResponse, HeaderFile, err)
		}
		return open(info)
	})
}

// Ls lists the node's own files.
func (c *Client) Ls(ctx context.Context) ([]core.ListEntry, error) {
	return callJSON[[]core.ListEntry](ctx, c, "ls", nil)
}

// Share returns the capability of one of the node's files.
func (c *Client) Share(ctx context.Context, cid string) (string, error) {
	v, err := callJSON[shareResponse](ctx, c, "share", query("arg", cid))
	return v.Capability, err
}

// Refs calls fn with the CID of every block of ref, root first, and stops at
// fn's first error, which it returns as is.
func (c *Client) Refs(ctx context.Context, ref string, fn func(cid string) error) error {
	resp, err := c.post(ctx, "refs", query("arg", ref), nil)
	if err != nil {
		return err
	}
	defer resp.Body.Close()
	return readLines("refs", resp.Body, func(l *streamLine) error {
		if l.Cid == "" {
			return fmt.Errorf("%w: refs: line without a cid", ErrBadResponse)
		}
		return fn(l.Cid)
	})
}

// Remove deletes one of the node's files and asks its replicas to drop it.
func (c *Client) Remove(ctx context.Context, cid string) error {
	_, err := callJSON[struct{}](ctx, c, "rm", query("arg", cid))
	return err
}
